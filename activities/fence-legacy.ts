/**
 * The fence activities of runs started before fencing tokens (workflows/v1, and runs without the
 * fencing-tokens marker): same names, same meaning, on today's admin API. Each reads the fence and
 * changes it from what it read, as these runs always did: fence or renew whatever is there, unfence
 * from any mode, forward after a renewal checked the cursor. New runs never call them
 * (activities/fence.ts); they go once no such run is open.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { CloudError } from '../src/cloud/errors.ts';
import type { StackAdmin } from '../src/navcloud/admin-client.ts';
import type { FenceResult } from '../src/navcloud/protocol.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import { changedBy } from './heartbeat.ts';
import type { FenceInput, ForwardInput, HandOverInput } from './types.ts';

/**
 * workflows/v1 fenced without a lease, until it unfenced: the longest lease the admin API grants
 * is the nearest, a lease their runs did not know they had to renew.
 */
const UNLEASED_RUN_LEASE_SECONDS = 3_600;

export function legacyFenceActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** Fences the stack for a lease (a repeat renews it); a forwarding stack is answered as it is. */
    async fenceStack(input: FenceInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return fenceAsFound(
        admin(input.adminUrl),
        input.leaseSeconds ?? UNLEASED_RUN_LEASE_SECONDS,
        Context.current().cancellationSignal,
      );
    },

    /** The commit of a flip, refused when the renewal before it shows writes past `cursor`, a short lease, or another target. */
    async forwardStack(input: ForwardInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const stack = admin(input.adminUrl);
      const renewed = await renewBeforeFlip(
        stack,
        {
          url: input.adminUrl,
          to: input.to,
          cursor: input.cursor,
          leaseSeconds: input.leaseSeconds ?? UNLEASED_RUN_LEASE_SECONDS,
        },
        signal,
        (message) => refuse('FenceLeaseShort', message),
      );
      if (renewed.mode === 'forwarding') return renewed;
      try {
        return await forwardFrom(stack, renewed, input.to, signal);
      } catch (err) {
        if (err instanceof CloudError && !err.retryable)
          throw refuse('FenceLapsed', `${input.adminUrl} refused to forward: ${err.message}`);
        throw err;
      }
    },

    /** Renews `from`'s fence, checks its cursor, unfences `to`, and `from` forwards to `to`: the hand-over of these runs. */
    async handOver(input: HandOverInput): Promise<FenceResult> {
      const { admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      const from = admin(input.from);
      const renewed = await renewBeforeFlip(
        from,
        {
          url: input.from,
          to: input.toEndpoint,
          cursor: input.cursor,
          leaseSeconds: input.leaseSeconds ?? UNLEASED_RUN_LEASE_SECONDS,
        },
        signal,
        (message) => ApplicationFailure.retryable(message, 'FenceLeaseShort'),
      );
      await unfenceAsFound(admin(input.to), signal);
      if (renewed.mode === 'forwarding') return renewed;
      try {
        return await forwardFrom(from, renewed, input.toEndpoint, signal);
      } catch (err) {
        if (err instanceof CloudError && !err.retryable)
          throw ApplicationFailure.retryable(`${input.from} refused to forward: ${err.message}`, 'ForwardRefused');
        throw err;
      }
    },

    async unfenceStack(input: { env: string; adminUrl: string }): Promise<FenceResult> {
      const { admin } = await context(input.env);
      return unfenceAsFound(admin(input.adminUrl), Context.current().cancellationSignal);
    },
  };
}

async function fenceAsFound(stack: StackAdmin, leaseSeconds: number, signal: AbortSignal): Promise<FenceResult> {
  const now = await stack.fenceState(signal);
  if (now.mode === 'forwarding') return now;
  return stack.fence({ expected: { epoch: now.epoch, mode: now.mode }, by: changedBy(), leaseSeconds }, signal);
}

async function unfenceAsFound(stack: StackAdmin, signal: AbortSignal): Promise<FenceResult> {
  const now = await stack.fenceState(signal);
  if (now.mode === 'open') return now;
  return stack.unfence({ expected: { epoch: now.epoch, mode: now.mode }, by: changedBy() }, signal);
}

function forwardFrom(stack: StackAdmin, renewed: FenceResult, to: string, signal: AbortSignal): Promise<FenceResult> {
  return stack.forward(
    { expected: { epoch: renewed.epoch, mode: 'fenced' }, by: changedBy(), cursor: renewed.cursor, to },
    signal,
  );
}

/**
 * Renews the fence of the stack about to forward to `to`. A stack already forwarding to `to` was
 * committed by an attempt whose answer was lost. Refused for good when it forwards elsewhere or
 * took writes past `cursor`; when the renewal took more than half the lease, as `leaseShort` says.
 */
async function renewBeforeFlip(
  stack: StackAdmin,
  flip: { url: string; to: string; cursor: string; leaseSeconds: number },
  signal: AbortSignal,
  leaseShort: (message: string) => Error,
): Promise<FenceResult> {
  const { url, to, cursor, leaseSeconds } = flip;
  const askedAt = performance.now();
  const renewed = await fenceAsFound(stack, leaseSeconds, signal);
  if (renewed.mode === 'forwarding') {
    if (renewed.forwardTo === to) return renewed;
    throw refuse('ForwardingElsewhere', `${url} already forwards to ${renewed.forwardTo}, not ${to}`);
  }
  if (renewed.cursor !== cursor) {
    throw refuse('FenceLapsed', `${url} took writes past ${cursor} (now ${renewed.cursor}): its fence lapsed`);
  }
  const spentMs = performance.now() - askedAt;
  if (spentMs > (leaseSeconds * 1000) / 2) {
    throw leaseShort(
      `${url} took ${Math.round(spentMs / 1000)} s to renew its ${leaseSeconds} s fence: too little lease left to forward on`,
    );
  }
  return renewed;
}
