/**
 * The fence protocol's activities (docs/switch-protocol.md): take a stack's fence, copy out of it
 * while renewing it, commit a flip, hand the writer over, release a fence. Every change of a fence
 * names the epoch it expects and who sends it (this step of this run), so a request that arrives
 * late, twice, or after its run is over changes nothing; every admin request is bounded by the
 * attempt that sends it, and heartbeats let a cancelled or terminated run stop it.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FenceConflictError, type StackAdmin } from '../src/navcloud/admin-client.ts';
import type { FenceResult } from '../src/navcloud/protocol.ts';
import { copyBetween } from './catch-up.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import { changedBy, withinAttempt } from './heartbeat.ts';
import { heldRenewal, lost, renewHeld } from './renewal.ts';
import type {
  CommitInput,
  FencedCopyInput,
  FencedCopyResult,
  HandOverWriterInput,
  HeldFence,
  ReleaseFenceInput,
  TakeFenceInput,
} from './types.ts';

/**
 * How long each node of a fenced stack may take to resolve the writes the fence caught in flight.
 * On the Riak cluster under the demo's load, 47 writes caught took up to 2.4 s to be undone; a copy
 * that starts before cost another fenced round (about 2 s more of write pause there).
 */
const SETTLE_WITHIN_MS = 5_000;

/**
 * Waits until every node of the fenced stack has resolved the writes the fence caught in flight
 * (refused, and undone under numbers of their own), so the copy that follows carries the undos and
 * the commit after it is not refused as behind. Best effort: a node that does not settle in time
 * or does not answer costs at most another fenced copy, never a write.
 */
async function settleCaughtWrites(source: StackAdmin, nodes: string[], signal: AbortSignal): Promise<void> {
  const startedAt = performance.now();
  // A node that never answers (frozen) is given up soon after the others' wait ends.
  const bounded = AbortSignal.any([signal, AbortSignal.timeout(SETTLE_WITHIN_MS + 500)]);
  const answers = await Promise.allSettled(nodes.map((node) => source.settled(node, SETTLE_WITHIN_MS, bounded)));
  const unsettled = answers.flatMap((answer, i): Array<{ node: string; unresolved?: number; error?: string }> => {
    if (answer.status === 'rejected') return [{ node: nodes[i]!, error: String(answer.reason) }];
    return answer.value.unresolved > 0 ? [{ node: nodes[i]!, unresolved: answer.value.unresolved }] : [];
  });
  const waitedMs = Math.round(performance.now() - startedAt);
  if (unsettled.length)
    Context.current().log.warn('copying with writes the fence caught unresolved', { unsettled, waitedMs });
  else Context.current().log.info('every node settled the writes the fence caught', { nodes: nodes.length, waitedMs });
}

export function fenceActivities(context: (env: string) => Promise<EnvironmentContext>, batchLines: number) {
  return {
    /**
     * Fences the stack for a lease, expecting it as it reads it now: open, or fenced by a run that
     * is over. A stack that forwards is no writer to fence. A retry whose first attempt took the
     * fence renews it.
     */
    async takeFence(input: TakeFenceInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return withinAttempt(async (signal) => {
        const stack = admin(input.adminUrl);
        const now = await stack.fenceState(signal);
        if (now.mode === 'forwarding')
          throw refuse(
            'Forwarding',
            `${input.adminUrl} forwards to ${now.forwardTo ?? '?'}: it is not a writer to fence`,
          );
        try {
          return await stack.fence(
            { expected: { epoch: now.epoch, mode: now.mode }, by: changedBy(), leaseSeconds: input.leaseSeconds },
            signal,
          );
        } catch (err) {
          // It changed since it was read (a node recorded a lapse): the next attempt reads it again.
          if (err instanceof FenceConflictError) throw ApplicationFailure.retryable(err.message, 'FenceMoved');
          throw err;
        }
      });
    },

    /**
     * Copies the fenced stack's changes after `since` while renewing its fence, every renewal
     * awaited here, for at most what is left of the write pause: then the copy fails
     * (WritePauseExceeded), as it does when a renewal finds the fence lost (FenceLapsed, FenceLost).
     */
    async copyUnderFence(input: FencedCopyInput): Promise<FencedCopyResult> {
      const { admin } = await context(input.env);
      const { cancellationSignal, info } = Context.current();
      const source = admin(input.fromAdminUrl);
      const held: HeldFence = { epoch: input.fence.epoch };
      // A retry has what the first attempt had, less the time since that was scheduled (both on the server's clock).
      const ceilingMs = input.writePauseLeftMs - (info.currentAttemptScheduledTimestampMs - info.scheduledTimestampMs);
      const renewal = heldRenewal(source, held, input.leaseSeconds, cancellationSignal, ceilingMs);
      const copy = await renewal.during(async (signal) => {
        if (input.fromNodes?.length) await settleCaughtWrites(source, input.fromNodes, signal);
        return copyBetween(source, admin(input.toAdminUrl), input, batchLines, signal);
      });
      return { ...copy, fence: held };
    },

    /** The commit of a flip: the fenced stack forwards every request to `to` (see commit). */
    async commitForward(input: CommitInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return withinAttempt((signal) => commit(admin(input.adminUrl), { ...input, url: input.adminUrl }, signal, FLIP));
    },

    /**
     * Hands the writer from one stack to another: first the commit on the stack being left (it
     * forwards to `to`, only if nothing was acknowledged past `cursor`), and only once that commit
     * exists does `to`, which forwards to `from` until then, open. No pause, dead worker or
     * exhausted retry between the two leaves two writers: until `to` opens the two forward to each
     * other and writes wait. A retry finds the commit made (this step's own) and opens `to`.
     */
    async handOverWriter(input: HandOverWriterInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return withinAttempt(async (signal) => {
        await commit(admin(input.from), { ...input, to: input.toEndpoint, url: input.from }, signal, HAND_OVER);
        const to = admin(input.to);
        const now = await to.fenceState(signal);
        if (now.mode === 'open') return now;
        if (now.mode === 'forwarding' && now.forwardTo !== input.fromEndpoint) {
          throw refuse(
            'ForwardingElsewhere',
            `${input.to} forwards to ${now.forwardTo ?? '?'}, not to ${input.fromEndpoint}: it is not opened`,
          );
        }
        try {
          return await to.unfence({ expected: { epoch: now.epoch, mode: now.mode }, by: changedBy() }, signal);
        } catch (err) {
          if (err instanceof FenceConflictError) throw ApplicationFailure.retryable(err.message, 'FenceMoved');
          throw err;
        }
      });
    },

    /**
     * Opens a stack as the run expects it; one found open already is left so. A fence that another
     * step of this same run renewed since (its copy, its commit's renewal) is released from there;
     * a stack that forwards is released only when expected so: a commit is never undone by guess.
     */
    async releaseFence(input: ReleaseFenceInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      const by = changedBy();
      const thisRun = by.slice(0, by.lastIndexOf('/') + 1);
      return withinAttempt(async (signal) => {
        const stack = admin(input.adminUrl);
        let expected = input.expected;
        for (;;) {
          try {
            return await stack.unfence({ expected, by }, signal);
          } catch (err) {
            if (!(err instanceof FenceConflictError)) throw err;
            const { current } = err;
            if (current.mode === 'open') return current;
            const renewedByThisRun =
              current.mode === 'fenced' && current.by?.startsWith(thisRun) && current.epoch !== expected.epoch;
            if (!renewedByThisRun) throw refuse('FenceMoved', `${input.adminUrl} was not released: ${err.message}`);
            expected = { epoch: current.epoch, mode: 'fenced' };
          }
        }
      });
    },
  };
}

/** How a step that ends in a forward words its refusals, and whether a short lease is worth another attempt. */
interface CommitStep {
  name: string;
  /** The hand-over's next attempt renews again; the flip's caller fails the switch. */
  leaseShort: (message: string) => Error;
}

const FLIP: CommitStep = { name: 'the flip', leaseShort: (message) => refuse('FenceLeaseShort', message) };
const HAND_OVER: CommitStep = {
  name: 'the hand-over',
  leaseShort: (message) => ApplicationFailure.retryable(message, 'FenceLeaseShort'),
};

/**
 * Renews the held fence and, if the renewal came back within half a lease (this worker's
 * monotonic clock: no other machine's time is read), makes the stack forward to `to`, only if no
 * write was acknowledged past `cursor`: both compare-and-sets on the epoch. A stack already
 * forwarding to `to` by this step's own change was committed by an attempt whose answer was lost.
 */
async function commit(
  stack: StackAdmin,
  flip: { url: string; to: string; fence: HeldFence; cursor: string; leaseSeconds: number },
  signal: AbortSignal,
  step: CommitStep,
): Promise<FenceResult> {
  const by = changedBy();
  const { url, to, cursor, leaseSeconds } = flip;
  const answered = (err: unknown, expectedEpoch: number): FenceResult => {
    if (!(err instanceof FenceConflictError)) throw err;
    const { current } = err;
    if (current.mode === 'forwarding' && current.forwardTo === to && current.by === by) return current;
    // Still the fence expected, so the copy is what is behind: writes were acknowledged past its cursor.
    if (current.mode === 'fenced' && current.epoch === expectedEpoch)
      throw refuse('CopyBehind', `${url} refused ${step.name}: ${err.message}`);
    throw lost(err);
  };
  const askedAt = performance.now();
  let renewed: FenceResult;
  try {
    renewed = await renewHeld(stack, flip.fence.epoch, by, leaseSeconds, signal);
  } catch (err) {
    return answered(err, flip.fence.epoch);
  }
  const spentMs = performance.now() - askedAt;
  if (spentMs > (leaseSeconds * 1000) / 2) {
    throw step.leaseShort(
      `${url} took ${Math.round(spentMs / 1000)} s to renew its ${leaseSeconds} s fence: too little lease left for ${step.name}`,
    );
  }
  try {
    return await stack.forward({ expected: { epoch: renewed.epoch, mode: 'fenced' }, by, cursor, to }, signal);
  } catch (err) {
    return answered(err, renewed.epoch);
  }
}
