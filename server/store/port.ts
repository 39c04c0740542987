/**
 * The sync server's storage port. Nodes are stateless: everything, including the fence, lives
 * here, so every node of a stack sees one truth. Adapters: sqlite.ts (embedded default) and
 * riak/store.ts (Riak KV over HTTP). Both run the same contract suite (test/server/store-contract).
 *
 * Sequence numbers order all changes of a store. Import keeps the sequence numbers it is given,
 * so client cursors survive backup, restore and catch-up; a local change whose number an
 * imported change claims (only smoke-test writes on a stack not yet live) moves after it.
 */
import type { ExportItemLine, ImportResult, ItemType } from '../../src/navcloud/protocol.ts';

export interface StoredItem {
  id: string;
  owner: string;
  type: ItemType;
  /** Absent on tombstones. */
  data?: unknown;
  rev: string;
  deleted: boolean;
  shares: string[];
  seq: number;
  updatedAt: string;
}

/** A change as one user sees it in their feed. */
export interface StoredChange extends StoredItem {
  /** Set when the change reaches this user through a share (`shared` stream messages). */
  sharedBy?: string;
  /** Set on a share's revocation as this user sees it. */
  revoked?: boolean;
}

export interface PutItem {
  id: string;
  owner: string;
  type: ItemType;
  data: unknown;
  /** `*`: create only. */
  ifNoneMatch?: '*';
  /** Update only this revision. */
  ifMatch?: string;
}

/**
 * The fence, shared by every node of the store. 'fenced' refuses writes until its lease lapses (a
 * switch that dies cannot leave the stack fenced forever: nothing sweeps, a lapsed lease simply
 * reads as 'open'); 'forwarding' is the committed switch: every request goes to `forwardTo`.
 */
export type FenceMode = 'open' | 'fenced' | 'forwarding';

export interface FenceState {
  mode: FenceMode;
  /** Epoch ms at which a 'fenced' store lapses back to 'open' by itself (absent otherwise). */
  leaseExpiresAt?: number;
  /** Base URL of the stack every request is forwarded to ('forwarding' only). */
  forwardTo?: string;
  /** Highest sequence number when answered: encodeCursor(seq) is the fence cursor. */
  seq: number;
}

/** Wall-clock epoch ms; the store's lease arithmetic reads time only through it, so tests can move it. */
export type Clock = () => number;

/** What a page of changes or of the inbox holds of item data unless told otherwise: a thousand 256 KiB items would not fit in memory. */
export const PAGE_BYTES = 4 * 1024 * 1024;

/** Store failures the HTTP layer maps to status codes. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: 'not-found' | 'precondition-failed' | 'fenced' | 'fence-lapsed' | 'unavailable' | 'cursor-gone',
    message: string,
  ) {
    super(message);
  }
}

/**
 * An export: `through` is its cursor. Every write the store acknowledged with a number in
 * (since, through] is among `items`, or was overwritten by a later change (whose number is above
 * `through` if it is not among them), so the next export from `through` misses nothing.
 */
export interface StoreExport<Item = StoredItem> {
  through: number;
  items: AsyncIterable<Item>;
}

/** What the data check needs of an item (GET /admin/revisions). */
export interface ItemRevision extends Pick<StoredItem, 'id' | 'rev' | 'seq'> {
  /**
   * The revision this store last received by import (a restore or a copy), when it has one: a
   * local change since keeps it. The data check knows by it that a newer revision here descends
   * from the old stack's, rather than from an older copy that missed it.
   */
  copiedRev?: string;
}

export interface SyncStore {
  /**
   * The item as `user` may see it: owned or shared with them; tombstones are not returned.
   * Callers treat the result as read-only: an adapter may hand out a cached object.
   */
  get(id: string, user: string): Promise<StoredItem | undefined>;
  /** The item whoever owns it, tombstones included: the operator's view (GET /admin/items/:id). */
  item(id: string): Promise<StoredItem | undefined>;
  /** Create or update; an id owned by someone else is 'not-found' to the caller. Rejects with 'fenced' while fenced. */
  put(request: PutItem): Promise<{ item: StoredItem; created: boolean }>;
  /** Leaves a tombstone. */
  delete(id: string, owner: string, ifMatch?: string): Promise<StoredItem>;
  share(id: string, owner: string, to: string): Promise<StoredItem>;
  unshare(id: string, owner: string, to: string): Promise<StoredItem>;
  /** Live items shared with `user`, newest first: at most `limit`, ending with the item whose data passes `maxBytes` (default PAGE_BYTES). */
  inbox(user: string, limit: number, maxBytes?: number): Promise<StoredItem[]>;
  /**
   * Changes visible to `user` with seq > since, oldest first. 'cursor-gone' when since is beyond the store or compacted.
   * At most `limit` changes, and the page ends with the change whose item data takes the page past
   * `maxBytes` (default PAGE_BYTES): an adapter bounds a page by size before it loads the items.
   */
  changes(user: string, since: number, limit: number, maxBytes?: number): Promise<StoredChange[]>;
  /** Every item (tombstones too) whose last change is > since and at most the export's `through`. */
  exportSince(since: number): Promise<StoreExport>;
  /**
   * Every item (tombstones too) in id order, each with its revision, number and copied revision:
   * the data check's view, reached by a path of its own (not the export's walk by number).
   */
  revisionsById(): AsyncIterable<ItemRevision>;
  /** Idempotent: keeps revisions and sequence numbers; older or equal revisions are skipped. */
  import(lines: ExportItemLine[]): Promise<Omit<ImportResult, 'cursor'> & { seq: number }>;
  /**
   * Numbers every later change above `through` and answers the highest number after. An import
   * ends with this, given the export's cursor: the source may have taken numbers up to it that it
   * never stored (a refused or crashed write), and a copy back "since that cursor" must not skip a
   * change this store numbers at or below it.
   */
  raiseNumbering(through: number): Promise<number>;
  /** open|fenced -> fenced with lease now + leaseMs (a repeat renews it); forwarding is answered as is. */
  fence(leaseMs: number): Promise<FenceState>;
  /** fenced (lease live) -> forwarding to `to`, lease cleared; already forwarding to `to` is answered as is; otherwise 'fence-lapsed'. */
  forward(to: string): Promise<FenceState>;
  /** any -> open. */
  unfence(): Promise<FenceState>;
  /** A lapsed lease reads as 'open'. */
  fenceState(): Promise<FenceState>;
  /** Highest sequence number in the store. */
  highestSeq(): Promise<number>;
  countItems(): Promise<number>;
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
