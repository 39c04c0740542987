/**
 * Operator endpoints (JWT role=admin): export and import for backups and catch-up, the fence that
 * stops writes on every node sharing the store (with a lease, then forwarding once the switch
 * commits), this node's drain and its undoing, and its stats.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate } from 'node:timers/promises';
import { z } from 'zod';
import {
  ITEM_ID,
  type DrainResult,
  type ExportEndLine,
  type ExportItemLine,
  type ExportRevisionLine,
  type FenceConflictBody,
  type FenceResult,
  type FenceStatus,
  type ImportResult,
  type NodeStats,
  type SettleResult,
} from '../../src/navcloud/protocol.ts';
import { decodeCursor, encodeCursor } from '../../src/navcloud/cursor.ts';
import { ApiError } from '../errors.ts';
import type { ServerResponse } from 'node:http';
import { FenceConflict, StoreError, type FenceState, type ItemRevision } from '../store/port.ts';
import { exportLineOf } from '../wire.ts';
import type { Handler } from './context.ts';
import { fromStoreError } from './failures.ts';
import { drained, readJson, requireContentType, sendJson } from './io.ts';
import { parseJson } from './json.ts';
import { integerParam, itemId, sinceParam, USER_ID } from './params.ts';

const EXPORT_CHUNK = 64 * 1024;
/** Lines per store transaction: large batches amortise each commit over more rows. */
const IMPORT_BATCH = 10_000;
/** …and at most about this many characters of them, so large items cannot make a batch huge. */
const IMPORT_BATCH_CHARS = 8 * 1024 * 1024;
/** An item line holds at most a 256 KiB item plus its envelope. */
const MAX_LINE = 512 * 1024;
const ITEM_TYPES = new Set(['trip', 'route', 'place']);
const FENCE_BODY_LIMIT = 4096;
const FenceExpected = z.strictObject(
  {
    epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    mode: z.enum(['open', 'fenced', 'forwarding']),
  },
  { error: 'must be { epoch, mode }: the fence as the caller last saw it (GET /admin/fence)' },
);
const FenceBy = z.string().min(1).max(256).describe('who sends the change: one step of one run');
const FenceBody = z.strictObject({
  expected: FenceExpected,
  by: FenceBy,
  leaseSeconds: z.number().int().min(1).max(3600),
});
const UnfenceBody = z.strictObject({ expected: FenceExpected, by: FenceBy });
const ForwardBody = z.strictObject({
  expected: FenceExpected,
  by: FenceBy,
  cursor: z
    .string()
    .max(64)
    .refine(
      (cursor) => decodeCursor(cursor) !== undefined,
      'must be a cursor of this service: where the copy under the fence ended',
    ),
  to: z
    .string()
    .max(2048)
    .refine((to) => {
      try {
        const url = new URL(to);
        return (
          (url.protocol === 'http:' || url.protocol === 'https:') &&
          url.username === '' &&
          url.password === '' &&
          url.search === '' &&
          url.hash === ''
        );
      } catch {
        return false;
      }
    }, 'must be the http(s)://host:port base URL of the stack to forward to'),
});

/** Event-loop delay in 10-second windows: a lifetime percentile would hide a node that turned slow. */
const LAG_WINDOW_MS = 10_000;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let previousWindowLagMs = 0;
setInterval(() => {
  previousWindowLagMs = loopDelay.count ? loopDelay.percentile(99) / 1e6 : 0;
  loopDelay.reset();
}, LAG_WINDOW_MS).unref();

/** One item as an export line, whoever owns it (tombstones too): the data check's look-up by id. */
export const itemLine: Handler = async (context, { response, params }) => {
  const id = itemId(params[0]);
  const item = await context.store.item(id);
  if (!item) throw new ApiError(404, 'not-found', `item ${id} does not exist on this stack`);
  sendJson(response, 200, exportLineOf(item));
};

/** GET /admin/export[?since=CURSOR]: every item after the cursor, then the end line the store vouches for. */
export const exportItems: Handler = async (context, { response, query }) => {
  const since = sinceParam(query);
  const highest = await context.store.highestSeq();
  if (since > highest)
    throw new ApiError(410, 'cursor-gone', `cursor ${since} is beyond the newest change of this store`);
  const exported = await context.store.exportSince(since);
  // The store vouches that no acknowledged change up to `through` is missing from the lines.
  await sendLines(response, exported.items, exportLineOf, (items) => ({
    kind: 'end',
    cursor: encodeCursor(exported.through),
    items,
  }));
};

/**
 * GET /admin/revisions: every item in id order with its revision, cursor and copied revision, the
 * data check's view. Its end line carries the highest cursor when the listing began, and the count.
 */
export const revisions: Handler = async (context, { response }) => {
  const highest = await context.store.highestSeq();
  await sendLines(response, context.store.revisionsById(), revisionLineOf, (items) => ({
    kind: 'end',
    cursor: encodeCursor(highest),
    items,
  }));
};

/** Streams NDJSON lines in chunks, then the end line; gives up quietly when the reader went away. */
async function sendLines<Item>(
  response: ServerResponse,
  items: AsyncIterable<Item>,
  lineOf: (item: Item) => object,
  endOf: (items: number) => ExportEndLine,
): Promise<void> {
  response.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  let chunk = '';
  let count = 0;
  for await (const item of items) {
    chunk += `${JSON.stringify(lineOf(item))}\n`;
    count++;
    if (chunk.length >= EXPORT_CHUNK) {
      const more = response.write(chunk);
      chunk = '';
      if (!more && !(await drained(response))) return;
      // A fast reader on loopback takes every chunk at once, so the socket never pushes back: without
      // this turn of the event loop, a whole export would run while this node's clients wait.
      if (more) await setImmediate();
    }
  }
  response.end(`${chunk}${JSON.stringify(endOf(count))}\n`);
}

function revisionLineOf({ id, rev, seq, copiedRev }: ItemRevision): ExportRevisionLine {
  const line: ExportRevisionLine = { kind: 'revision', id, rev, cursor: encodeCursor(seq) };
  if (copiedRev !== undefined) line.copiedRev = copiedRev;
  return line;
}

/** Revisions as stores write them (`<generation>-<nonce>`), with room for the generation to grow. */
const REVISION = /^[0-9]{1,15}-[A-Za-z0-9]{1,64}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
/**
 * The highest sequence number an import may carry: later writes number on from the store's highest,
 * and must stay exact integers with cursors that decode (2^53 - 2^50 writes of headroom).
 */
const MAX_IMPORTED_SEQ = 2 ** 50;

/** A line that cannot be imported, or the store failing partway, with exactly which lines were imported before it. */
function importError(
  status: ApiError['status'],
  code: string,
  message: string,
  importedThrough: number,
  headers: Record<string, string> = {},
  failed?: string,
): ApiError {
  const before =
    importedThrough === 0
      ? 'no line before them was imported'
      : `lines 1-${importedThrough} were imported (applied, or skipped as not newer)`;
  const done = failed
    ? `${before}; of lines ${failed} some may be`
    : importedThrough === 0
      ? 'no line was imported'
      : `${before} and nothing after them`;
  return new ApiError(status, code, `${message}; ${done} (import is idempotent: fix and resend)`, headers);
}

/** A line that is not a valid import line; the message says why. */
class LineRefused extends Error {}

/** One NDJSON line of an import: an item line, or the export's end line with the number its cursor stands for. */
function parseImportLine(text: string): ExportItemLine | { kind: 'end'; through: number } {
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (error) {
    throw new LineRefused((error as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new LineRefused('expected a JSON object');
  const value = parsed as Record<string, unknown>;
  if (value.kind === 'end') {
    const through = typeof value.cursor === 'string' ? decodeCursor(value.cursor) : undefined;
    if (through === undefined) throw new LineRefused("the end line's cursor is not a cursor of this service");
    if (through > MAX_IMPORTED_SEQ)
      throw new LineRefused(
        `the end line's cursor stands for change ${through}, above the ${MAX_IMPORTED_SEQ} an import may carry`,
      );
    return { kind: 'end', through };
  }
  if (value.kind !== 'item') throw new LineRefused('kind must be "item" or "end"');
  const { id, owner, type, rev, deleted, data, shares, cursor, updatedAt } = value;
  if (typeof id !== 'string' || !ITEM_ID.test(id))
    throw new LineRefused('id must be 1-128 characters of A-Za-z0-9._- other than . and ..');
  if (typeof owner !== 'string' || !USER_ID.test(owner))
    throw new LineRefused('owner must be a user id of 1-128 characters without spaces, slashes or control characters');
  if (typeof type !== 'string' || !ITEM_TYPES.has(type)) throw new LineRefused('type must be trip, route or place');
  if (typeof rev !== 'string' || !REVISION.test(rev))
    throw new LineRefused('rev must be a revision like "3-ab12cd" (generation below 10^15)');
  if (typeof deleted !== 'boolean') throw new LineRefused('deleted must be a boolean');
  if (!deleted && (typeof data !== 'object' || data === null || Array.isArray(data)))
    throw new LineRefused('data must be an object on a live item');
  if (
    !Array.isArray(shares) ||
    !shares.every((user) => typeof user === 'string' && USER_ID.test(user) && user !== owner) ||
    new Set(shares).size !== shares.length
  ) {
    throw new LineRefused('shares must be an array of distinct user ids other than the owner');
  }
  const seq = typeof cursor === 'string' ? decodeCursor(cursor) : undefined;
  if (seq === undefined || seq === 0) throw new LineRefused('cursor is not a cursor of this service');
  if (seq > MAX_IMPORTED_SEQ)
    throw new LineRefused(`cursor stands for change ${seq}, above the ${MAX_IMPORTED_SEQ} an import may carry`);
  if (typeof updatedAt !== 'string' || !TIMESTAMP.test(updatedAt) || Number.isNaN(Date.parse(updatedAt)))
    throw new LineRefused('updatedAt must be an ISO timestamp in UTC');
  const line: ExportItemLine = {
    kind: 'item',
    id,
    owner,
    type: type as ExportItemLine['type'],
    rev,
    deleted,
    shares: shares as string[],
    cursor: cursor as string,
    updatedAt,
  };
  if (!deleted) line.data = data;
  return line;
}

export const importItems: Handler = async (context, { request, response }) => {
  requireContentType(request, 'application/x-ndjson');
  request.setEncoding('utf8');
  let applied = 0;
  let skipped = 0;
  let seq = await context.store.highestSeq();
  let batch: ExportItemLine[] = [];
  let batchChars = 0;
  let lineNumber = 0;
  /** Every line up to this one is in the store (or was skipped as not newer). */
  let importedThrough = 0;
  let pending = '';
  /** The export's cursor, from its end line(s): the numbering is raised to it once every line is in. */
  let through: number | undefined;
  const flush = async () => {
    if (batch.length > 0) {
      let result;
      try {
        result = await context.store.import(batch);
      } catch (error) {
        const refusal =
          error instanceof StoreError ? fromStoreError(error, context.config.retryAfterSeconds) : undefined;
        if (!refusal) throw error;
        // A store may apply a batch's lines side by side: some of them may be in.
        throw importError(
          refusal.status,
          refusal.code,
          `lines ${importedThrough + 1}-${lineNumber} could not all be imported: ${refusal.message}`,
          importedThrough,
          refusal.headers,
          `${importedThrough + 1}-${lineNumber}`,
        );
      }
      applied += result.applied;
      skipped += result.skipped;
      seq = result.seq;
      const users = new Set<string>();
      for (const line of batch) {
        users.add(line.owner);
        for (const user of line.shares) users.add(user);
      }
      context.announce(seq, users);
      batch = [];
      batchChars = 0;
    }
    importedThrough = lineNumber;
  };
  /** Applies the lines before a refused one, then refuses it. */
  const refuse = async (status: ApiError['status'], code: string, message: string): Promise<never> => {
    await flush();
    throw importError(status, code, message, importedThrough);
  };
  /** Takes one line into the batch; the reason it is refused otherwise. Synchronous: it runs for every line. */
  const take = (text: string): string | undefined => {
    if (text.trim() !== '') {
      let line;
      try {
        line = parseImportLine(text);
      } catch (error) {
        if (!(error instanceof LineRefused)) throw error;
        return `line ${lineNumber + 1}: ${error.message}`;
      }
      // Exports sent one after another carry an end line each: the last cursor is the highest.
      if (line.kind === 'end') through = Math.max(through ?? 0, line.through);
      else batch.push(line);
      batchChars += text.length;
    }
    lineNumber++;
    return undefined;
  };
  for await (const chunk of request as AsyncIterable<string>) {
    pending += chunk;
    let start = 0;
    for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n', start)) {
      const refused = take(pending.slice(start, newline));
      if (refused) await refuse(400, 'invalid-import-line', refused);
      start = newline + 1;
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE)
      await refuse(413, 'payload-too-large', `line ${lineNumber + 1} is longer than ${MAX_LINE} characters`);
    if (batch.length >= IMPORT_BATCH || batchChars >= IMPORT_BATCH_CHARS) await flush();
  }
  const refused = take(pending);
  if (refused) await refuse(400, 'invalid-import-line', refused);
  await flush();
  if (through !== undefined) seq = await context.store.raiseNumbering(through);
  const result: ImportResult = { applied, skipped, cursor: encodeCursor(seq) };
  context.logger.info({ ...result }, 'import finished');
  sendJson(response, 200, result);
};

function fenceStatus(state: FenceState): FenceStatus {
  const status: FenceStatus = { mode: state.mode, epoch: state.epoch };
  if (state.leaseLeftMs !== undefined) status.leaseLeftMs = Math.max(0, Math.round(state.leaseLeftMs));
  if (state.forwardTo !== undefined) status.forwardTo = state.forwardTo;
  return status;
}

function fenceResult(state: FenceState): FenceResult {
  const result: FenceResult = { fenced: state.mode !== 'open', ...fenceStatus(state), cursor: encodeCursor(state.seq) };
  if (state.leaseMs !== undefined) result.leaseSeconds = state.leaseMs / 1000;
  if (state.by !== undefined) result.by = state.by;
  return result;
}

/** A change of the fence; one the store finds on another state than expected answers 409 with the fence as it is. */
async function changeFence(change: () => Promise<FenceState>): Promise<FenceResult> {
  try {
    return fenceResult(await change());
  } catch (error) {
    if (!(error instanceof FenceConflict)) throw error;
    const extra: Omit<FenceConflictBody, 'error'> = { fence: fenceResult(error.current) };
    throw new ApiError(409, 'fence-conflict', error.message, {}, extra);
  }
}

/** GET /admin/fence: the fence as this node acts on it, with the epoch a change must expect. */
export const fenceNow: Handler = async (context, { response }) => {
  sendJson(response, 200, fenceResult(await context.store.fenceState()));
};

/** Takes the fence (expected open) or renews it (expected fenced, lease live). */
export const fence: Handler = async (context, exchange) => {
  const { expected, by, leaseSeconds } = await readJson(exchange, FENCE_BODY_LIMIT, FenceBody);
  const result = await changeFence(() => context.store.fence({ expected, by, leaseMs: leaseSeconds * 1000 }));
  context.logger.warn(
    { ...result, leaseSeconds },
    'store fenced: writes held on every node until the lease lapses here',
  );
  sendJson(exchange.response, 200, result);
};

/** The switch's commit: only from a live fence under which no write was acknowledged past `cursor`. */
export const forward: Handler = async (context, exchange) => {
  const { expected, by, cursor, to } = await readJson(exchange, FENCE_BODY_LIMIT, ForwardBody);
  const result = await changeFence(() =>
    context.store.forward({ expected, by, cursor: decodeCursor(cursor)!, to: to.replace(/\/+$/, '') }),
  );
  context.logger.warn({ ...result }, 'store forwarding: every request goes to the new stack');
  sendJson(exchange.response, 200, result);
};

export const unfence: Handler = async (context, exchange) => {
  const { expected, by } = await readJson(exchange, FENCE_BODY_LIMIT, UnfenceBody);
  const result = await changeFence(() => context.store.unfence({ expected, by }));
  context.logger.warn({ cursor: result.cursor, epoch: result.epoch, by }, 'store unfenced: writes accepted again');
  sendJson(exchange.response, 200, result);
};

/** The longest GET /admin/settled waits: a node frozen mid-write must not hold the switch's copy. */
const MAX_SETTLE_MS = 10_000;

/**
 * GET /admin/settled?within_ms=N: answers once every write this node began before the request is
 * acknowledged or refused (a refused one undone), or after N ms (default 2,000), with how many are
 * still unresolved. A switch asks every node of a stack it fenced before the copy under the fence.
 */
export const settled: Handler = async (context, { response, query }) => {
  const withinMs = integerParam(query, 'within_ms', 2_000, 0, MAX_SETTLE_MS, 'invalid-within');
  const { unresolved } = await context.store.settleWrites(withinMs);
  if (unresolved > 0) context.logger.warn({ unresolved, withinMs }, 'writes still unresolved after the settle wait');
  const result: SettleResult = { node: context.config.nodeId, unresolved };
  sendJson(response, 200, result);
};

export const drain: Handler = async (context, { response }) => {
  context.state.draining = true;
  const spreadMs = context.config.reconnectSpreadMs;
  const closedStreams = context.hub.closeAll('draining', spreadMs) + context.forwarder.closeStreams(spreadMs);
  context.logger.warn({ closedStreams, spreadMs }, 'node draining: streams told to reconnect, readyz answers 503');
  const result: DrainResult = { draining: true, closedStreams };
  sendJson(response, 200, result);
};

/**
 * A rollback sends clients back to a stack a switch drained. A node shutting down stays refused:
 * the router answers every request 503 once shutdown begins, so this never reopens a closing node.
 */
export const undrain: Handler = async (context, { response }) => {
  context.state.draining = false;
  context.logger.warn('node undrained: readyz answers 200 and streams are accepted again');
  const result: DrainResult = { draining: false, closedStreams: 0 };
  sendJson(response, 200, result);
};

export const stats: Handler = async (context, { response }) => {
  const [fence, items, seq] = await Promise.all([
    context.store.fenceState(),
    context.store.countItems(),
    context.store.highestSeq(),
  ]);
  const body: NodeStats = {
    node: context.config.nodeId,
    fenced: fence.mode !== 'open',
    fence: fenceStatus(fence),
    draining: context.state.draining,
    openStreams: context.hub.size + context.forwarder.openStreams,
    requestRate: context.metrics.requestRate(),
    items,
    cursor: encodeCursor(seq),
    uptimeSeconds: Math.floor((Date.now() - context.state.startedAt) / 1000),
    version: context.config.version,
    eventLoopLagMs:
      Math.round(Math.max(previousWindowLagMs, loopDelay.count ? loopDelay.percentile(99) / 1e6 : 0) * 10) / 10,
    flip: { ...context.metrics.flip },
  };
  sendJson(response, 200, body);
};
