/**
 * Wire shapes of the NavCloud sync API (server/README.md) shared by the server, the orchestrator's
 * activities, the smoke tests and the synthetic clients. Change them here, nowhere else.
 */

export type ItemType = 'trip' | 'route' | 'place';
/** 1-128 of A-Za-z0-9._-, but not `.` or `..`: path segments (and a Riak key of `.` names the bucket). */
export const ITEM_ID = /^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$/;
export const MAX_ITEM_BYTES = 256 * 1024;

/** An item as of one change: what the feed, the stream and an export all carry. */
interface ItemVersion {
  /** Opaque cursor just after this change: a client resuming with it gets what follows. */
  cursor: string;
  id: string;
  owner: string;
  type: ItemType;
  rev: string;
  deleted: boolean;
  /** Absent on tombstones. */
  data?: unknown;
  updatedAt: string;
}

/** One change as the feed and the stream deliver it. */
export type Change = ItemVersion;

export interface ChangesPage {
  changes: Change[];
  next: string;
}

/** A change on the stream: there `type` names the message, so the item's type travels as `itemType`. */
export type StreamedChange = Omit<Change, 'type'> & { itemType: ItemType };

export type StreamMessage =
  | ({ type: 'change' } & StreamedChange)
  | ({ type: 'shared'; by: string; to: string; revoked?: boolean } & StreamedChange)
  | { type: 'heartbeat'; at: string; node: string }
  | { type: 'reconnect'; reason: string };

/**
 * A line of GET /admin/export, of POST /admin/import, and of every backup's data.
 * `seq`-level ordering is carried by `cursor`, which import preserves.
 */
export interface ExportItemLine extends ItemVersion {
  kind: 'item';
  /** Users the item is shared with. */
  shares: string[];
}

/** Always the last line of an export: every change up to `cursor` was in the lines before. */
export interface ExportEndLine {
  kind: 'end';
  cursor: string;
  items: number;
}

export type ExportLine = ExportItemLine | ExportEndLine;

/**
 * One item of GET /admin/revisions: what the data check compares, without the item's data, which
 * the node then neither reads nor encodes. `copiedRev` is the revision the stack last imported for
 * the item, when it has one (a local change since keeps it).
 */
export interface ExportRevisionLine {
  kind: 'revision';
  id: string;
  rev: string;
  cursor: string;
  copiedRev?: string;
}

export type RevisionExportLine = ExportRevisionLine | ExportEndLine;

/**
 * A line of a node's acknowledgment journal (SYNC_ACK_JOURNAL, server/README.md): one write the
 * node's store applied and the node then answered, with when the store call began and ended
 * (epoch ms, fractional, on the node's clock). Judges outside the stack (`npm run chaos`) read it.
 */
export type AckJournalLine =
  | {
      kind: 'ack';
      op: 'put' | 'delete' | 'share' | 'unshare';
      id: string;
      owner: string;
      rev: string;
      seq: number;
      from: number;
      to: number;
    }
  /** The journal reached its bound: nothing after this line was recorded. */
  | { kind: 'truncated'; at: number };

/** Answer of POST /admin/import. */
export interface ImportResult {
  /** Lines applied (newer than what the store had). */
  applied: number;
  /** Lines skipped because the store already had that revision or a newer one. */
  skipped: number;
  /** Highest cursor now in the store. */
  cursor: string;
}

/**
 * How a stack's store treats requests: 'open' applies them, 'fenced' holds writes until its lease
 * lapses or it changes, 'forwarding' passes every request to another stack (a committed switch).
 */
export type FenceMode = 'open' | 'fenced' | 'forwarding';

/** What a change of the fence expects to find; anything else answers 409 `fence-conflict` and changes nothing. */
export interface FenceExpectation {
  epoch: number;
  mode: FenceMode;
}

/**
 * Every change of the fence names what it expects and who sends it: one step of one run, so a
 * retry of a change whose answer was lost is answered as done (server/README.md, "The fence").
 */
interface FenceChangeRequest {
  expected: FenceExpectation;
  by: string;
}

/** Body of POST /admin/fence: takes the fence (expected open) or renews it (expected fenced). */
export interface FenceRequest extends FenceChangeRequest {
  leaseSeconds: number;
}

/** Body of POST /admin/forward: the commit of a switch, from a live fence under which nothing was acknowledged past `cursor`. */
export interface ForwardRequest extends FenceChangeRequest {
  to: string;
  cursor: string;
}

/** Body of POST /admin/unfence. */
export type UnfenceRequest = FenceChangeRequest;

/** Answer of GET /admin/fence and of POST /admin/fence, /admin/forward and /admin/unfence. */
export interface FenceResult {
  /** True while writes are refused: 'fenced' or 'forwarding'. */
  fenced: boolean;
  /** As the answering node acts on it: a lease lapsed by its clock reads 'open'. */
  mode: FenceMode;
  /** Raised by every change of the fence. */
  epoch: number;
  /** Highest cursor in the store when the call returned: after a fence, no write follows it. */
  cursor: string;
  /** 'fenced' only: the lease, and how much of it the answering node has left by its own clock. */
  leaseSeconds?: number;
  leaseLeftMs?: number;
  /** The stack every request is forwarded to ('forwarding' only). */
  forwardTo?: string;
  /** Who made the last change. */
  by?: string;
}

/** A 409 `fence-conflict`: the error, and the fence as the change found it. */
export interface FenceConflictBody extends ApiErrorBody {
  fence: FenceResult;
}

/** The fence as GET /admin/stats reports it. */
export interface FenceStatus {
  mode: FenceMode;
  epoch: number;
  leaseLeftMs?: number;
  forwardTo?: string;
}

/** Answer of POST /admin/drain and /admin/undrain (one node). */
export interface DrainResult {
  draining: boolean;
  /** Streams the call sent `reconnect` and closed: none for an undrain. */
  closedStreams: number;
}

/** Answer of GET /admin/settled (one node): its writes begun before the request that are still unresolved. */
export interface SettleResult {
  node: string;
  unresolved: number;
}

/** Answer of GET /admin/stats (one node). */
export interface NodeStats {
  node: string;
  /** True for 'fenced' and 'forwarding'. */
  fenced: boolean;
  fence: FenceStatus;
  draining: boolean;
  openStreams: number;
  /** Requests per second over the last 10 seconds, admin calls excluded. */
  requestRate: number;
  items: number;
  cursor: string;
  uptimeSeconds: number;
  version: string;
  /** 99th percentile of the event loop's delay over the last 10 seconds, in ms. */
  eventLoopLagMs: number;
  /** What this node did through fences since it started (absent on nodes from before the flip). */
  flip?: FlipCounts;
}

/** Requests a node held through a fence or relayed to the stack it forwards to. */
export interface FlipCounts {
  /** Writes held while the stack was fenced, however the hold ended. */
  requestsHeld: number;
  /** Of those, the holds that ran out and were answered 503. */
  holdsTimedOut: number;
  /** Requests relayed to the stack this one forwards to, held writes included. */
  requestsForwarded: number;
}

export interface ApiErrorBody {
  error: { code: string; message: string };
}
