/**
 * SyncStore over Riak KV's HTTP API (`SYNC_STORE=riak:http://HOST:8098?…`, see riak/config.ts).
 *
 * One object per item in the configured bucket type, its JSON carrying what the feeds need:
 * owner, sharees, and the former sharees with the sequence number of their revocation. Secondary
 * indexes answer every query: `seq_int` (exports, and finding the item an import's number
 * claims), `feed_bin` = `<user>/<seq>` once per user who sees the change (owner, sharees, former
 * sharees at their revocation), `inbox_bin` (live sharees) and `live_int` (counting).
 *
 * Items are stored on all three primary replicas, or, when Riak cannot (a node down, stopped or
 * frozen), degraded: their number recorded in the degraded log first (riak/degraded.ts, storeItem),
 * so an export or a feed, whose index query reads one replica per partition, still finds them.
 *
 * Sequence numbers come from a counter data type. Writes are read-modify-write carrying the
 * vector clock they read, guarded by `If-Match` on the version read (or `If-None-Match: *` when the
 * key was empty), retried when Riak answers 412. Siblings left by concurrent writers are resolved
 * the same way on every node (highest revision, then highest seq, then the larger JSON) and the
 * winner is written back under a fresh sequence number, so every feed sees the settled state.
 *
 * The fence is a key read before every write and again after the write is stored, with the export
 * watermark (riak/watermark.ts): a write is acknowledged only if the fence was still open then and
 * no export had vouched for its number; otherwise it is undone, by a change of its own under a fresh
 * number (undo). So every acknowledged write was stored before fence() wrote the fence and before any
 * export whose cursor covers its number read anything. The fence object itself is riak/fence.ts.
 *
 * For the length of one write a client's feed may still show seq N+1 while N is on its way: a
 * client that moved its cursor past N in that window does not see N until the item changes again.
 * Concurrent counter increments may hand out one number twice. docs/riak.md has the whole story:
 * which quorum settings these guarantees need and what Riak cannot promise.
 */
import type { ExportItemLine } from '../../../src/navcloud/protocol.ts';
import type { Logger } from '../../../src/logging.ts';
import { decodeCursor } from '../../../src/navcloud/cursor.ts';
import { compareRevisions, generation, holdsAtLeast, nextRevision } from '../../../src/navcloud/revision.ts';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  PAGE_BYTES,
  StoreError,
  type Clock,
  type FenceChange,
  type FenceState,
  type ItemRevision,
  type PutItem,
  type StoreExport,
  type StoredChange,
  type StoredItem,
  type SyncStore,
} from '../port.ts';
import { RiakClient, RiakQuorumUnmet, type FetchResult, type RiakValue, type StoreResult } from './client.ts';
import type { RiakQuorum } from './config.ts';
import { DegradedLog } from './degraded.ts';
import { RiakFence } from './fence.ts';
import { Numbering } from './numbering.ts';
import { SharedRead } from './shared-read.ts';
import { Watermark } from './watermark.ts';
import { inParallel } from '../../../src/in-parallel.ts';
import { readAhead } from './read-ahead.ts';
import { parseRiakUrl } from './config.ts';

/** What one Riak object holds. */
export interface ItemRecord extends StoredItem {
  /** Former sharees and the sequence number of their revocation. */
  revoked: Record<string, number>;
  /** The revision last imported (ItemRevision.copiedRev); local changes carry it on. */
  copiedRev?: string;
}

interface Read<T> {
  record?: T;
  vclock?: string;
  /** Set only when Riak held exactly one value: the version `If-Match` guards. */
  etag?: string;
  /** More than one value: the record is the resolved winner, not yet written back. */
  siblings: number;
  /** Every sibling is the same record: the same write stored twice, nothing to decide. */
  identical?: boolean;
}

/** A write on every primary replica, on disk: what makes an index walk see it (see storeItem). */
const WHOLE: RiakQuorum = { w: 'all', pw: 'all', dw: 'all' };
/** What a degraded write, a log entry or a number asks for: two primaries on two different nodes. */
const DEGRADED: RiakQuorum = { w: 'quorum', pw: 'quorum', dw: 'quorum', node_confirms: '2' };
/**
 * How long the whole attempt may take at most before the write goes the degraded way: long enough
 * that a busy cluster's slowest writes are not taken for a node that stopped answering (a frozen node
 * costs the first writes this long, then the store writes degraded until a probe succeeds).
 */
const WHOLE_ATTEMPT_MS = 3_000;
/** How often a degraded store probes whether Riak stores on every primary again: a load peak that timed one write out passes in seconds. */
const PROBE_EVERY_MS = 1_000;
const SEQ_DIGITS = 16;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
const WRITE_ATTEMPTS = 4;
/** Bounds every paginated walk. */
const MAX_PAGES = 10_000;
/** Items read at once for the feed and the inbox: a page holds at most maxBytes plus this many items. */
const FEED_READ_BATCH = 8;
/** Items an export keeps in flight: enough requests to keep the cluster busy, few enough 256 KiB items to hold (8 MiB). */
const EXPORT_READ_BATCH = 32;
/** Import lines applied at once, for the same reason. */
const IMPORT_CONCURRENCY = 32;
/**
 * Keys per index page when only counting (GET /admin/stats): each page is a coverage query over a
 * third of the vnodes, and 100,000 items took 7.8 s in pages of 500 against 0.8 s in pages of
 * 10,000 on the three-node cluster. A page of keys alone is about 400 KB.
 */
const COUNT_PAGE = 10_000;

export interface RiakStoreOptions {
  logger: Logger;
  /** Keys per secondary index page. */
  pageSize?: number;
  /** Measures the fence lease on this monotonic clock (performance.now by default). */
  clock?: Clock;
  /** How often a degraded store looks whether Riak stores on every primary again (1 s). */
  probeEveryMs?: number;
}

/**
 * Opens the store and checks the bucket types it needs, so a misconfigured cluster fails the
 * node's start with what to fix. A Riak that does not answer yet does not: /readyz reports it.
 */
export async function openRiakStore(url: string, options: RiakStoreOptions): Promise<RiakStore> {
  const store = new RiakStore(new RiakClient(parseRiakUrl(url)), options);
  try {
    await store.checkBucketTypes();
  } catch (error) {
    if (error instanceof StoreError && error.code === 'unavailable') {
      store.log.warn({ err: error }, 'Riak is not answering yet; bucket types not checked');
      return store;
    }
    await store.close();
    throw error;
  }
  return store;
}

export class RiakStore implements SyncStore {
  readonly log: Logger;
  private readonly bucket: string;
  private readonly page: number;
  private readonly fenceOf: RiakFence;
  private readonly degradedLog: DegradedLog;
  private readonly degradedMode: DegradedMode;
  private readonly numbering: Numbering;
  private readonly watermark: Watermark;
  /** The highest number an undo took: a hand-over's copy that ends below it is behind. */
  private readonly undone: Watermark;
  /** Looks at the fence shared by writes that look together (a busy node reads it once per batch of writes). */
  private readonly fenceChecks: SharedRead<void>;
  /** Writes begun here and not yet acknowledged or refused (settleWrites waits for them). */
  private readonly writesInFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly riak: RiakClient,
    options: RiakStoreOptions,
  ) {
    this.page = options.pageSize ?? 500;
    this.log = options.logger.child({
      component: 'riak-store',
      bucketType: riak.config.bucketType,
      bucket: riak.config.bucket,
    });
    this.bucket = riak.config.bucket;
    const metaBucket = `${riak.config.bucket}.meta`;
    this.watermark = new Watermark(riak, metaBucket, DEGRADED, 'export-watermark');
    this.undone = new Watermark(riak, metaBucket, DEGRADED, 'undone-through');
    this.fenceOf = new RiakFence(riak, metaBucket, options.clock ?? (() => performance.now()), this.log, {
      highestSeq: () => this.highestSeq(),
      undoneThrough: () => this.undone.asOf(performance.now()),
    });
    this.degradedLog = new DegradedLog(riak, metaBucket, DEGRADED, this.log);
    this.numbering = new Numbering(riak, DEGRADED);
    this.fenceChecks = new SharedRead(() => this.fenceOf.assertOpen());
    this.degradedMode = new DegradedMode(riak, metaBucket, options.probeEveryMs ?? PROBE_EVERY_MS, this.log);
  }

  async checkBucketTypes(): Promise<void> {
    const { bucketType, counterType, bucket } = this.riak.config;
    const items = await this.riak.props(bucketType, bucket);
    if (!items) {
      throw new Error(
        `Riak has no active bucket type ${JSON.stringify(bucketType)}: create it with riak-admin bucket-type create ${bucketType} '{"props":{"allow_mult":true}}' and activate it`,
      );
    }
    if (items.datatype !== undefined)
      throw new Error(
        `Riak bucket type ${JSON.stringify(bucketType)} holds ${String(items.datatype)} data types; the store needs a plain key/value bucket type`,
      );
    if (items.allow_mult !== true) {
      throw new Error(
        `Riak bucket type ${JSON.stringify(bucketType)} has allow_mult=${String(items.allow_mult)}: ` +
          `it must be true, or concurrent writes silently lose one of them instead of leaving siblings`,
      );
    }
    const counters = await this.riak.props(counterType, bucket);
    if (!counters) {
      throw new Error(
        `Riak has no active bucket type ${JSON.stringify(counterType)}: create it with riak-admin ` +
          `bucket-type create ${counterType} '{"props":{"datatype":"counter"}}' and activate it`,
      );
    }
    if (counters.datatype !== 'counter') {
      throw new Error(
        `Riak bucket type ${JSON.stringify(counterType)} (counter_type) must have datatype counter, it has ${JSON.stringify(counters.datatype ?? 'none')}`,
      );
    }
  }

  async get(id: string, user: string): Promise<StoredItem | undefined> {
    const read = await this.readItem(id);
    const record = read.siblings > 1 ? await this.settle(id, read) : read.record;
    if (!record || record.deleted) return undefined;
    if (record.owner !== user && !record.shares.includes(user)) return undefined;
    return toItem(record);
  }

  async item(id: string): Promise<StoredItem | undefined> {
    const read = await this.readItem(id);
    const record = read.siblings > 1 ? await this.settle(id, read) : read.record;
    return record ? toItem(record) : undefined;
  }

  async put(request: PutItem): Promise<{ item: StoredItem; created: boolean }> {
    let created = false;
    const record = await this.write(request.id, (existing) => {
      if (existing && existing.owner !== request.owner)
        throw new StoreError('not-found', `item ${request.id} not found`);
      const live = existing && !existing.deleted ? existing : undefined;
      if (request.ifNoneMatch === '*' && live)
        throw new StoreError('precondition-failed', `item ${request.id} already exists (If-None-Match: *)`);
      if (request.ifMatch !== undefined && live?.rev !== request.ifMatch) {
        throw new StoreError(
          'precondition-failed',
          live
            ? `item ${request.id} is at revision ${live.rev}, not ${request.ifMatch}`
            : `item ${request.id} does not exist (If-Match)`,
        );
      }
      created = !live;
      return (seq) => ({
        id: request.id,
        owner: request.owner,
        type: request.type,
        data: request.data,
        rev: nextRevision(existing?.rev),
        deleted: false,
        // A recreated item starts unshared: its former sharees already saw the deletion.
        shares: live ? live.shares : [],
        seq,
        updatedAt: new Date().toISOString(),
        revoked: live ? live.revoked : {},
        ...(existing?.copiedRev === undefined ? {} : { copiedRev: existing.copiedRev }),
      });
    });
    return { item: toItem(record), created };
  }

  async delete(id: string, owner: string, ifMatch?: string): Promise<StoredItem> {
    const record = await this.write(id, (existing) => {
      if (!existing || existing.owner !== owner || existing.deleted)
        throw new StoreError('not-found', `item ${id} not found`);
      if (ifMatch !== undefined && existing.rev !== ifMatch)
        throw new StoreError('precondition-failed', `item ${id} is at revision ${existing.rev}, not ${ifMatch}`);
      // Sharees keep their feed entries, so the tombstone reaches them too.
      return (seq) => ({
        ...tombstoneOf(existing, seq, nextRevision(existing.rev)),
        updatedAt: new Date().toISOString(),
      });
    });
    return toItem(record);
  }

  share(id: string, owner: string, to: string): Promise<StoredItem> {
    return this.changeShares(id, owner, to, true);
  }

  unshare(id: string, owner: string, to: string): Promise<StoredItem> {
    return this.changeShares(id, owner, to, false);
  }

  async inbox(user: string, limit: number, maxBytes = PAGE_BYTES): Promise<StoredItem[]> {
    const keys = new Set<string>();
    for await (const [, key] of this.walk('inbox_bin', encodeUser(user), undefined)) keys.add(key);
    // Degraded writes may be missing from the replica the index query read (degradedChanges).
    for (const [, id] of await this.degradedLog.entries()) keys.add(id);
    // The index does not order by seq: every item is read to rank it, a few at a time, keeping only its number.
    const ranked: Array<{ key: string; seq: number }> = [];
    const all = [...keys];
    for (let start = 0; start < all.length; start += FEED_READ_BATCH) {
      const batch = all.slice(start, start + FEED_READ_BATCH);
      for (const [index, record] of (await this.readMany(batch)).entries()) {
        if (record && !record.deleted && record.shares.includes(user))
          ranked.push({ key: batch[index]!, seq: record.seq });
      }
    }
    ranked.sort((a, b) => b.seq - a.seq);
    const items: StoredItem[] = [];
    let bytes = 0;
    for (let start = 0; start < ranked.length && items.length < limit && bytes < maxBytes; start += FEED_READ_BATCH) {
      const records = await this.readMany(ranked.slice(start, start + FEED_READ_BATCH).map((entry) => entry.key));
      for (const record of records) {
        if (!record || record.deleted || !record.shares.includes(user) || items.length >= limit || bytes >= maxBytes)
          continue;
        items.push(toItem(record));
        bytes += Buffer.byteLength(JSON.stringify(record.data ?? null));
      }
    }
    return items.sort((a, b) => b.seq - a.seq);
  }

  async changes(user: string, since: number, limit: number, maxBytes = PAGE_BYTES): Promise<StoredChange[]> {
    // A stream's cursor is a change it was sent: known to be within the store without a counter read.
    if (!(await this.numbering.hasReached(since)))
      throw new StoreError('cursor-gone', `cursor ${since} is beyond the newest change of this store`);
    const changes: StoredChange[] = [];
    if (limit < 1) return changes;
    let continuation: string | undefined;
    let bytes = 0;
    for (let page = 0; page < MAX_PAGES && changes.length < limit && bytes < maxBytes; page += 1) {
      const found = await this.riak.index(
        this.bucket,
        'feed_bin',
        feedTerm(user, since + 1),
        feedTerm(user, MAX_SEQ),
        limit - changes.length,
        continuation,
      );
      // Index order is seq order: items are read a few at a time, and reading stops once the page passes maxBytes.
      for (let start = 0; start < found.results.length && bytes < maxBytes; start += FEED_READ_BATCH) {
        const batch = found.results.slice(start, start + FEED_READ_BATCH);
        const records = await this.readMany(batch.map(([, key]) => key));
        for (const [index, [term]] of batch.entries()) {
          const record = records[index];
          const change = record && changeFor(record, user, seqOfTerm(term));
          if (!change || bytes >= maxBytes) continue;
          changes.push(change);
          if (change.data !== undefined) bytes += Buffer.byteLength(JSON.stringify(change.data));
        }
      }
      if (bytes >= maxBytes) break;
      continuation = found.continuation;
      // An index entry is stale when its item moved on since: the item's newer entry comes later in the range.
      if (!continuation) break;
    }
    const indexed = new Set(changes.map((change) => `${change.seq}/${change.id}`));
    // A page the index cut short ends where its index part ends, so the next page skips nothing.
    const cut = continuation !== undefined || bytes >= maxBytes || changes.length >= limit;
    const end = cut ? Math.max(since, ...changes.map((change) => change.seq)) : MAX_SEQ;
    for (const change of await this.degradedChanges(user, since, end)) {
      if (!indexed.has(`${change.seq}/${change.id}`)) changes.push(change);
    }
    const page = changes.sort((a, b) => a.seq - b.seq).slice(0, limit);
    if (page.length) this.numbering.saw(page.at(-1)!.seq);
    return page;
  }

  /**
   * The changes of degraded writes `user` sees numbered in (since, end], each item read at quorum.
   * The feed's index query reads one replica per partition, which may have missed them (storeItem);
   * the log is read after the index, and a write's number goes into it before its object is stored.
   */
  private async degradedChanges(user: string, since: number, end: number): Promise<StoredChange[]> {
    const entries = (await this.degradedLog.entries()).filter(([seq]) => seq > since && seq <= end);
    const changes: StoredChange[] = [];
    for (let start = 0; start < entries.length; start += FEED_READ_BATCH) {
      const batch = entries.slice(start, start + FEED_READ_BATCH);
      const records = await this.readMany(batch.map(([, id]) => id));
      for (const [index, [seq]] of batch.entries()) {
        const change = records[index] && changeFor(records[index], user, seq);
        if (change) changes.push(change);
      }
    }
    return changes;
  }

  /**
   * A number is taken before its object is stored, so the counter alone is no cursor: a write may
   * hold a number below it and not be stored yet. The export raises the watermark to the counter
   * before it reads (after a grace for the writes in flight): every write acknowledged with a number
   * at or below it was stored before that, and the walk stops at that number, where the next export
   * starts.
   *
   * Behind a fence there is no grace: no write can be acknowledged any more, and every write
   * acknowledged before had stored its object before it looked at the fence, so before this read.
   * The writes the fence caught are undone under numbers of their own, recorded first
   * (`undone-through`): a hand-over's commit over a copy that ends below one is refused as behind.
   * A copy that waits for every node to settle its writes (settleWrites) carries their undos.
   *
   * The walk reads one replica per partition, which sees every whole write (storeItem). Degraded
   * writes are read from the degraded log instead, and their items by key at quorum; they take
   * their place in the walk's order.
   */
  async exportSince(since: number): Promise<StoreExport> {
    const fenced = !(await this.fenceOf.isOpen());
    const through = await this.highestSeq();
    // Writes in flight with a number at or below `through` get the grace to be stored; one still in
    // flight after the watermark is raised is refused when it looks (acknowledgeable).
    if (!fenced) await sleep(this.riak.config.exportGraceMs);
    await this.watermark.raise(through);
    const degraded = await this.degradedSince(since, through);
    return { through, items: this.walkExport(since, through, degraded) };
  }

  /**
   * Every key of the bucket in key order (the `$bucket` index: not the export's walk by number),
   * with the keys of the degraded log merged in, each item read by key at quorum.
   */
  async *revisionsById(): AsyncIterable<ItemRevision> {
    const logged = [...new Set((await this.degradedLog.entries()).map(([, id]) => id))].sort();
    const keys = mergeKeys(this.walk('$bucket', '_', undefined), logged);
    for await (const [, read] of readAhead(keys, EXPORT_READ_BATCH, (key) => this.readItem(key)))
      if (read.record) yield revisionOf(read.record);
  }

  /** The items of degraded writes numbered in (since, through], as they are now if still in that range, in number order. */
  private async degradedSince(since: number, through: number): Promise<ItemRecord[]> {
    const ids = new Set<string>();
    for (const [seq, id] of await this.degradedLog.entries()) if (seq > since && seq <= through) ids.add(id);
    const records: ItemRecord[] = [];
    const all = [...ids];
    for (let start = 0; start < all.length; start += EXPORT_READ_BATCH) {
      for (const record of await this.readMany(all.slice(start, start + EXPORT_READ_BATCH))) {
        if (record && record.seq > since && record.seq <= through) records.push(record);
      }
    }
    return records.sort((a, b) => a.seq - b.seq);
  }

  private async *walkExport(since: number, through: number, degraded: ItemRecord[]): AsyncIterable<StoredItem> {
    if (through <= since) return;
    const fromLog = new Set(degraded.map((record) => record.id));
    const walked = this.walk('seq_int', since + 1, through);
    const entries = (async function* () {
      for await (const entry of walked) if (!fromLog.has(entry[1])) yield entry;
    })();
    let next = 0;
    for await (const [[term], { record }] of readAhead(entries, EXPORT_READ_BATCH, ([, key]) => this.readItem(key))) {
      // Yielded at its current number only; an entry it has moved on from is stale.
      if (!record || record.seq !== Number(term)) continue;
      for (; next < degraded.length && degraded[next]!.seq <= record.seq; next++) yield toItem(degraded[next]!);
      yield toItem(record);
    }
    for (; next < degraded.length; next++) yield toItem(degraded[next]!);
  }

  /**
   * Lines are applied side by side (IMPORT_CONCURRENCY at a time; one item's lines in order): each
   * is a quorum read and a store, and Riak serves many at once. The numbering is raised once, to the
   * batch's highest number. Only a line numbered at or below what this store had before may claim
   * the number of a local change (a smoke test on a stack not yet live), which then moves after.
   */
  async import(lines: ExportItemLine[]): Promise<{ applied: number; skipped: number; seq: number }> {
    const numbered = lines.map((line) => {
      const seq = decodeCursor(line.cursor);
      if (seq === undefined || seq === 0)
        throw new Error(`import line for item ${line.id} has an invalid cursor ${JSON.stringify(line.cursor)}`);
      return { line, seq };
    });
    const before = await this.highestSeq();
    const top = Math.max(0, ...numbered.map(({ seq }) => seq));
    let counter = top > before ? await this.numbering.add(top - before) : before;
    let applied = 0;
    const byItem = new Map<string, typeof numbered>();
    for (const entry of numbered) byItem.set(entry.line.id, [...(byItem.get(entry.line.id) ?? []), entry]);
    await inParallel([...byItem.values()], IMPORT_CONCURRENCY, async (ofItem) => {
      for (const { line, seq } of ofItem) {
        const read = await this.readItem(line.id);
        const existing = read.record;
        if (existing && holdsAtLeast(existing.rev, line.rev)) continue;
        if (seq <= before) counter = Math.max(counter, await this.moveOccupant(seq, line.id));
        const record: ItemRecord = {
          id: line.id,
          owner: line.owner,
          type: line.type,
          rev: line.rev,
          deleted: line.deleted,
          shares: [...line.shares],
          seq,
          updatedAt: line.updatedAt,
          revoked: importedRevocations(existing, line, seq),
          copiedRev: line.rev,
        };
        if (!line.deleted && line.data !== undefined) record.data = line.data;
        await this.storeRecord(record, read.vclock);
        applied += 1;
      }
    });
    return { applied, skipped: lines.length - applied, seq: counter };
  }

  async raiseNumbering(through: number): Promise<number> {
    const counter = await this.highestSeq();
    return counter >= through ? counter : this.numbering.add(through - counter);
  }

  fence(change: FenceChange & { leaseMs: number }): Promise<FenceState> {
    return this.fenceOf.change({ ...change, kind: 'fence' });
  }

  forward(change: FenceChange & { to: string; cursor: number }): Promise<FenceState> {
    return this.fenceOf.change({ ...change, kind: 'forward' });
  }

  unfence(change: FenceChange): Promise<FenceState> {
    return this.fenceOf.change({ ...change, kind: 'unfence' });
  }

  fenceState(): Promise<FenceState> {
    return this.fenceOf.state();
  }

  highestSeq(): Promise<number> {
    return this.numbering.highest();
  }

  async countItems(): Promise<number> {
    let count = 0;
    for await (const _ of this.walk('live_int', 1, undefined, COUNT_PAGE)) count += 1;
    return count;
  }

  ping(): Promise<void> {
    return this.riak.ping();
  }

  async close(): Promise<void> {
    this.degradedMode.stop();
    this.riak.close();
  }

  private async changeShares(id: string, owner: string, to: string, granted: boolean): Promise<StoredItem> {
    const record = await this.write(id, (existing) => {
      if (!existing || existing.owner !== owner || existing.deleted)
        throw new StoreError('not-found', `item ${id} not found`);
      if (existing.shares.includes(to) === granted) return existing;
      return (seq) => {
        const revoked = { ...existing.revoked };
        if (granted) delete revoked[to];
        else revoked[to] = seq;
        return {
          ...existing,
          seq,
          rev: nextRevision(existing.rev),
          shares: granted ? [...existing.shares, to] : existing.shares.filter((user) => user !== to),
          updatedAt: new Date().toISOString(),
          revoked,
        };
      };
    });
    return toItem(record);
  }

  /**
   * Read-modify-write of one item. `decide` sees the current record and either throws, answers
   * the record unchanged (nothing to write), or answers how to build the new record once it has
   * its sequence number. Counted in flight until it is acknowledged or refused.
   */
  private write(
    id: string,
    decide: (existing: ItemRecord | undefined) => ItemRecord | ((seq: number) => ItemRecord),
  ): Promise<ItemRecord> {
    const write = this.readModifyWrite(id, decide);
    const resolved: Promise<unknown> = write.then(
      () => this.writesInFlight.delete(resolved),
      () => this.writesInFlight.delete(resolved),
    );
    this.writesInFlight.add(resolved);
    return write;
  }

  async settleWrites(withinMs: number): Promise<{ unresolved: number }> {
    const begun = [...this.writesInFlight];
    const timer = new AbortController();
    await Promise.race([
      Promise.all(begun),
      sleep(withinMs, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
    timer.abort();
    return { unresolved: begun.filter((write) => this.writesInFlight.has(write)).length };
  }

  private async readModifyWrite(
    id: string,
    decide: (existing: ItemRecord | undefined) => ItemRecord | ((seq: number) => ItemRecord),
  ): Promise<ItemRecord> {
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
      // Refused at once while fenced (no number taken, not even for a change that changes nothing);
      // the look that decides comes after the store.
      await this.fenceChecks.since(performance.now());
      const read = await this.readItem(id);
      const decision = decide(read.record);
      if (typeof decision !== 'function') return decision;
      const record = decision(await this.numbering.take());
      const precondition = read.record ? (read.etag ? { ifMatch: read.etag } : {}) : { ifNoneMatch: '*' as const };
      const stored = await this.storeItem(record, read.vclock, precondition);
      if (stored.kind === 'precondition-failed') {
        this.log.debug({ id, attempt }, 'item changed between read and write; retrying');
        continue;
      }
      if (stored.values.length > 1) {
        this.log.warn({ id, siblings: stored.values.length }, 'concurrent writes left siblings; settling them');
        await this.settle(id, {
          ...resolveValues(id, stored.values),
          vclock: stored.vclock,
          siblings: stored.values.length,
        });
      }
      return this.acknowledgeable(record, read, stored, decision);
    }
    throw new StoreError('unavailable', `item ${id} kept changing during ${WRITE_ATTEMPTS} write attempts; try again`);
  }

  /**
   * A stored write is acknowledged only if, read after its object was stored, the fence is open and
   * no export has vouched for its number (the export watermark): then every export whose cursor is
   * at or above its number began after it was stored, and the fence cannot have been written before
   * it. A write an export passed is stored again, the same revision under a new number (over its own
   * stored version), until it lands above the watermark: the next export carries it, and the client
   * is not refused for a store that outlasted an export's grace (two plain clients of the Riak demo
   * were, under load). Refused by the fence, or past WRITE_ATTEMPTS, it is undone and refused.
   * Answers the record acknowledged.
   */
  private async acknowledgeable(
    record: ItemRecord,
    before: Read<ItemRecord>,
    stored: Extract<StoreResult, { kind: 'stored' }>,
    numbered: (seq: number) => ItemRecord,
  ): Promise<ItemRecord> {
    let current = record;
    let over = stored;
    for (let attempt = 1; ; attempt += 1) {
      const storedAt = performance.now();
      const [fence, watermark] = await Promise.allSettled([
        this.fenceChecks.since(storedAt),
        this.watermark.asOf(storedAt),
      ]);
      if (fence.status === 'rejected' || watermark.status === 'rejected') {
        // Refused, or the fence or watermark could not be read: either way this write is not acknowledged.
        await this.undo(current, before, over);
        throw fence.status === 'rejected' ? fence.reason : (watermark as PromiseRejectedResult).reason;
      }
      if (current.seq > watermark.value) return current;
      if (attempt >= WRITE_ATTEMPTS) {
        this.log.warn(
          { id: current.id, seq: current.seq, watermark: watermark.value, attempts: attempt },
          "exports kept vouching for this write's numbers before its object was stored; not acknowledged",
        );
        await this.undo(current, before, over);
        throw new StoreError(
          'unavailable',
          `item ${current.id} took sequence number ${current.seq}, which an export had passed by the time it was stored, ${attempt} times: not acknowledged, retry it`,
        );
      }
      this.log.info(
        { id: current.id, seq: current.seq, watermark: watermark.value },
        "an export passed this write's number before its object was stored; storing it again under a new one",
      );
      const again: ItemRecord = {
        ...numbered(await this.numbering.take()),
        rev: current.rev,
        updatedAt: current.updatedAt,
      };
      const version = versionOf(over);
      const result = await this.storeItem(again, version.vclock, version.etag ? { ifMatch: version.etag } : {});
      if (result.kind === 'precondition-failed') {
        throw new StoreError(
          'unavailable',
          `item ${current.id} changed while this write was stored again above an export's cursor: not acknowledged, retry it`,
        );
      }
      current = again;
      over = result;
    }
  }

  /**
   * Undoes a write that stored its object but is refused, by a change of its own: the item as it
   * was before (a tombstone if it did not exist) under a fresh number, at a revision above the
   * refused one, so a copy that took the refused revision takes this one over it. Put back under
   * its old number instead, the item would be missed by every export that walked past that number
   * while the refused revision stood in its place (docs/riak.md). Like a write, the undo is stored
   * again under a new number until it lands above the export watermark, so the next export carries
   * it; its number is recorded first (`undone`), so a hand-over's commit whose copy ended below it
   * is refused as behind. Only over the refused revision (If-Match): a write over it meanwhile
   * superseded it, and stands. Best effort: Riak may keep the refused revision.
   */
  private async undo(
    refused: ItemRecord,
    before: Read<ItemRecord>,
    stored: Extract<StoreResult, { kind: 'stored' }>,
  ): Promise<void> {
    let over = versionOf(stored);
    try {
      for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
        const undo = undoOf(refused, before.record, await this.numbering.take(), attempt);
        await this.undone.raise(undo.seq);
        const result = await this.storeItem(undo, over.vclock, over.etag ? { ifMatch: over.etag } : {});
        if (result.kind === 'precondition-failed') return;
        over = versionOf(result);
        const watermark = await this.watermark.asOf(performance.now());
        if (undo.seq > watermark) {
          this.log.info({ id: undo.id, refused: refused.seq, seq: undo.seq }, 'refused write undone');
          return;
        }
        this.log.info({ id: undo.id, seq: undo.seq, watermark }, "an export passed the undo's number; undoing again");
      }
      this.log.warn({ id: refused.id, seq: refused.seq }, `an undo met an export's watermark ${WRITE_ATTEMPTS} times`);
    } catch (error) {
      this.log.warn({ err: error, id: refused.id, seq: refused.seq }, 'could not undo a refused write: Riak keeps it');
    }
  }

  /**
   * Writes the resolved winner of siblings back under a fresh number, so every feed sees the settled
   * state; siblings that are one and the same record (a write stored twice) collapse without one.
   * While fenced, reads resolve it in memory only.
   */
  private async settle(id: string, read: Read<ItemRecord>): Promise<ItemRecord | undefined> {
    let current = read;
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS && current.siblings > 1 && current.record; attempt += 1) {
      if (!(await this.fenceOf.isOpen())) return current.record;
      const winner: ItemRecord = current.identical
        ? current.record
        : { ...current.record, seq: await this.numbering.take() };
      const stored = await this.storeItem(winner, current.vclock);
      if (stored.kind === 'stored' && stored.values.length <= 1) return winner;
      current = await this.readItem(id);
    }
    return current.record;
  }

  /**
   * Stores an item's object on all three primary replicas (pw=all, dw=all): then every index walk
   * finds it. When Riak cannot (a node down, stopped or frozen), the write is degraded: its number
   * goes into the degraded log first, which exports read, and only then is the object stored on two
   * primaries of two different nodes. After one degraded answer the store stays degraded until a probe stores on every
   * primary again. The degraded store carries no precondition: the whole attempt may have landed on
   * the replicas that answered, and would then fail its own If-Match; a concurrent writer leaves
   * siblings, settled like any others.
   */
  private async storeItem(
    record: ItemRecord,
    vclock: string | undefined,
    precondition: { ifMatch?: string; ifNoneMatch?: '*' } = {},
  ): Promise<StoreResult> {
    const request = { body: JSON.stringify(record), vclock, indexes: indexesOf(record) };
    if (!this.degradedMode.on) {
      try {
        return await this.riak.store(this.bucket, record.id, {
          ...request,
          ...precondition,
          quorum: WHOLE,
          timeoutMs: WHOLE_ATTEMPT_MS,
        });
      } catch (error) {
        if (!(error instanceof RiakQuorumUnmet)) throw error;
        this.degradedMode.enter(error.message);
      }
    }
    await this.degradedLog.record([[record.seq, record.id]], this.riak.config.timeoutMs);
    return this.riak.store(this.bucket, record.id, { ...request, quorum: DEGRADED });
  }

  /** Moves a local change off a sequence number an import claims; answers the number it moved to, or 0. */
  private async moveOccupant(seq: number, importedId: string): Promise<number> {
    let moved = 0;
    for await (const [, key] of this.walk('seq_int', seq, seq)) {
      if (key === importedId) continue;
      const read = await this.readItem(key);
      if (!read.record || read.record.seq !== seq) continue;
      moved = await this.numbering.take();
      this.log.info(
        { id: key, from: seq, to: moved },
        'import claims the sequence number of a local change; moving it after',
      );
      await this.storeRecord({ ...read.record, seq: moved }, read.vclock);
    }
    return moved;
  }

  private async storeRecord(record: ItemRecord, vclock: string | undefined): Promise<void> {
    const stored = await this.storeItem(record, vclock);
    if (stored.kind === 'precondition-failed')
      throw new StoreError('unavailable', `Riak refused to store item ${record.id} (412)`);
  }

  private async readItem(id: string): Promise<Read<ItemRecord>> {
    return resolveFetch(id, await this.riak.fetch(this.bucket, id));
  }

  private async readMany(keys: string[]): Promise<(ItemRecord | undefined)[]> {
    return Promise.all(keys.map(async (key) => (await this.readItem(key)).record));
  }

  /** Every [term, key] of an exact (`end` undefined) or range query, page by page. */
  private async *walk(
    index: string,
    start: string | number,
    end: string | number | undefined,
    pageSize = this.page,
  ): AsyncIterable<[string, string]> {
    let continuation: string | undefined;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const found = await this.riak.index(this.bucket, index, start, end, pageSize, continuation);
      yield* found.results;
      continuation = found.continuation;
      if (!continuation) return;
    }
    throw new Error(`the ${index} index query did not finish within ${MAX_PAGES} pages of ${pageSize}`);
  }
}

function resolveFetch(id: string, fetched: FetchResult): Read<ItemRecord> {
  if (fetched.kind !== 'found') return { vclock: fetched.kind === 'missing' ? fetched.vclock : undefined, siblings: 0 };
  const resolved = resolveValues(id, fetched.values);
  const first = fetched.values[0]?.body;
  const identical = fetched.values.every((value) => first !== undefined && value.body.equals(first));
  return {
    ...resolved,
    vclock: fetched.vclock,
    etag: fetched.values.length === 1 ? fetched.etag : undefined,
    siblings: fetched.values.length,
    identical,
  };
}

/** The deterministic winner among siblings: highest revision, then highest seq, then the larger JSON. */
export function resolveValues(id: string, values: RiakValue[]): { record?: ItemRecord } {
  let winner: { record: ItemRecord; json: string } | undefined;
  for (const value of values) {
    const json = value.body.toString('utf8');
    const record = parseRecord(id, json);
    if (!winner) {
      winner = { record, json };
      continue;
    }
    const order =
      compareRevisions(record.rev, winner.record.rev) ||
      record.seq - winner.record.seq ||
      (json > winner.json ? 1 : json < winner.json ? -1 : 0);
    if (order > 0) winner = { record, json };
  }
  return { record: winner?.record };
}

function parseRecord(id: string, json: string): ItemRecord {
  let parsed: Partial<ItemRecord>;
  try {
    parsed = JSON.parse(json) as Partial<ItemRecord>;
  } catch {
    throw new StoreError('unavailable', `Riak object for item ${id} is not JSON`);
  }
  if (
    typeof parsed.id !== 'string' ||
    typeof parsed.owner !== 'string' ||
    typeof parsed.rev !== 'string' ||
    !Number.isSafeInteger(parsed.seq)
  ) {
    throw new StoreError('unavailable', `Riak object for item ${id} is not an item record`);
  }
  return { ...parsed, shares: parsed.shares ?? [], revoked: parsed.revoked ?? {} } as ItemRecord;
}

function toItem(record: ItemRecord): StoredItem {
  const item: StoredItem = {
    id: record.id,
    owner: record.owner,
    type: record.type,
    rev: record.rev,
    deleted: record.deleted,
    shares: [...record.shares],
    seq: record.seq,
    updatedAt: record.updatedAt,
  };
  if (record.data !== undefined && !record.deleted) item.data = record.data;
  return item;
}

/**
 * The change that undoes `refused`: the item as `before` held it (a tombstone if it did not
 * exist), numbered `seq`, one generation above the refused revision. Its nonce sorts below any
 * random one, so when Riak keeps it beside a write made over the refused revision meanwhile (a
 * degraded store has no If-Match), that write wins their siblings.
 */
function undoOf(refused: ItemRecord, before: ItemRecord | undefined, seq: number, attempt: number): ItemRecord {
  const rev = `${generation(refused.rev) + 1}-${String(attempt).padStart(12, '0')}`;
  return before ? { ...before, seq, rev } : tombstoneOf(refused, seq, rev);
}

/** `record` deleted: its data dropped, numbered `seq` at `rev`. */
function tombstoneOf(record: ItemRecord, seq: number, rev: string): ItemRecord {
  const { data: _data, ...rest } = record;
  return { ...rest, seq, rev, deleted: true };
}

/** The version a stored object is: its vector clock, and the ETag `If-Match` guards when Riak kept one value. */
function versionOf(stored: Extract<StoreResult, { kind: 'stored' }>): { vclock?: string; etag?: string } {
  return { vclock: stored.vclock, etag: stored.values.length === 1 ? stored.values[0]!.etag : undefined };
}

/** The change `user` sees from this record's feed entry at `seq`, or undefined when the entry is stale. */
function changeFor(record: ItemRecord, user: string, seq: number): StoredChange | undefined {
  if (record.revoked[user] === seq) {
    // A former sharee learns the item is gone for them, not what it now holds.
    const change: StoredChange = {
      ...toItem(record),
      seq,
      deleted: true,
      shares: [],
      sharedBy: record.owner,
      revoked: true,
    };
    delete change.data;
    return change;
  }
  if (record.seq !== seq) return undefined;
  if (record.owner === user) return toItem(record);
  if (record.shares.includes(user)) return { ...toItem(record), sharedBy: record.owner };
  return undefined;
}

function indexesOf(record: ItemRecord): Record<string, (string | number)[]> {
  const feed = [
    feedTerm(record.owner, record.seq),
    ...record.shares.map((user) => feedTerm(user, record.seq)),
    ...Object.entries(record.revoked).map(([user, seq]) => feedTerm(user, seq)),
  ];
  return {
    seq_int: [record.seq],
    feed_bin: feed,
    inbox_bin: record.deleted ? [] : record.shares.map(encodeUser),
    live_int: record.deleted ? [] : [1],
  };
}

/** Sharees dropped between the copy we had and the imported one see a revocation at the imported change. */
function importedRevocations(
  existing: ItemRecord | undefined,
  line: ExportItemLine,
  seq: number,
): Record<string, number> {
  const revoked = { ...(existing?.revoked ?? {}) };
  for (const user of existing?.shares ?? []) if (!line.shares.includes(user)) revoked[user] = seq;
  for (const user of line.shares) delete revoked[user];
  return revoked;
}

/** User ids are free text; percent-encoding keeps `,` (Riak's index value separator) and `/` out of terms. */
function encodeUser(user: string): string {
  return encodeURIComponent(user);
}

function feedTerm(user: string, seq: number): string {
  return `${encodeUser(user)}/${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

function seqOfTerm(term: string): number {
  return Number(term.slice(term.lastIndexOf('/') + 1));
}

/** The walk's keys (in key order) with `extra` (sorted) merged in, each key once. */
async function* mergeKeys(walked: AsyncIterable<[string, string]>, extra: string[]): AsyncIterable<string> {
  let next = 0;
  let previous: string | undefined;
  for await (const [, key] of walked) {
    for (; next < extra.length && extra[next]! <= key; next++)
      if (extra[next] !== key && extra[next] !== previous) yield (previous = extra[next]!);
    if (key !== previous) yield (previous = key);
  }
  for (; next < extra.length; next++) if (extra[next] !== previous) yield (previous = extra[next]!);
}

function revisionOf({ id, rev, seq, copiedRev }: ItemRecord): ItemRevision {
  return copiedRev === undefined ? { id, rev, seq } : { id, rev, seq, copiedRev };
}

/**
 * Whether this store writes degraded. Entered on Riak's first answer that it could not store on
 * every primary; left once a probe object is stored on every primary again, twice in a row.
 */
class DegradedMode {
  private probe: NodeJS.Timeout | undefined;
  private healthyProbes = 0;
  private readonly probeKey = `degraded-probe/${randomBytes(6).toString('hex')}`;

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    private readonly everyMs: number,
    private readonly log: Logger,
  ) {}

  get on(): boolean {
    return this.probe !== undefined;
  }

  enter(reason: string): void {
    this.healthyProbes = 0;
    if (this.probe) return;
    this.log.warn({ reason }, 'Riak cannot store on every primary replica: writing degraded until it can again');
    this.probe = setInterval(() => void this.look(), this.everyMs);
    this.probe.unref();
  }

  stop(): void {
    clearInterval(this.probe);
    this.probe = undefined;
  }

  private async look(): Promise<void> {
    try {
      await this.riak.store(this.bucket, this.probeKey, {
        body: '{}',
        indexes: {},
        quorum: WHOLE,
        timeoutMs: WHOLE_ATTEMPT_MS,
      });
      this.healthyProbes += 1;
      if (this.healthyProbes >= 2 && this.probe) {
        this.stop();
        this.log.info('Riak stores on every primary replica again: writes are whole again');
      }
    } catch {
      this.healthyProbes = 0;
    }
  }
}
