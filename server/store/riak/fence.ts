/**
 * The fence of a Riak store: one object in `<bucket>.meta` that every node reads before a write
 * starts and again once its object is stored (a conditional GET that Riak answers 304 while it is
 * unchanged). Concurrent fence changes that left siblings resolve the same way on every node.
 * The lease is an absolute time every node compares with its own clock; a lapsed lease reads as
 * open. docs/riak.md says what that asks of the nodes' clocks.
 */
import type { Logger } from '../../../src/logging.ts';
import { StoreError, type Clock, type FenceMode } from '../port.ts';
import type { RiakClient, RiakValue } from './client.ts';

/** The fence object; `at` (epoch ms) orders concurrent fence changes that left siblings. */
export interface FenceRecord {
  mode: FenceMode;
  leaseExpiresAt?: number;
  forwardTo?: string;
  at: number;
}

const OPEN: FenceRecord = { mode: 'open', at: 0 };
const FENCE_KEY = 'fence';

export class RiakFence {
  /** The fence as last read, revalidated with a conditional GET (304) on every write. */
  private cache: { etag: string; record: FenceRecord } | undefined;

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** The fence with a lapsed lease read as open; `fresh` skips the cache so `vclock` is the stored one, for writing over it. */
  async read(fresh = false): Promise<{ record: FenceRecord; vclock?: string }> {
    const cached = fresh ? undefined : this.cache;
    const fetched = await this.riak.fetch(this.bucket, FENCE_KEY, cached?.etag);
    let record: FenceRecord;
    let vclock: string | undefined;
    if (fetched.kind === 'not-modified' && cached) {
      record = cached.record;
    } else if (fetched.kind === 'found') {
      record = resolveFence(fetched.values);
      vclock = fetched.vclock;
      this.cache = fetched.etag && fetched.values.length === 1 ? { etag: fetched.etag, record } : undefined;
    } else {
      this.cache = undefined;
      record = OPEN;
      vclock = fetched.kind === 'missing' ? fetched.vclock : undefined;
    }
    const lapsed = record.mode === 'fenced' && (record.leaseExpiresAt ?? 0) <= this.clock();
    return { record: lapsed ? OPEN : record, vclock };
  }

  async assertOpen(): Promise<void> {
    const { mode } = (await this.read()).record;
    if (mode !== 'open') throw new StoreError('fenced', `the store is ${mode}: writes are refused until it is unfenced`);
  }

  async isOpen(): Promise<boolean> {
    return (await this.read()).record.mode === 'open';
  }

  async fence(leaseMs: number): Promise<FenceRecord> {
    const current = await this.read(true);
    return current.record.mode === 'forwarding' ? current.record : this.write({ mode: 'fenced', leaseExpiresAt: this.clock() + leaseMs }, current.vclock);
  }

  async forward(to: string): Promise<FenceRecord> {
    const current = await this.read(true);
    const { mode, forwardTo } = current.record;
    if (mode === 'forwarding' && forwardTo === to) return current.record;
    if (mode !== 'fenced') {
      throw new StoreError('fence-lapsed', mode === 'forwarding'
        ? `the store already forwards to ${forwardTo ?? '?'}, not ${to}`
        : 'the store is not fenced (its lease lapsed or it was never fenced): it cannot forward');
    }
    return this.write({ mode: 'forwarding', forwardTo: to }, current.vclock);
  }

  async unfence(): Promise<FenceRecord> {
    const current = await this.read(true);
    return this.write({ mode: 'open' }, current.vclock);
  }

  /** Writes the fence over the version read (`vclock`), so this write supersedes it rather than leaving a sibling. */
  private async write(change: Omit<FenceRecord, 'at'>, vclock: string | undefined): Promise<FenceRecord> {
    const record: FenceRecord = { ...change, at: this.clock() };
    const stored = await this.riak.store(this.bucket, FENCE_KEY, { body: JSON.stringify(record), vclock, indexes: {} });
    if (stored.kind === 'precondition-failed') throw new StoreError('unavailable', 'Riak refused to store the fence (412)');
    this.cache = undefined;
    this.log.info({ ...change }, `store fence: ${change.mode}`);
    return record;
  }
}

const RESTRICTION: Record<FenceMode, number> = { open: 0, fenced: 1, forwarding: 2 };

/**
 * Concurrent fence changes (siblings): forwarding beats a fence, since forward is the switch's
 * commit and a lease renewal racing it must not turn it back into a lease that lapses; otherwise
 * the later one wins, and on a tie the one refusing more (the safe side).
 */
function resolveFence(values: RiakValue[]): FenceRecord {
  let winner: FenceRecord = OPEN;
  for (const value of values) {
    const candidate = parseFence(value.body.toString('utf8'));
    const committed = candidate.mode === 'forwarding' && winner.mode === 'fenced';
    const overtaken = candidate.mode === 'fenced' && winner.mode === 'forwarding';
    if (committed || (!overtaken && (candidate.at > winner.at || (candidate.at === winner.at && RESTRICTION[candidate.mode] > RESTRICTION[winner.mode])))) winner = candidate;
  }
  return winner;
}

function parseFence(json: string): FenceRecord {
  let parsed: Partial<FenceRecord>;
  try {
    parsed = JSON.parse(json) as Partial<FenceRecord>;
  } catch {
    throw new StoreError('unavailable', 'Riak object of the fence is not JSON');
  }
  const at = typeof parsed.at === 'number' ? parsed.at : 0;
  if (parsed.mode === 'fenced' && typeof parsed.leaseExpiresAt === 'number') return { mode: 'fenced', leaseExpiresAt: parsed.leaseExpiresAt, at };
  if (parsed.mode === 'forwarding' && typeof parsed.forwardTo === 'string') return { mode: 'forwarding', forwardTo: parsed.forwardTo, at };
  // Anything else, an older fence record without a lease included, is open.
  return { mode: 'open', at };
}
