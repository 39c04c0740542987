/**
 * The fence of a Riak store: one object in `<bucket>.meta` that every node reads before a write
 * starts and again once its object is stored (a conditional GET that Riak answers 304 while it is
 * unchanged). A change of the fence is read, decided (server/store/fence-rules.ts) and written
 * with `If-Match` on the version read (`If-None-Match: *` while there is none) and its vector
 * clock, and tried again from the read when Riak answers 412.
 *
 * Riak checks `If-Match` on the coordinating node and then writes, so two changes expecting one
 * epoch that reach different coordinators at once can both be stored, as siblings. Every node
 * resolves siblings the same way, toward the safe side: the highest epoch, then the more
 * restrictive mode (forwarding, fenced, open), then the larger JSON. A change whose own answer
 * shows it lost that resolution is refused; one that was stored first and lost later cannot
 * know it. docs/riak.md says what that leaves and why the protocol stays safe.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../src/logging.ts';
import { FenceConflict, StoreError, type Clock, type FenceChange, type FenceMode, type FenceState } from '../port.ts';
import { decide, lapseOf, NodeLease, OPEN, type FenceRecord, type FenceRequest } from '../fence-rules.ts';
import { readAgainWhileQuorumUnmet, type RiakClient, type RiakValue } from './client.ts';

const FENCE_KEY = 'fence';
/** Reads and conditional writes of one change before it gives up on a fence that keeps changing. */
const CHANGE_ATTEMPTS = 4;
/** Reads of a fence below an epoch already seen (a change in flight, replicas behind) before the fence is unavailable. */
const BEHIND_ATTEMPTS = 4;
const BEHIND_RETRY_MS = 25;

interface FenceRead {
  record: FenceRecord;
  vclock?: string;
  /** Set when Riak held exactly one value: the version `If-Match` guards. */
  etag?: string;
  /** No fence object yet: `If-None-Match: *` guards its first write. */
  missing: boolean;
}

export class RiakFence {
  /** The fence as last read, revalidated with a conditional GET (304) on every write. */
  private cache: { etag: string; record: FenceRecord } | undefined;
  /** The lease as this node measures it. */
  private readonly lease: NodeLease;
  /** The highest epoch this node has read or written: epochs only grow, so a read below it comes from replicas behind. */
  private highestEpoch = 0;

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    clock: Clock,
    private readonly log: Logger,
    private readonly numbers: {
      /** The store's highest number now (the counter). */
      highestSeq: () => Promise<number>;
      /** The highest number an undo of a refused write took, read now (riak/store.ts). */
      undoneThrough: () => Promise<number>;
    },
  ) {
    this.lease = new NodeLease(clock);
  }

  /** The fence as this node acts on it. */
  async state(): Promise<FenceState> {
    const { record } = await this.read();
    return this.lease.state(record, await this.numbers.highestSeq());
  }

  /**
   * Before and after a write: refused unless open here. A lease lapsed by this node's clock is
   * recorded as a lapse (a new epoch) before the write goes on; if the fence changed meanwhile,
   * the write is judged on what it changed to.
   */
  async assertOpen(): Promise<void> {
    for (let attempt = 1; attempt <= CHANGE_ATTEMPTS; attempt += 1) {
      const read = await this.read(attempt > 1);
      const left = this.lease.leftMs(read.record);
      if (read.record.mode === 'fenced' && left !== undefined && left <= 0) {
        if (await this.write(lapseOf(read.record), read)) {
          this.log.warn({ epoch: read.record.epoch }, 'store fence: lease lapsed on this node; writes accepted again');
          return;
        }
        continue;
      }
      if (read.record.mode !== 'open')
        throw new StoreError('fenced', `the store is ${read.record.mode}: writes are refused until it is unfenced`);
      return;
    }
    throw new StoreError('unavailable', `the fence kept changing during ${CHANGE_ATTEMPTS} reads; try again`);
  }

  /** Whether a write would be applied here now (a lapsed lease reads as open). */
  async isOpen(): Promise<boolean> {
    const { record } = await this.read();
    return this.lease.state(record, 0).mode === 'open';
  }

  /** One compare-and-set of the fence (server/store/port.ts). */
  async change(change: FenceChange & FenceRequest): Promise<FenceState> {
    for (let attempt = 1; attempt <= CHANGE_ATTEMPTS; attempt += 1) {
      const current = await this.read(true);
      const [seq, undone] = await Promise.all([this.numbers.highestSeq(), this.numbers.undoneThrough()]);
      const left = this.lease.leftMs(current.record);
      const view = {
        lapsed: left !== undefined && left <= 0,
        seq,
        // An undo carries an acknowledged revision under its new number: a copy that ends below it is behind.
        acknowledgedThrough: Math.max(current.record.fencedAt ?? seq, undone),
      };
      const decision = decide(current.record, view, change, () => this.lease.state(current.record, seq));
      if ('unchanged' in decision) return this.lease.state(current.record, seq);
      const written = await this.write(decision.next, current);
      if (written === undefined) continue;
      if (!sameRecord(written, decision.next)) {
        throw new FenceConflict(
          `a concurrent change of the fence, epoch ${written.epoch} ${written.mode} by ${written.by ?? '?'}, won over this one`,
          this.lease.state(written, seq),
        );
      }
      this.log.info(
        { mode: decision.next.mode, epoch: decision.next.epoch, by: change.by },
        `store fence: ${decision.next.mode}`,
      );
      return this.lease.state(written, seq);
    }
    throw new StoreError(
      'unavailable',
      `the fence kept changing during ${CHANGE_ATTEMPTS} attempts of one change; try again`,
    );
  }

  /**
   * The stored fence, siblings resolved; `fresh` skips the cache so the version is the stored one, for writing over it.
   * A fence below an epoch this node has read or written is not acted on: a node that read a fence open at
   * epoch 0 (not found) while it forwarded would take writes, and serve reads, beside the new stack.
   * Reads racing a change still in flight can see the old epoch after the new one, so such a read
   * is tried again a few times before the fence counts as unavailable.
   */
  private async read(fresh = false): Promise<FenceRead> {
    for (let attempt = 1; ; attempt += 1) {
      const read = await this.fetch(fresh || attempt > 1);
      if (read.record.epoch >= this.highestEpoch) {
        this.highestEpoch = read.record.epoch;
        return read;
      }
      this.cache = undefined;
      if (attempt === BEHIND_ATTEMPTS) {
        throw new StoreError(
          'unavailable',
          `Riak answered the fence ${read.missing ? 'as not found' : `at epoch ${read.record.epoch}`} ${BEHIND_ATTEMPTS} times, below epoch ${this.highestEpoch} this node read before: the replicas that answered are behind; try again`,
        );
      }
      await sleep(BEHIND_RETRY_MS);
    }
  }

  private async fetch(fresh: boolean): Promise<FenceRead> {
    const cached = fresh ? undefined : this.cache;
    const fetched = await readAgainWhileQuorumUnmet(() => this.riak.fetch(this.bucket, FENCE_KEY, cached?.etag));
    if (fetched.kind === 'not-modified' && cached) return { record: cached.record, etag: cached.etag, missing: false };
    if (fetched.kind === 'found') {
      const record = resolveFence(fetched.values);
      const etag = fetched.values.length === 1 ? fetched.etag : undefined;
      this.cache = etag ? { etag, record } : undefined;
      return { record, vclock: fetched.vclock, etag, missing: false };
    }
    this.cache = undefined;
    return {
      record: OPEN,
      vclock: fetched.kind === 'missing' ? fetched.vclock : undefined,
      missing: fetched.kind === 'missing',
    };
  }

  /**
   * Writes `record` over the version read, conditionally where Riak can check it (over siblings
   * it can only merge them, with their vector clock). Answers the fence as stored (siblings
   * resolved), or undefined when Riak refused the condition (412).
   */
  private async write(record: FenceRecord, over: FenceRead): Promise<FenceRecord | undefined> {
    const condition = over.etag ? { ifMatch: over.etag } : over.missing ? { ifNoneMatch: '*' as const } : {};
    const stored = await this.riak.store(this.bucket, FENCE_KEY, {
      body: JSON.stringify(record),
      vclock: over.vclock,
      indexes: {},
      ...condition,
    });
    this.cache = undefined;
    if (stored.kind === 'precondition-failed') return undefined;
    const written = stored.values.length > 0 ? resolveFence(stored.values) : record;
    this.highestEpoch = Math.max(this.highestEpoch, written.epoch);
    return written;
  }
}

const RESTRICTION: Record<FenceMode, number> = { open: 0, fenced: 1, forwarding: 2 };

/**
 * Concurrent fence changes (siblings) resolve the same way on every node: the highest epoch; on a
 * tie (two changes that both expected one epoch) the more restrictive mode, so a commit beats a
 * renewal or a lapse and a fence beats an unfence; then the larger JSON.
 */
export function resolveFence(values: RiakValue[]): FenceRecord {
  let winner: { record: FenceRecord; json: string } | undefined;
  for (const value of values) {
    const json = value.body.toString('utf8');
    const record = parseFence(json);
    const order =
      winner === undefined
        ? 1
        : record.epoch - winner.record.epoch ||
          RESTRICTION[record.mode] - RESTRICTION[winner.record.mode] ||
          (json > winner.json ? 1 : json < winner.json ? -1 : 0);
    if (order > 0) winner = { record, json };
  }
  return winner?.record ?? OPEN;
}

function parseFence(json: string): FenceRecord {
  let parsed: Partial<FenceRecord>;
  try {
    parsed = JSON.parse(json) as Partial<FenceRecord>;
  } catch {
    throw new StoreError('unavailable', 'Riak object of the fence is not JSON');
  }
  // A fence written before fencing tokens (no epoch) is read as open: its lease was a wall-clock time.
  if (typeof parsed.epoch !== 'number' || !Number.isSafeInteger(parsed.epoch)) return OPEN;
  const record: FenceRecord = { mode: 'open', epoch: parsed.epoch };
  if (typeof parsed.by === 'string') record.by = parsed.by;
  if (parsed.mode === 'fenced' && typeof parsed.leaseMs === 'number') {
    Object.assign(
      record,
      { mode: 'fenced', leaseMs: parsed.leaseMs },
      typeof parsed.fencedAt === 'number' ? { fencedAt: parsed.fencedAt } : {},
    );
  } else if (parsed.mode === 'forwarding' && typeof parsed.forwardTo === 'string') {
    Object.assign(record, { mode: 'forwarding', forwardTo: parsed.forwardTo });
  }
  return record;
}

function sameRecord(a: FenceRecord, b: FenceRecord): boolean {
  return (
    a.epoch === b.epoch && a.mode === b.mode && a.by === b.by && a.forwardTo === b.forwardTo && a.leaseMs === b.leaseMs
  );
}
