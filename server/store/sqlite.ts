/**
 * The embedded store: one SQLite file in WAL mode that several server processes may share. Every
 * write runs in an IMMEDIATE transaction, so the sequence counter, the fence check and the change
 * itself commit together and commit order equals sequence order across processes.
 *
 * Items are keyed by their latest change's sequence number (the rowid), which makes exports a
 * plain table scan and per-user feeds an index range. `access` holds one row per sharee; a
 * revoked share keeps its row (revoked = 1, seq = the revocation) so the former sharee's feed
 * still tells them.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ExportItemLine, ItemType } from '../../src/navcloud/protocol.ts';
import { decodeCursor } from '../../src/navcloud/cursor.ts';
import { holdsAtLeast, nextRevision } from '../../src/navcloud/revision.ts';
import { Database } from './sqlite-binding.ts';
import {
  PAGE_BYTES,
  StoreError,
  type Clock,
  type FenceChange,
  type FenceMode,
  type FenceState,
  type ItemRevision,
  type PutItem,
  type StoreExport,
  type StoredChange,
  type StoredItem,
  type SyncStore,
} from './port.ts';
import { decide, lapseOf, NodeLease, type FenceRecord, type FenceRequest } from './fence-rules.ts';

interface ItemRow {
  seq: number;
  id: string;
  owner: string;
  type: ItemType;
  data: string | null;
  rev: string;
  deleted: 0 | 1;
  shares: string;
  updated_at: string;
}

interface ChangeRow extends ItemRow {
  shared_by: string | null;
  revoked: 0 | 1;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT,
  rev TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  shares TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  copied_rev TEXT
);
CREATE INDEX IF NOT EXISTS items_owner_seq ON items (owner, seq);
CREATE TABLE IF NOT EXISTS access (
  item_id TEXT NOT NULL,
  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  revoked INTEGER NOT NULL,
  PRIMARY KEY (item_id, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS access_user ON access (user, revoked, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0);
CREATE TABLE IF NOT EXISTS fence (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  mode TEXT NOT NULL,
  epoch INTEGER NOT NULL DEFAULT 0,
  lease_ms INTEGER,
  fenced_at INTEGER,
  forward_to TEXT,
  changed_by TEXT
);
INSERT OR IGNORE INTO fence (id, mode) VALUES (1, 'open');
`;

/** Columns a fence table written before fencing tokens lacks (its lease, an absolute time, is read no more). */
const FENCE_COLUMNS_ADDED = [
  'epoch INTEGER NOT NULL DEFAULT 0',
  'lease_ms INTEGER',
  'fenced_at INTEGER',
  'changed_by TEXT',
];

interface FenceRow {
  mode: FenceMode;
  epoch: number;
  lease_ms: number | null;
  fenced_at: number | null;
  forward_to: string | null;
  changed_by: string | null;
}

const COLUMNS = 'seq, id, owner, type, data, rev, deleted, shares, updated_at';
const ROW_CACHE = 10_000;
const IMPORT_CHECKPOINT_PAGES = 20_000;

function toItem(row: ItemRow): StoredItem {
  const item: StoredItem = {
    id: row.id,
    owner: row.owner,
    type: row.type,
    rev: row.rev,
    deleted: row.deleted === 1,
    shares: JSON.parse(row.shares) as string[],
    seq: row.seq,
    updatedAt: row.updated_at,
  };
  if (row.data !== null) item.data = JSON.parse(row.data);
  return item;
}

/** The rows `query` reads in an open read transaction on `reader`, one at a time; closes the reader when done or abandoned. */
async function* snapshotRows<Row, Item>(
  reader: Database,
  query: string,
  since: number,
  toExported: (row: Row) => Item,
): AsyncIterable<Item> {
  try {
    for (const row of reader.prepare<[number], Row>(query).iterate(since)) yield toExported(row);
    reader.exec('COMMIT');
  } finally {
    reader.close();
  }
}

function revisionOf(row: { id: string; rev: string; seq: number; copied_rev: string | null }): ItemRevision {
  return row.copied_rev === null
    ? { id: row.id, rev: row.rev, seq: row.seq }
    : { id: row.id, rev: row.rev, seq: row.seq, copiedRev: row.copied_rev };
}

/** Files made before copied_rev existed get the column (NULL: nothing known to be copied). Two nodes may race to add it. */
function addCopiedRev(db: Database): void {
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(items)').all();
  if (columns.some((column) => column.name === 'copied_rev')) return;
  try {
    db.exec('ALTER TABLE items ADD COLUMN copied_rev TEXT');
  } catch (error) {
    if (!/duplicate column name/.test((error as Error).message)) throw error;
  }
}

function toChange(row: ChangeRow): StoredChange {
  const change: StoredChange = toItem(row);
  if (row.shared_by !== null) change.sharedBy = row.shared_by;
  if (row.revoked === 1) {
    // A former sharee learns the item is gone for them, not what it now holds.
    change.revoked = true;
    change.deleted = true;
    change.shares = [];
    delete change.data;
  }
  return change;
}

/**
 * Runs `step` again while another connection holds the lock it needs, up to `timeoutMs`. The nodes
 * of a stack open a new file together, and turning on WAL does not wait through the busy timeout:
 * a node failed to start with "database is locked". Blocks, so only for start-up.
 */
function whileLocked(timeoutMs: number, step: () => unknown): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      step();
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

export interface SqliteStoreOptions {
  /** How long a write waits for another process's transaction, in ms. */
  busyTimeoutMs?: number;
  /** Measures the fence lease on this monotonic clock (performance.now by default). */
  clock?: Clock;
}

export class SqliteStore implements SyncStore {
  private readonly db: Database;
  private readonly statements;
  private readonly transactions;
  /**
   * Items get() has read, trusted while no other connection has committed: SQLite's data_version
   * changes exactly then, and this connection's own writes drop what they touch. It spares GETs
   * most of a table read and the JSON parsing. get() hands out these objects themselves, so the
   * HTTP layer can keep their serialisation too: callers treat them as read-only.
   */
  private readonly rows = new Map<string, StoredItem>();
  private rowsVersion = -1;
  /** The lease as this process (one node) measures it. */
  private readonly lease: NodeLease;

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    this.lease = new NodeLease(options.clock ?? (() => performance.now()));
    mkdirSync(dirname(path), { recursive: true });
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    const db = (this.db = new Database(path, { timeout: busyTimeoutMs }));
    whileLocked(busyTimeoutMs, () => db.pragma('journal_mode = WAL'));
    db.pragma('synchronous = NORMAL');
    // Reads through a memory map instead of a read() per page: most of a GET's store time otherwise.
    db.pragma('mmap_size = 268435456');
    // Large enough for the indexes' hot pages during a restore of millions of items.
    db.pragma('cache_size = -65536');
    whileLocked(busyTimeoutMs, () => db.exec(SCHEMA));
    whileLocked(busyTimeoutMs, () => addCopiedRev(db));
    whileLocked(busyTimeoutMs, () => {
      const present = new Set(
        db
          .prepare<[], { name: string }>('PRAGMA table_info(fence)')
          .all()
          .map((c) => c.name),
      );
      for (const column of FENCE_COLUMNS_ADDED.filter((c) => !present.has(c.split(' ')[0]!)))
        db.exec(`ALTER TABLE fence ADD COLUMN ${column}`);
    });
    this.statements = {
      byId: db.prepare<[string], ItemRow>(`SELECT ${COLUMNS} FROM items WHERE id = ?`),
      bySeq: db.prepare<[number], ItemRow>(`SELECT ${COLUMNS} FROM items WHERE seq = ?`),
      insert: db.prepare(
        `INSERT INTO items (${COLUMNS}) VALUES (@seq, @id, @owner, @type, @data, @rev, @deleted, @shares, @updated_at)`,
      ),
      update: db.prepare(
        `UPDATE items SET seq = @seq, owner = @owner, type = @type, data = @data, rev = @rev, deleted = @deleted, shares = @shares, updated_at = @updated_at WHERE id = @id`,
      ),
      // An imported revision is also the one this store copied: local writes leave copied_rev as it was.
      importInsert: db.prepare(
        `INSERT INTO items (${COLUMNS}, copied_rev) VALUES (@seq, @id, @owner, @type, @data, @rev, @deleted, @shares, @updated_at, @rev)`,
      ),
      importUpdate: db.prepare(
        `UPDATE items SET seq = @seq, owner = @owner, type = @type, data = @data, rev = @rev, deleted = @deleted, ` +
          `shares = @shares, updated_at = @updated_at, copied_rev = @rev WHERE id = @id`,
      ),
      moveSeq: db.prepare<[number, number]>('UPDATE items SET seq = ? WHERE seq = ?'),
      grant: db.prepare<[string, string, number]>(
        'INSERT INTO access (item_id, user, seq, revoked) VALUES (?, ?, ?, 0) ON CONFLICT (item_id, user) DO UPDATE SET seq = excluded.seq, revoked = 0',
      ),
      revoke: db.prepare<[number, string, string]>(
        'UPDATE access SET revoked = 1, seq = ? WHERE item_id = ? AND user = ?',
      ),
      accessOf: db.prepare<[string], { user: string; revoked: 0 | 1 }>(
        'SELECT user, revoked FROM access WHERE item_id = ?',
      ),
      dropAccess: db.prepare<[string]>('DELETE FROM access WHERE item_id = ?'),
      meta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      fence: db.prepare<[], FenceRow>(
        'SELECT mode, epoch, lease_ms, fenced_at, forward_to, changed_by FROM fence WHERE id = 1',
      ),
      setFence: db.prepare<[FenceMode, number, number | null, number | null, string | null, string | null]>(
        'UPDATE fence SET mode = ?, epoch = ?, lease_ms = ?, fenced_at = ?, forward_to = ?, changed_by = ? WHERE id = 1',
      ),
      setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE key = ?'),
      nextSeq: db.prepare<[], { value: number }>("UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"),
      inbox: db.prepare<[string, number], ItemRow>(
        `SELECT ${COLUMNS.split(', ')
          .map((c) => `i.${c}`)
          .join(', ')} FROM access a JOIN items i ON i.id = a.item_id
         WHERE a.user = ? AND a.revoked = 0 AND i.deleted = 0 ORDER BY i.seq DESC LIMIT ?`,
      ),
      inboxSizes: db.prepare<[string, number], { bytes: number | null }>(
        `SELECT octet_length(i.data) AS bytes FROM access a JOIN items i ON i.id = a.item_id
         WHERE a.user = ? AND a.revoked = 0 AND i.deleted = 0 ORDER BY i.seq DESC LIMIT ?`,
      ),
      changes: db.prepare<{ user: string; since: number; limit: number }, ChangeRow>(
        `SELECT ${COLUMNS}, NULL AS shared_by, 0 AS revoked FROM items WHERE owner = @user AND seq > @since
         UNION ALL
         SELECT i.seq, i.id, i.owner, i.type, i.data, i.rev, i.deleted, i.shares, i.updated_at, i.owner, 0
           FROM access a JOIN items i ON i.id = a.item_id WHERE a.user = @user AND a.revoked = 0 AND i.seq > @since
         UNION ALL
         SELECT a.seq, i.id, i.owner, i.type, NULL, i.rev, 1, '[]', i.updated_at, i.owner, 1
           FROM access a JOIN items i ON i.id = a.item_id WHERE a.user = @user AND a.revoked = 1 AND a.seq > @since
         ORDER BY 1 LIMIT @limit`,
      ),
      // The same rows' data sizes: octet_length reads a value's size from its record header, not the value.
      changeSizes: db.prepare<{ user: string; since: number; limit: number }, { bytes: number | null }>(
        `SELECT seq, octet_length(data) AS bytes FROM items WHERE owner = @user AND seq > @since
         UNION ALL
         SELECT i.seq, octet_length(i.data) FROM access a JOIN items i ON i.id = a.item_id WHERE a.user = @user AND a.revoked = 0 AND i.seq > @since
         UNION ALL
         SELECT a.seq, 0 FROM access a JOIN items i ON i.id = a.item_id WHERE a.user = @user AND a.revoked = 1 AND a.seq > @since
         ORDER BY 1 LIMIT @limit`,
      ),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM items WHERE deleted = 0'),
      ping: db.prepare('SELECT 1'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    };
    this.transactions = {
      put: db.transaction((request: PutItem) => this.putNow(request)),
      delete: db.transaction((id: string, owner: string, ifMatch?: string) => this.deleteNow(id, owner, ifMatch)),
      share: db.transaction((id: string, owner: string, to: string, granted: boolean) =>
        this.shareNow(id, owner, to, granted),
      ),
      import: db.transaction((lines: ExportItemLine[]) => this.importNow(lines)),
      raiseNumbering: db.transaction((through: number) => {
        const counter = Math.max(this.statements.meta.get('seq')!.value, through);
        this.statements.setMeta.run(counter, 'seq');
        return counter;
      }),
      // The fence's compare-and-set: read, decide and write in one IMMEDIATE transaction.
      changeFence: db.transaction((change: FenceChange & FenceRequest) => {
        const record = this.fenceRecord();
        const seq = this.statements.meta.get('seq')!.value;
        const left = this.lease.leftMs(record);
        const decision = decide(
          record,
          { lapsed: left !== undefined && left <= 0, seq, acknowledgedThrough: seq },
          change,
          () => this.lease.state(record, seq),
        );
        if ('next' in decision) this.writeFence(decision.next);
        return this.fenceStateNow();
      }),
      fenceState: db.transaction(() => this.fenceStateNow()),
      inbox: db.transaction((user: string, limit: number, maxBytes: number) => {
        const count = pageLength(this.statements.inboxSizes.iterate(user, limit), maxBytes);
        return count === 0 ? [] : this.statements.inbox.all(user, count);
      }),
      changes: db.transaction((user: string, since: number, limit: number, maxBytes: number) => {
        if (since > this.statements.meta.get('seq')!.value) {
          throw new StoreError('cursor-gone', `cursor ${since} is beyond the newest change of this store`);
        }
        // Sized first, then loaded up to the change that passes maxBytes: one snapshot, so the same rows.
        const count = pageLength(this.statements.changeSizes.iterate({ user, since, limit }), maxBytes);
        return count === 0 ? [] : this.statements.changes.all({ user, since, limit: count });
      }),
    };
  }

  async get(id: string, user: string): Promise<StoredItem | undefined> {
    const item = this.unavailableOnBusy(() => this.cachedItem(id));
    if (!item || item.deleted) return undefined;
    if (item.owner !== user && !item.shares.includes(user)) return undefined;
    return item;
  }

  async item(id: string): Promise<StoredItem | undefined> {
    return this.unavailableOnBusy(() => this.cachedItem(id));
  }

  async put(request: PutItem): Promise<{ item: StoredItem; created: boolean }> {
    return this.unavailableOnBusy(() => this.transactions.put.immediate(request));
  }

  async delete(id: string, owner: string, ifMatch?: string): Promise<StoredItem> {
    return this.unavailableOnBusy(() => this.transactions.delete.immediate(id, owner, ifMatch));
  }

  async share(id: string, owner: string, to: string): Promise<StoredItem> {
    return this.unavailableOnBusy(() => this.transactions.share.immediate(id, owner, to, true));
  }

  async unshare(id: string, owner: string, to: string): Promise<StoredItem> {
    return this.unavailableOnBusy(() => this.transactions.share.immediate(id, owner, to, false));
  }

  async inbox(user: string, limit: number, maxBytes = PAGE_BYTES): Promise<StoredItem[]> {
    return this.unavailableOnBusy(() => this.transactions.inbox.deferred(user, limit, maxBytes).map(toItem));
  }

  async changes(user: string, since: number, limit: number, maxBytes = PAGE_BYTES): Promise<StoredChange[]> {
    // Deferred transaction: the bound check and the queries read one snapshot.
    return this.unavailableOnBusy(() => this.transactions.changes.deferred(user, since, limit, maxBytes).map(toChange));
  }

  /**
   * Reads one snapshot on its own connection, so the export is consistent while writes go on
   * and never holds the writer's connection busy. Numbers are taken and stored in one transaction,
   * so the snapshot's counter is its cursor. Rows are read one at a time as the export is written:
   * whatever the items' sizes, an export holds one of them in memory.
   */
  async exportSince(since: number): Promise<StoreExport> {
    const { reader, through } = this.snapshot();
    return {
      through,
      items: snapshotRows(reader, `SELECT ${COLUMNS} FROM items WHERE seq > ? ORDER BY seq`, since, toItem),
    };
  }

  /** One snapshot in id order (the id's unique index), reading four columns: no item's data is read or parsed. */
  revisionsById(): AsyncIterable<ItemRevision> {
    const { reader } = this.snapshot();
    return snapshotRows(reader, 'SELECT id, rev, seq, copied_rev FROM items WHERE seq > ? ORDER BY id', 0, revisionOf);
  }

  /** A read transaction on a connection of its own, and the counter it sees. */
  private snapshot(): { reader: Database; through: number } {
    const reader = this.unavailableOnBusy(() => new Database(this.path, { readonly: true, fileMustExist: true }));
    try {
      reader.exec('BEGIN');
      return {
        reader,
        through: reader.prepare<[], { value: number }>("SELECT value FROM meta WHERE key = 'seq'").get()!.value,
      };
    } catch (error) {
      reader.close();
      throw error;
    }
  }

  async import(lines: ExportItemLine[]): Promise<{ applied: number; skipped: number; seq: number }> {
    return this.unavailableOnBusy(() => {
      // A restore writes millions of rows: checkpointing the WAL every 1000 pages would rewrite the
      // same index pages over and over. Ordinary writes keep the default.
      this.db.pragma(`wal_autocheckpoint = ${IMPORT_CHECKPOINT_PAGES}`);
      try {
        return this.transactions.import.immediate(lines);
      } finally {
        this.db.pragma('wal_autocheckpoint = 1000');
      }
    });
  }

  async raiseNumbering(through: number): Promise<number> {
    return this.unavailableOnBusy(() => this.transactions.raiseNumbering.immediate(through));
  }

  async fence(change: FenceChange & { leaseMs: number }): Promise<FenceState> {
    return this.unavailableOnBusy(() => this.transactions.changeFence.immediate({ ...change, kind: 'fence' }));
  }

  async forward(change: FenceChange & { to: string; cursor: number }): Promise<FenceState> {
    return this.unavailableOnBusy(() => this.transactions.changeFence.immediate({ ...change, kind: 'forward' }));
  }

  async unfence(change: FenceChange): Promise<FenceState> {
    return this.unavailableOnBusy(() => this.transactions.changeFence.immediate({ ...change, kind: 'unfence' }));
  }

  async fenceState(): Promise<FenceState> {
    // Deferred: the fence row and the sequence number come from one snapshot.
    return this.unavailableOnBusy(() => this.transactions.fenceState.deferred());
  }

  /** A write checks the fence and stores in one transaction: none is ever caught half-way. */
  async settleWrites(): Promise<{ unresolved: number }> {
    return { unresolved: 0 };
  }

  async highestSeq(): Promise<number> {
    return this.unavailableOnBusy(() => this.statements.meta.get('seq')!.value);
  }

  async countItems(): Promise<number> {
    return this.unavailableOnBusy(() => this.statements.count.get()!.n);
  }

  async ping(): Promise<void> {
    this.unavailableOnBusy(() => this.statements.ping.get());
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** SQLite's busy, locked and I/O errors (and a closed file) are StoreError 'unavailable': a 503 the client retries, not a failure of the request. */
  private unavailableOnBusy<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const code = (error as { code?: string }).code ?? '';
      if (
        code.startsWith('SQLITE_BUSY') ||
        code.startsWith('SQLITE_LOCKED') ||
        code.startsWith('SQLITE_IOERR') ||
        !this.db.open
      ) {
        throw new StoreError('unavailable', `sqlite store ${this.path} is unavailable: ${(error as Error).message}`);
      }
      throw error;
    }
  }

  private cachedItem(id: string): StoredItem | undefined {
    const version = this.statements.dataVersion.get()!;
    if (version !== this.rowsVersion) {
      this.rows.clear();
      this.rowsVersion = version;
    }
    let item = this.rows.get(id);
    if (item === undefined) {
      const row = this.statements.byId.get(id);
      if (!row) return undefined;
      item = toItem(row);
      if (this.rows.size >= ROW_CACHE) this.rows.clear();
      this.rows.set(id, item);
    }
    return item;
  }

  private fenceRecord(): FenceRecord {
    const row = this.statements.fence.get()!;
    const record: FenceRecord = { mode: row.mode, epoch: row.epoch };
    if (row.lease_ms !== null) record.leaseMs = row.lease_ms;
    if (row.fenced_at !== null) record.fencedAt = row.fenced_at;
    if (row.forward_to !== null) record.forwardTo = row.forward_to;
    if (row.changed_by !== null) record.by = row.changed_by;
    return record;
  }

  private writeFence(record: FenceRecord): void {
    this.statements.setFence.run(
      record.mode,
      record.epoch,
      record.leaseMs ?? null,
      record.fencedAt ?? null,
      record.forwardTo ?? null,
      record.by ?? null,
    );
  }

  private fenceStateNow(): FenceState {
    return this.lease.state(this.fenceRecord(), this.statements.meta.get('seq')!.value);
  }

  /**
   * Inside a write's transaction: refused unless open here. A lease that lapsed by this node's
   * clock is recorded as a lapse (a new epoch) in the same transaction, so a change of the fence
   * still expecting the fenced epoch (a late renewal, a forward) is refused from now on.
   */
  private assertNotFenced(): void {
    const record = this.fenceRecord();
    const left = this.lease.leftMs(record);
    if (record.mode === 'fenced' && left !== undefined && left <= 0) {
      this.writeFence(lapseOf(record));
      return;
    }
    if (record.mode !== 'open')
      throw new StoreError('fenced', `the store is ${record.mode}: writes are refused until it is unfenced`);
  }

  private putNow(request: PutItem): { item: StoredItem; created: boolean } {
    this.assertNotFenced();
    const existing = this.statements.byId.get(request.id);
    if (existing && existing.owner !== request.owner) throw new StoreError('not-found', `item ${request.id} not found`);
    const live = existing && existing.deleted === 0 ? existing : undefined;
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
    // A recreated item starts unshared: its former sharees already saw the deletion.
    if (existing && !live) this.statements.dropAccess.run(request.id);
    const row: ItemRow = {
      seq: this.statements.nextSeq.get()!.value,
      id: request.id,
      owner: request.owner,
      type: request.type,
      data: JSON.stringify(request.data),
      rev: nextRevision(existing?.rev),
      deleted: 0,
      shares: live ? live.shares : '[]',
      updated_at: new Date().toISOString(),
    };
    (existing ? this.statements.update : this.statements.insert).run(row);
    this.rows.delete(request.id);
    return { item: toItem(row), created: !live };
  }

  private deleteNow(id: string, owner: string, ifMatch?: string): StoredItem {
    this.assertNotFenced();
    const existing = this.statements.byId.get(id);
    if (!existing || existing.owner !== owner || existing.deleted === 1)
      throw new StoreError('not-found', `item ${id} not found`);
    if (ifMatch !== undefined && existing.rev !== ifMatch)
      throw new StoreError('precondition-failed', `item ${id} is at revision ${existing.rev}, not ${ifMatch}`);
    // Sharees keep their access row, so the tombstone reaches their feeds too.
    const row: ItemRow = {
      ...existing,
      seq: this.statements.nextSeq.get()!.value,
      data: null,
      rev: nextRevision(existing.rev),
      deleted: 1,
      updated_at: new Date().toISOString(),
    };
    this.statements.update.run(row);
    this.rows.delete(id);
    return toItem(row);
  }

  private shareNow(id: string, owner: string, to: string, granted: boolean): StoredItem {
    this.assertNotFenced();
    const existing = this.statements.byId.get(id);
    if (!existing || existing.owner !== owner || existing.deleted === 1)
      throw new StoreError('not-found', `item ${id} not found`);
    const shares = JSON.parse(existing.shares) as string[];
    if (shares.includes(to) === granted) return toItem(existing);
    const next = granted ? [...shares, to] : shares.filter((user) => user !== to);
    const row: ItemRow = {
      ...existing,
      seq: this.statements.nextSeq.get()!.value,
      rev: nextRevision(existing.rev),
      shares: JSON.stringify(next),
      updated_at: new Date().toISOString(),
    };
    this.statements.update.run(row);
    this.rows.delete(id);
    if (granted) this.statements.grant.run(id, to, row.seq);
    else this.statements.revoke.run(row.seq, id, to);
    return toItem(row);
  }

  private importNow(lines: ExportItemLine[]): { applied: number; skipped: number; seq: number } {
    let counter = this.statements.meta.get('seq')!.value;
    let applied = 0;
    let skipped = 0;
    for (const line of lines) {
      const seq = decodeCursor(line.cursor);
      if (seq === undefined || seq === 0)
        throw new Error(`import line for item ${line.id} has an invalid cursor ${JSON.stringify(line.cursor)}`);
      const existing = this.statements.byId.get(line.id);
      if (existing && holdsAtLeast(existing.rev, line.rev)) {
        skipped++;
        continue;
      }
      if (seq <= counter) {
        const occupant = this.statements.bySeq.get(seq);
        if (occupant && occupant.id !== line.id) {
          // Only a local change (a smoke test on a stack not yet live) can hold an imported number: it moves after.
          counter++;
          this.statements.moveSeq.run(counter, seq);
        }
      }
      const row: ItemRow = {
        seq,
        id: line.id,
        owner: line.owner,
        type: line.type,
        data: line.deleted || line.data === undefined ? null : JSON.stringify(line.data),
        rev: line.rev,
        deleted: line.deleted ? 1 : 0,
        shares: JSON.stringify(line.shares),
        updated_at: line.updatedAt,
      };
      (existing ? this.statements.importUpdate : this.statements.importInsert).run(row);
      if (line.shares.length > 0 || (existing && existing.shares !== '[]')) this.importAccess(line, seq);
      counter = Math.max(counter, seq);
      applied++;
    }
    this.statements.setMeta.run(counter, 'seq');
    this.rows.clear();
    return { applied, skipped, seq: counter };
  }

  /** Sharees dropped between the copy we had and the imported one see it as a revocation at the imported change. */
  private importAccess(line: ExportItemLine, seq: number): void {
    const wanted = new Set(line.shares);
    for (const { user, revoked } of this.statements.accessOf.all(line.id)) {
      if (!wanted.has(user) && revoked === 0) this.statements.revoke.run(seq, line.id, user);
    }
    for (const user of wanted) this.statements.grant.run(line.id, user, seq);
  }
}

/** How many of these rows (in page order) a page takes: up to and including the one whose data passes maxBytes. */
function pageLength(sizes: Iterable<{ bytes: number | null }>, maxBytes: number): number {
  let count = 0;
  let bytes = 0;
  for (const row of sizes) {
    count++;
    bytes += row.bytes ?? 0;
    if (bytes >= maxBytes) break;
  }
  return count;
}
