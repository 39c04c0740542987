/**
 * Renewing a fence while work runs under it. Every renewal is awaited inside the activity that
 * sends it, and the loop is awaited before the activity answers: no renewal outlives its attempt
 * (a worker that dies stops renewing, and the fence lapses by itself).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FenceConflictError, type StackAdmin } from '../src/navcloud/admin-client.ts';
import { refuse } from './failures.ts';
import { changedBy } from './heartbeat.ts';
import type { HeldFence } from './types.ts';

/** Renewals per lease: two may fail before it lapses. */
const RENEWALS_PER_LEASE = 3;

export class Renewal {
  constructor(
    /** Renews once; throws what ends the work (the fence is lost), or anything else to try again next time. */
    private readonly renew: (signal: AbortSignal) => Promise<void>,
    private readonly leaseSeconds: number,
    private readonly signal: AbortSignal,
    /** The work fails (WritePauseExceeded) and renewals stop once it has run this long. */
    private readonly ceilingMs?: number,
  ) {}

  /** Runs `work` while renewing; the work is stopped when the fence is lost or the ceiling is reached. */
  async during<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const stopWork = new AbortController();
    const stopRenewing = new AbortController();
    const workSignal = AbortSignal.any([this.signal, stopWork.signal]);
    let ended: unknown;
    const end = (why: unknown) => {
      ended = why;
      stopWork.abort(why);
    };
    const renewing = this.loop(workSignal, stopRenewing.signal, end);
    try {
      return await work(workSignal);
    } catch (err) {
      throw ended ?? err;
    } finally {
      stopRenewing.abort();
      await renewing;
    }
  }

  private async loop(workSignal: AbortSignal, stop: AbortSignal, end: (why: unknown) => void): Promise<void> {
    const log = Context.current().log;
    const startedAt = performance.now();
    const everyMs = (this.leaseSeconds * 1000) / RENEWALS_PER_LEASE;
    for (;;) {
      const left = this.ceilingMs === undefined ? Infinity : this.ceilingMs - (performance.now() - startedAt);
      if (left <= 0) {
        end(
          refuse(
            'WritePauseExceeded',
            `the write pause reached its ceiling of ${Math.round((this.ceilingMs ?? 0) / 1000)} s (maxWritePauseSeconds) with the copy still running`,
          ),
        );
        return;
      }
      // The sleep that reaches the ceiling is never followed by a renewal, even when its timer
      // fires a fraction of a millisecond early (Node's timers count whole milliseconds).
      const last = left <= everyMs;
      try {
        await sleep(last ? left : everyMs, undefined, { signal: AbortSignal.any([stop, workSignal]) });
      } catch {
        return;
      }
      if (last) continue;
      try {
        await this.renew(workSignal);
      } catch (err) {
        if (stop.aborted || workSignal.aborted) return;
        if (err instanceof FenceConflictError || err instanceof ApplicationFailure) {
          end(err instanceof FenceConflictError ? lost(err) : err);
          return;
        }
        // A missed renewal is survivable: the next one, or the commit's own compare-and-set, decides.
        log.warn('fence renewal failed', { error: (err as Error).message });
      }
    }
  }
}

/** The fence a run holds, renewed as that run's own (`by`): a renewal finding it otherwise ends the work. */
export function heldRenewal(
  admin: StackAdmin,
  held: HeldFence,
  leaseSeconds: number,
  signal: AbortSignal,
  ceilingMs?: number,
): Renewal {
  const by = changedBy();
  return new Renewal(
    async (renewing) => {
      const renewed = await admin.fence(
        { expected: { epoch: held.epoch, mode: 'fenced' }, by, leaseSeconds },
        renewing,
      );
      held.epoch = renewed.epoch;
    },
    leaseSeconds,
    signal,
    ceilingMs,
  );
}

/**
 * How runs started before fencing tokens renew: whatever fence the stack has now, a forwarding
 * stack left as it is (their copyChanges renewed from a timer, with the same meaning).
 */
export function legacyRenewal(admin: StackAdmin, leaseSeconds: number, signal: AbortSignal): Renewal {
  const by = changedBy();
  return new Renewal(
    async (renewing) => {
      const now = await admin.fenceState(renewing);
      if (now.mode === 'forwarding') return;
      await admin.fence({ expected: { epoch: now.epoch, mode: now.mode }, by, leaseSeconds }, renewing);
    },
    leaseSeconds,
    signal,
  );
}

/** A renewal refused: the fence lapsed (a node took writes), or another step changed it. */
export function lost(conflict: FenceConflictError): Error {
  const { current } = conflict;
  const lapsed = current.mode === 'open';
  return refuse(
    lapsed ? 'FenceLapsed' : 'FenceLost',
    `${conflict.message}${lapsed ? ` (the store is open at cursor ${current.cursor}: its lease lapsed and it may have taken writes)` : ''}`,
  );
}
