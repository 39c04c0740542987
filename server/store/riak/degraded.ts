/**
 * The degraded log: the sequence numbers and item ids of writes Riak could not store on all three
 * primary replicas, recorded before such a write is acknowledged, so an export finds them although
 * its index walk (one replica per partition) may read a replica that missed them.
 *
 * Why only those: a write stored with pw=all and dw=all is on every primary replica of its key, on
 * disk, and a coverage query reads only primaries, so any walk sees it. A write taken while a node
 * was down, stopped or frozen went to two primaries and a fallback (or timed out on the third): the
 * node that comes back serves coverage queries before hinted handoff has brought it those writes.
 *
 * Layout, all in the store's meta bucket and read at quorum: `degraded` lists the segments (a
 * grow-only set: concurrent registrations leave siblings that read as their union); each segment
 * `degraded/<writer>/<n>` belongs to one store instance, which appends to it one batch at a time,
 * so it never has a second writer and never leaves siblings. A segment is registered before its
 * first entry is written, so whoever reads the list after an entry was recorded finds it.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../src/logging.ts';
import { StoreError } from '../port.ts';
import type { RiakClient } from './client.ts';
import type { RiakQuorum } from './config.ts';

/** [sequence number, item id] */
export type DegradedEntry = [number, string];

const INDEX_KEY = 'degraded';
/** Entries per segment: a segment is rewritten whole on every append, so it stays small. */
const SEGMENT_ENTRIES = 2_000;

interface Segment {
  key: string;
  entries: DegradedEntry[];
  vclock?: string;
}

export class DegradedLog {
  private readonly writer = randomBytes(6).toString('hex');
  private segment: Segment | undefined;
  private segments = 0;
  /** Entries waiting for the next append, and the writers waiting on it. */
  private pending: { entries: DegradedEntry[]; settle: Array<(error?: Error) => void> } = { entries: [], settle: [] };
  private appending: Promise<void> | undefined;

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    /** Quorums of a degraded write: never `all`, which a frozen node would stall. */
    private readonly quorum: RiakQuorum,
    private readonly log: Logger,
  ) {}

  /** Resolves once the entries are stored at quorum; concurrent callers share one append. */
  record(entries: DegradedEntry[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.entries.push(...entries);
      this.pending.settle.push((error) => (error ? reject(error) : resolve()));
      this.appending ??= this.drain();
    });
  }

  /** Every entry recorded by any store instance, read at quorum. */
  async entries(): Promise<DegradedEntry[]> {
    const keys = await this.segmentKeys();
    const all: DegradedEntry[] = [];
    for (const key of keys) {
      const fetched = await this.riak.fetch(this.bucket, key);
      if (fetched.kind !== 'found') continue;
      // One writer per segment: siblings only if a lost answer made it write twice; every one holds entries.
      for (const value of fetched.values) all.push(...parseEntries(key, value.body.toString('utf8')));
    }
    return all;
  }

  private async drain(): Promise<void> {
    while (this.pending.entries.length > 0) {
      const batch = this.pending;
      this.pending = { entries: [], settle: [] };
      try {
        await this.append(batch.entries);
        batch.settle.forEach((settle) => settle());
      } catch (error) {
        // The append may have landed all the same: the next one starts a segment of its own rather than guess the version.
        this.segment = undefined;
        batch.settle.forEach((settle) => settle(error as Error));
      }
    }
    this.appending = undefined;
  }

  private async append(entries: DegradedEntry[]): Promise<void> {
    if (!this.segment || this.segment.entries.length + entries.length > SEGMENT_ENTRIES) {
      const key = `degraded/${this.writer}/${this.segments++}`;
      await this.register(key);
      this.segment = { key, entries: [] };
      this.log.warn({ segment: key }, 'writes are degraded (Riak could not store them on every primary replica): recording their numbers for exports');
    }
    const next = [...this.segment.entries, ...entries];
    const stored = await this.riak.store(this.bucket, this.segment.key, {
      body: JSON.stringify(next), vclock: this.segment.vclock, indexes: {}, quorum: this.quorum,
    });
    if (stored.kind === 'precondition-failed') throw new StoreError('unavailable', `Riak refused to store degraded-log segment ${this.segment.key} (412)`);
    this.segment.entries = next;
    this.segment.vclock = stored.vclock;
  }

  /** Adds a segment to the list before anything is written into it. */
  private async register(key: string): Promise<void> {
    const fetched = await this.riak.fetch(this.bucket, INDEX_KEY);
    const keys = new Set(fetched.kind === 'found' ? fetched.values.flatMap((value) => parseKeys(value.body.toString('utf8'))) : []);
    keys.add(key);
    const vclock = fetched.kind === 'found' || fetched.kind === 'missing' ? fetched.vclock : undefined;
    const stored = await this.riak.store(this.bucket, INDEX_KEY, { body: JSON.stringify([...keys]), vclock, indexes: {}, quorum: this.quorum });
    if (stored.kind === 'precondition-failed') throw new StoreError('unavailable', 'Riak refused to store the degraded-log index (412)');
  }

  private async segmentKeys(): Promise<string[]> {
    const fetched = await this.riak.fetch(this.bucket, INDEX_KEY);
    if (fetched.kind !== 'found') return [];
    return [...new Set(fetched.values.flatMap((value) => parseKeys(value.body.toString('utf8'))))];
  }
}

function parseKeys(json: string): string[] {
  const parsed = parseJson(json, 'the degraded-log index');
  if (!Array.isArray(parsed) || !parsed.every((key) => typeof key === 'string')) throw new StoreError('unavailable', 'the degraded-log index is not a list of segment keys');
  return parsed as string[];
}

function parseEntries(key: string, json: string): DegradedEntry[] {
  const parsed = parseJson(json, `degraded-log segment ${key}`);
  if (!Array.isArray(parsed) || !parsed.every((entry) => Array.isArray(entry) && Number.isSafeInteger(entry[0]) && typeof entry[1] === 'string')) {
    throw new StoreError('unavailable', `degraded-log segment ${key} is not a list of [sequence number, item id]`);
  }
  return parsed as DegradedEntry[];
}

function parseJson(json: string, what: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    throw new StoreError('unavailable', `${what} is not JSON`);
  }
}
