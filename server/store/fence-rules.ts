/**
 * The fence's compare-and-set, one rule for every store adapter: what a change of the fence
 * (server/store/port.ts) does to the record a store holds, or why it is refused. Each adapter
 * reads the record, asks `decide`, and writes the answer in one transaction (SQLite) or one
 * conditional write (Riak, riak/fence.ts).
 */
import { FenceConflict, type Clock, type FenceChange, type FenceMode, type FenceState } from './port.ts';

/** The fence as a store keeps it: what every node reads. */
export interface FenceRecord {
  mode: FenceMode;
  epoch: number;
  /** 'fenced' only: the lease each node measures from when it first sees this epoch. */
  leaseMs?: number;
  /** 'fenced' only: the highest number a write could have been acknowledged with when this fence (and its renewals) began. */
  fencedAt?: number;
  forwardTo?: string;
  /** Who made the change: a caller's `by`, or LAPSE. */
  by?: string;
}

export const OPEN: FenceRecord = { mode: 'open', epoch: 0 };
/** `by` of the change a node makes when it finds a lease lapsed and is about to apply a write. */
export const LAPSE = 'lapse';

export type FenceRequest =
  { kind: 'fence'; leaseMs: number } | { kind: 'forward'; to: string; cursor: number } | { kind: 'unfence' };

/** What the answering node sees: whether the lease lapsed by its clock, and the store's numbering. */
export interface FenceView {
  lapsed: boolean;
  /** The store's highest number now. */
  seq: number;
  /**
   * No write can have been acknowledged under this fence with a number above this: SQLite numbers
   * and stores a write in one transaction (its highest number); on Riak a number may be taken and
   * never acknowledged, so it is the number when the fence began (writes re-read the fence after
   * storing, and a lapse moves the epoch), or an undo's number when higher: an undo puts an
   * acknowledged revision back under a fresh number (riak/store.ts).
   */
  acknowledgedThrough: number;
}

export type Decision = { next: FenceRecord } | { unchanged: true };

/** The mode the answering node acts on: a fence whose lease lapsed here is open. */
export function effectiveMode(record: FenceRecord, lapsed: boolean): FenceMode {
  return record.mode === 'fenced' && lapsed ? 'open' : record.mode;
}

/**
 * The change applied to `current`, or FenceConflict. A change expecting an older epoch goes ahead
 * only when the same caller (`by`) made every change since: its own retry, or its earlier request.
 */
export function decide(
  current: FenceRecord,
  view: FenceView,
  change: FenceChange & FenceRequest,
  state: () => FenceState,
): Decision {
  const mode = effectiveMode(current, view.lapsed);
  const conflict = (why: string) =>
    new FenceConflict(
      `the fence is ${describe(current, mode)}; this change expected epoch ${change.expected.epoch} ${change.expected.mode}: ${why}`,
      state(),
    );
  const mine = change.by === current.by && current.epoch > change.expected.epoch;
  if (current.epoch !== change.expected.epoch && !mine) throw conflict('the fence moved on since');
  switch (change.kind) {
    case 'fence': {
      if (mode === 'forwarding') throw conflict('a forwarding store is not fenced again');
      if (!mine && change.expected.mode !== mode) {
        throw conflict(
          mode === 'open' && current.mode === 'fenced'
            ? 'its lease lapsed here, and a lapsed fence is taken anew, not renewed'
            : 'not the mode expected',
        );
      }
      const fencedAt = mode === 'fenced' ? (current.fencedAt ?? view.seq) : view.seq;
      return { next: { mode: 'fenced', epoch: current.epoch + 1, leaseMs: change.leaseMs, fencedAt, by: change.by } };
    }
    case 'forward': {
      if (mode === 'forwarding' && current.forwardTo === change.to && mine) return { unchanged: true };
      if (mode !== 'fenced')
        throw conflict(
          current.mode === 'fenced'
            ? 'its lease lapsed here: writes may have been taken since'
            : 'only a fenced store forwards',
        );
      if (!mine && change.expected.mode !== 'fenced') throw conflict('forward expects a fenced store');
      if (change.cursor < view.acknowledgedThrough) {
        throw conflict(
          `writes up to number ${view.acknowledgedThrough} may have been acknowledged, past the copy's cursor ${change.cursor}`,
        );
      }
      return { next: { mode: 'forwarding', epoch: current.epoch + 1, forwardTo: change.to, by: change.by } };
    }
    case 'unfence': {
      if (current.mode === 'open') return { unchanged: true };
      if (!mine && change.expected.mode !== current.mode && change.expected.mode !== mode)
        throw conflict('not the mode expected');
      return { next: { mode: 'open', epoch: current.epoch + 1, by: change.by } };
    }
  }
}

/** The record a node writes when it finds `current`'s lease lapsed, before it applies a write. */
export function lapseOf(current: FenceRecord): FenceRecord {
  return { mode: 'open', epoch: current.epoch + 1, by: LAPSE };
}

function describe(record: FenceRecord, mode: FenceMode): string {
  const what =
    mode === 'forwarding'
      ? `forwarding to ${record.forwardTo ?? '?'}`
      : mode === 'open' && record.mode === 'fenced'
        ? 'fenced, lease lapsed here'
        : mode;
  return `epoch ${record.epoch} ${what}${record.by ? ` (by ${record.by})` : ''}`;
}

/**
 * One node's view of the lease: measured on this node's monotonic clock from when it first saw
 * the fence's epoch, so no node compares its clock with another's. A node that sees an epoch
 * late (it was paused, or restarted) holds the fence longer, never shorter.
 */
export class NodeLease {
  private seen: { epoch: number; at: number } | undefined;

  constructor(private readonly clock: Clock) {}

  /** ms of the lease left by this node's clock ('fenced' records only). */
  leftMs(record: FenceRecord): number | undefined {
    if (record.mode !== 'fenced') return undefined;
    const now = this.clock();
    if (this.seen?.epoch !== record.epoch) this.seen = { epoch: record.epoch, at: now };
    return (record.leaseMs ?? 0) - (now - this.seen.at);
  }

  /** The fence as this node acts on it. */
  state(record: FenceRecord, seq: number): FenceState {
    const left = this.leftMs(record);
    const mode = effectiveMode(record, left !== undefined && left <= 0);
    const state: FenceState = { mode, epoch: record.epoch, seq };
    if (mode === 'fenced') Object.assign(state, { leaseMs: record.leaseMs, leaseLeftMs: left });
    if (mode === 'forwarding' && record.forwardTo !== undefined) state.forwardTo = record.forwardTo;
    if (record.by !== undefined) state.by = record.by;
    return state;
  }
}
