import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { CloudError } from '../src/cloud/errors.ts';
import type { StackAdmin } from '../src/navcloud/admin-client.ts';
import type { ExportEndLine, ExportItemLine, FenceResult } from '../src/navcloud/protocol.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import { ProgressHeartbeat } from './heartbeat.ts';
import type { CopyInput, CopyResult, FenceInput, ForwardInput, HandOverInput, StackState } from './types.ts';

/** Renewals per lease while a fenced stack's last delta is copied: two may fail before it lapses. */
const RENEWALS_PER_LEASE = 3;

export function catchUpActivities(context: (env: string) => Promise<EnvironmentContext>, batchLines: number) {
  /** The lease asked for: the caller's, else the environment's (runs started before leases carried none). */
  async function leaseOf(input: { env: string; leaseSeconds?: number }): Promise<number> {
    return input.leaseSeconds ?? (await context(input.env)).env.fenceLeaseSeconds;
  }

  return {
    /**
     * Copies every change the source stack has after `since` into the target stack. Import keeps
     * revisions and cursors and skips what it already has, so a repeated copy is harmless. With
     * `renewFenceSeconds` the source is fenced and its lease is renewed from a timer for as long
     * as the copy runs: if this worker dies the renewals stop and the source opens again by itself.
     */
    async copyChanges(input: CopyInput): Promise<CopyResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const source = admin(input.fromAdminUrl);
      const target = admin(input.toAdminUrl);
      const heartbeat = new ProgressHeartbeat({ copied: 0 });
      const startedAt = Date.now();
      const stopRenewing = input.renewFenceSeconds ? renewFence(source, input.renewFenceSeconds, signal) : () => undefined;
      let copied = 0;
      let batch: ExportItemLine[] = [];
      const flush = async (end?: ExportEndLine) => {
        if (batch.length === 0 && !end) return;
        await target.importLines(batch, signal, end);
        copied += batch.length;
        batch = [];
        heartbeat.progress({ copied });
      };
      try {
        for await (const line of source.exportSince(input.since, signal)) {
          if (line.kind === 'end') {
            // With the end line: numbers the source took up to its cursor but never stored stay taken on the target.
            await flush(line);
            if (line.items !== copied) {
              throw refuse('CopyCountMismatch', `${input.fromAdminUrl}/admin/export announced ${line.items} items but sent ${copied}`);
            }
            return { copied, cursor: line.cursor, durationMs: Date.now() - startedAt };
          }
          batch.push(line);
          if (batch.length >= batchLines) await flush();
        }
        throw refuse('ExportTruncated', `${input.fromAdminUrl}/admin/export ended without its end line`);
      } finally {
        stopRenewing();
        heartbeat.stop();
      }
    },

    /**
     * Items in a stack's store, whether it is fenced, where it forwards, and the newest cursor it
     * holds (where a copy into it starts): one answer, the store is shared. Draining is per node:
     * with `nodes` every node is asked and the stack drains when any of them does.
     */
    async stackState(input: { env: string; adminUrl: string; nodes?: string[] }): Promise<StackState> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      const { items, cursor, fenced, draining, fence } = await client.stats(input.adminUrl, signal);
      const nodes = input.nodes?.length ? await Promise.all(input.nodes.map((node) => client.stats(node, signal))) : [];
      return {
        items, cursor, fenced, draining: draining || nodes.some((n) => n.draining), ...(fence.forwardTo ? { forwardTo: fence.forwardTo } : {}),
      };
    },

    /**
     * Fences the stack for a lease (a repeat renews it). After this returns the stack accepts no
     * write past the returned cursor until the lease lapses.
     */
    async fenceStack(input: FenceInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return admin(input.adminUrl).fence({ leaseSeconds: await leaseOf(input) }, Context.current().cancellationSignal);
    },

    /**
     * The commit of a flip: the fenced stack forwards every request to `to`. The fence is renewed
     * first; refused for good when the renewal shows that the lease lapsed since the last copy
     * (the stack took writes past `cursor`), when less than half a lease would be left by the time
     * forward is sent, or when the store says the fence lapsed. A stack already forwarding to `to`
     * was committed by an attempt whose answer was lost.
     */
    async forwardStack(input: ForwardInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const stack = admin(input.adminUrl);
      const renewed = await renewBeforeFlip(stack, {
        url: input.adminUrl, to: input.to, cursor: input.cursor, leaseSeconds: await leaseOf(input), step: FLIP,
      }, signal);
      if (renewed.mode === 'forwarding') return renewed;
      try {
        return await stack.forward(input.to, signal);
      } catch (err) {
        // The store's 409 fence-lapsed: the only refusal forward gives a well-formed request.
        if (err instanceof CloudError && !err.retryable) {
          throw refuse('FenceLapsed', `${input.adminUrl} refused to forward: ${err.message}`);
        }
        throw err;
      }
    },

    /**
     * Hands the writer from one stack to another in one call, so that no pause of the workflow
     * between two calls can outlast `from`'s lease with both stacks open: renews `from`'s fence,
     * refuses for good when the renewal shows writes past `cursor` (the caller copies again),
     * unfences `to`, and `from` forwards to `to`. Its attempts are short (workflows/activities.ts):
     * after a dead worker the retry renews the fence before the lease renewed by the last attempt
     * lapses. A `from` already forwarding to `to` was handed over by an attempt whose answer was lost
     * (`to` is unfenced again, for an attempt that never got there: `from` forwards to it).
     */
    async handOver(input: HandOverInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const from = admin(input.from);
      const to = admin(input.to);
      const renewed = await renewBeforeFlip(from, {
        url: input.from, to: input.toEndpoint, cursor: input.cursor, leaseSeconds: await leaseOf(input), step: HAND_OVER,
      }, signal);
      await to.unfence(signal);
      if (renewed.mode === 'forwarding') return renewed;
      try {
        return await from.forward(input.toEndpoint, signal);
      } catch (err) {
        // The store's 409: the lease lapsed after all. The next attempt renews it and looks at the cursor again.
        if (err instanceof CloudError && !err.retryable) {
          throw ApplicationFailure.retryable(`${input.from} refused to forward: ${err.message}`, 'ForwardRefused');
        }
        throw err;
      }
    },

    async unfenceStack(input: { env: string; adminUrl: string }): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return admin(input.adminUrl).unfence(Context.current().cancellationSignal);
    },
  };
}

/** How a step that ends in a forward words its refusals, and whether a short lease is worth another attempt. */
interface FlipStep {
  name: string;
  verb: string;
  /** The hand-over's next attempt renews again before anything opens; the flip's caller fails the switch. */
  leaseShort: (message: string) => Error;
}

const FLIP: FlipStep = { name: 'the flip', verb: 'flip', leaseShort: (message) => refuse('FenceLeaseShort', message) };
const HAND_OVER: FlipStep = { name: 'the hand-over', verb: 'hand over', leaseShort: (message) => ApplicationFailure.retryable(message, 'FenceLeaseShort') };

/**
 * Renews the fence of the stack about to forward to `to`, and answers it as renewed. A stack
 * already forwarding to `to` was committed by an attempt whose answer was lost. Refused for good
 * when it forwards elsewhere or took writes past `cursor` (its lease lapsed since the last copy);
 * when the renewal took more than half the lease, as the step says.
 */
async function renewBeforeFlip(
  stack: StackAdmin, flip: { url: string; to: string; cursor: string; leaseSeconds: number; step: FlipStep }, signal: AbortSignal,
): Promise<FenceResult> {
  const { url, to, cursor, leaseSeconds, step } = flip;
  const askedAt = Date.now();
  const renewed = await stack.fence({ leaseSeconds }, signal);
  if (renewed.mode === 'forwarding') {
    if (renewed.forwardTo === to) return renewed;
    throw refuse('ForwardingElsewhere', `${url} already forwards to ${renewed.forwardTo}, not ${to}`);
  }
  if (renewed.cursor !== cursor) {
    throw refuse('FenceLapsed', `${url} took writes past ${cursor} (now ${renewed.cursor}): its fence lapsed before ${step.name}`);
  }
  // Measured on this worker's clock alone: the renewal's answer took this long, so at most this much of the lease is gone.
  const spentMs = Date.now() - askedAt;
  if (spentMs > (leaseSeconds * 1000) / 2) {
    throw step.leaseShort(`${url} took ${Math.round(spentMs / 1000)} s to renew its ${leaseSeconds} s fence: too little lease left to ${step.verb} on`);
  }
  return renewed;
}

/** Renews the fence RENEWALS_PER_LEASE times per lease until the returned stop is called. */
function renewFence(stack: StackAdmin, leaseSeconds: number, signal: AbortSignal): () => void {
  const log = Context.current().log;
  const timer = setInterval(() => {
    stack.fence({ leaseSeconds }, signal).catch((err: unknown) => {
      // A missed renewal is survivable; the next one, or the flip's own check, decides.
      log.warn('fence renewal failed', { error: (err as Error).message });
    });
  }, (leaseSeconds * 1000) / RENEWALS_PER_LEASE);
  return () => clearInterval(timer);
}
