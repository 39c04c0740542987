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
import type { FenceResult } from '../src/navcloud/protocol.ts';
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
      held.epoch = (await renewHeld(admin, held.epoch, by, leaseSeconds, renewing)).epoch;
    },
    leaseSeconds,
    signal,
    ceilingMs,
  );
}

/**
 * Renews the fence held at `epoch`. Found still fenced at a higher epoch by another step of this
 * same run, it is renewed at that epoch: a late attempt of an earlier step changed it (a worker
 * that froze with its polls outstanding is handed two attempts of one step, which then run side by
 * side, and the later one renews over the earlier). The fence never left this run; had it lapsed
 * and taken writes meanwhile, the commit's check of the copy's cursor refuses it (CopyBehind).
 */
export async function renewHeld(
  admin: StackAdmin,
  epoch: number,
  by: string,
  leaseSeconds: number,
  signal: AbortSignal,
): Promise<FenceResult> {
  try {
    return await admin.fence({ expected: { epoch, mode: 'fenced' }, by, leaseSeconds }, signal);
  } catch (err) {
    if (!(err instanceof FenceConflictError) || !heldByThisRun(err.current, epoch, by)) throw err;
    Context.current().log.warn(
      'the fence was renewed by a late attempt of an earlier step of this run; renewing it there',
      {
        held: epoch,
        found: err.current.epoch,
        by: err.current.by,
      },
    );
    return admin.fence({ expected: { epoch: err.current.epoch, mode: 'fenced' }, by, leaseSeconds }, signal);
  }
}

/** Still fenced, past `epoch`, by another step of the run that `by` names (`workflowId/runId/step`). */
function heldByThisRun(current: FenceResult, epoch: number, by: string): boolean {
  const runOf = (who: string) => who.slice(0, who.lastIndexOf('/') + 1);
  return (
    current.mode === 'fenced' && current.epoch > epoch && current.by !== undefined && runOf(current.by) === runOf(by)
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
