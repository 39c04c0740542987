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
 * Layout, in the store's meta bucket, everything read at quorum: `degraded` lists the writers (a
 * grow-only set: concurrent registrations leave siblings that read as their union); each writer (one
 * store instance) appends batches `degraded/<writer>/<n>` for n = 0, 1, 2… Writers waiting together
 * share one batch. A batch's content is fixed when it is first sent and it is sent again until Riak
 * stores it; only then does the next one go. So a writer's batches have no gap: a reader reads them
 * in order until the first that does not exist, and a batch it found never changes (it keeps them).
 * A writer is registered before its first batch is sent.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../src/logging.ts';
import { StoreError } from '../port.ts';
import type { RiakClient } from './client.ts';
import type { RiakQuorum } from './config.ts';

/** [sequence number, item id] */
export type DegradedEntry = [number, string];

const INDEX_KEY = 'degraded';
/** Between two attempts at a batch Riak did not store. */
const RETRY_MS = 200;

interface Waiting {
  entries: DegradedEntry[];
  settle: Array<(error?: Error) => void>;
}

export class DegradedLog {
  private readonly writer = randomBytes(6).toString('hex');
  private registered = false;
  private next = 0;
  private waiting: Waiting = { entries: [], settle: [] };
  private appending: Promise<void> | undefined;
  /** Batches found so far, per writer, in order: they never change once stored. */
  private readonly found = new Map<string, DegradedEntry[][]>();
  private reading: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    /** Quorums of a degraded write: never `all`, which a frozen node would stall. */
    private readonly quorum: RiakQuorum,
    private readonly log: Logger,
  ) {}

  /**
   * Resolves once the entries are stored at quorum; concurrent callers share one batch. Rejects
   * after `timeoutMs` (the write is then refused), though the batch is still sent until stored.
   */
  record(entries: DegradedEntry[], timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              reject(
                new StoreError('unavailable', `Riak did not store the degraded log's batch within ${timeoutMs} ms`),
              );
            }, timeoutMs);
      timer?.unref();
      this.waiting.entries.push(...entries);
      this.waiting.settle.push((error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      });
      this.appending ??= this.drain();
    });
  }

  /** Every entry recorded by any store instance, read at quorum; one read of the log at a time, since it extends what it keeps. */
  entries(): Promise<DegradedEntry[]> {
    const read = this.reading.then(() => this.readEntries());
    this.reading = read.catch(() => undefined);
    return read;
  }

  private async readEntries(): Promise<DegradedEntry[]> {
    const all: DegradedEntry[] = [];
    for (const writer of await this.writers()) {
      const batches = this.found.get(writer) ?? [];
      for (;;) {
        const fetched = await this.riak.fetch(this.bucket, batchKey(writer, batches.length));
        if (fetched.kind !== 'found') break;
        // Siblings only if an attempt stored after Riak said it had not: every one holds the same entries.
        batches.push(fetched.values.flatMap((value) => parseEntries(value.body.toString('utf8'))));
      }
      this.found.set(writer, batches);
      for (const batch of batches) all.push(...batch);
    }
    return all;
  }

  private async drain(): Promise<void> {
    while (this.waiting.entries.length > 0) {
      const batch = this.waiting;
      this.waiting = { entries: [], settle: [] };
      await this.store(batch.entries, (error) => batch.settle.forEach((settle) => settle(error)));
    }
    this.appending = undefined;
  }

  /** Sends one batch until Riak stores it: the next batch waits, so a reader never meets a gap. */
  private async store(entries: DegradedEntry[], settle: (error?: Error) => void): Promise<void> {
    let told = false;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.registered) await this.register();
        const stored = await this.riak.store(this.bucket, batchKey(this.writer, this.next), {
          body: JSON.stringify(entries),
          indexes: {},
          quorum: this.quorum,
        });
        if (stored.kind === 'precondition-failed')
          throw new StoreError('unavailable', 'Riak refused a degraded-log batch (412)');
        this.next += 1;
        if (!told) settle();
        return;
      } catch (error) {
        if (!told) {
          // Their writes are refused; the batch is still sent, so that the batches after it are found.
          told = true;
          settle(error as Error);
        }
        if (attempt === 1)
          this.log.warn(
            { err: error, batch: batchKey(this.writer, this.next) },
            'Riak did not store a degraded-log batch; sending it again until it does',
          );
        await sleep(RETRY_MS);
      }
    }
  }

  /** Adds this writer to the list before its first batch is sent. */
  private async register(): Promise<void> {
    const fetched = await this.riak.fetch(this.bucket, INDEX_KEY);
    const writers = new Set(
      fetched.kind === 'found' ? fetched.values.flatMap((value) => parseWriters(value.body.toString('utf8'))) : [],
    );
    writers.add(this.writer);
    const vclock = fetched.kind === 'found' || fetched.kind === 'missing' ? fetched.vclock : undefined;
    const stored = await this.riak.store(this.bucket, INDEX_KEY, {
      body: JSON.stringify([...writers]),
      vclock,
      indexes: {},
      quorum: this.quorum,
    });
    if (stored.kind === 'precondition-failed')
      throw new StoreError('unavailable', "Riak refused to store the degraded log's list of writers (412)");
    this.registered = true;
    this.log.warn(
      { writer: this.writer },
      'writes are degraded (Riak could not store them on every primary replica): recording their numbers for exports',
    );
  }

  private async writers(): Promise<string[]> {
    const fetched = await this.riak.fetch(this.bucket, INDEX_KEY);
    if (fetched.kind !== 'found') return [];
    return [...new Set(fetched.values.flatMap((value) => parseWriters(value.body.toString('utf8'))))];
  }
}

function batchKey(writer: string, n: number): string {
  return `degraded/${writer}/${n}`;
}

function parseWriters(json: string): string[] {
  const parsed = parseJson(json, "the degraded log's list of writers");
  if (!Array.isArray(parsed) || !parsed.every((key) => typeof key === 'string'))
    throw new StoreError('unavailable', "the degraded log's list of writers is not a list of strings");
  return parsed as string[];
}

function parseEntries(json: string): DegradedEntry[] {
  const parsed = parseJson(json, 'a degraded-log batch');
  if (
    !Array.isArray(parsed) ||
    !parsed.every((entry) => Array.isArray(entry) && Number.isSafeInteger(entry[0]) && typeof entry[1] === 'string')
  ) {
    throw new StoreError('unavailable', 'a degraded-log batch is not a list of [sequence number, item id]');
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
