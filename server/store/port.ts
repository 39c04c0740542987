/**
 * The sync server's storage port. Nodes are stateless: everything, including the fence, lives
 * here, so every node of a stack sees one truth. Adapters: sqlite.ts (embedded default) and
 * riak/store.ts (Riak KV over HTTP). Both run the same contract suite (test/server/store-contract).
 *
 * Sequence numbers order all changes of a store. Import keeps the sequence numbers it is given,
 * so client cursors survive backup, restore and catch-up; a local change whose number an
 * imported change claims (only smoke-test writes on a stack not yet live) moves after it.
 */
import type { ExportItemLine, FenceMode, ImportResult, ItemType } from '../../src/navcloud/protocol.ts';

export type { FenceMode } from '../../src/navcloud/protocol.ts';

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
 * The fence, shared by every node of the store, as the answering node acts on it. 'fenced' refuses
 * writes until its lease lapses (a switch that dies cannot leave the stack fenced forever: nothing
 * sweeps); 'forwarding' is the committed switch: every request goes to `forwardTo`.
 *
 * Every change of the fence raises its `epoch`, and names the epoch and mode it expects to find:
 * one compare-and-set, so a change sent on a state that has moved on (a late or repeated request,
 * a run that is over) is refused ('fence-conflict') and changes nothing. A lease is a duration:
 * each node measures it on its own monotonic clock from when it first saw that epoch, so node
 * clocks need not agree; a node that finds the lease lapsed records the lapse (a new epoch, open)
 * before it applies a write, so a change still expecting the fenced epoch is refused.
 */
export interface FenceState {
  mode: FenceMode;
  epoch: number;
  /** 'fenced' only: the lease, and how much of it this node has left by its own clock (ms). */
  leaseMs?: number;
  leaseLeftMs?: number;
  /** Base URL of the stack every request is forwarded to ('forwarding' only). */
  forwardTo?: string;
  /** Who made the last change (a caller's `by`, or `lapse:<node>`). */
  by?: string;
  /** Highest sequence number when answered: encodeCursor(seq) is the fence cursor. */
  seq: number;
}

/** What a change of the fence expects to find: the epoch, and the mode (as the answering node acts on it). */
export interface FenceExpectation {
  epoch: number;
  mode: FenceMode;
}

/**
 * A change of the fence. `by` names the caller (one step of one run): a change whose expectation
 * is behind only because the same caller changed the fence since (its retry, or its earlier
 * request) goes ahead from where that left it, so a retry of a change whose answer was lost is
 * answered as done.
 */
export interface FenceChange {
  expected: FenceExpectation;
  by: string;
}

/** Monotonic ms (performance.now by default): the only clock a store measures a lease on, so tests can move it. */
export type Clock = () => number;

/** What a page of changes or of the inbox holds of item data unless told otherwise: a thousand 256 KiB items would not fit in memory. */
export const PAGE_BYTES = 4 * 1024 * 1024;

/** Store failures the HTTP layer maps to status codes. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: 'not-found' | 'precondition-failed' | 'fenced' | 'unavailable' | 'cursor-gone',
    message: string,
  ) {
    super(message);
  }
}

/** A change of the fence found it other than it expected: nothing changed; `current` is what it found. */
export class FenceConflict extends Error {
  override name = 'FenceConflict';
  constructor(
    message: string,
    readonly current: FenceState,
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
  /**
   * open -> fenced for `leaseMs` (takes the fence; also from a lease lapsed here), fenced -> fenced
   * (renews it, only while its lease is live here). FenceConflict otherwise.
   */
  fence(change: FenceChange & { leaseMs: number }): Promise<FenceState>;
  /**
   * fenced (lease live here) -> forwarding to `to`: the commit of a switch, only if no write was
   * acknowledged past `cursor` (the end of the copy taken under this fence). FenceConflict otherwise.
   */
  forward(change: FenceChange & { to: string; cursor: number }): Promise<FenceState>;
  /** fenced or forwarding -> open (an open store is answered as is). FenceConflict otherwise. */
  unfence(change: FenceChange): Promise<FenceState>;
  /** As this node acts on it: a lease lapsed by its clock reads as 'open'. */
  fenceState(): Promise<FenceState>;
  /**
   * Resolves once every write this node began before the call is acknowledged or refused (a
   * refused one undone), or after `withinMs`, answering how many are still unresolved. A copy
   * behind a fence that starts once every node settled carries the undos of the writes the fence
   * caught, so the commit after it is not refused as behind. Writes begun after the call read the
   * fence afresh and are refused before they store anything.
   */
  settleWrites(withinMs: number): Promise<{ unresolved: number }>;
  /** Highest sequence number in the store. */
  highestSeq(): Promise<number>;
  countItems(): Promise<number>;
  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
