/**
 * The client API (server/README.md): items with revisions, sharing, the inbox, the changes feed and the
 * stream. An item exists only for its owner and its sharees: to anyone else every route answers
 * 404, while a sharee trying to change it is told 403.
 */
import { z } from 'zod';
import { MAX_ITEM_BYTES } from '../../src/navcloud/protocol.ts';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import { ApiError } from '../errors.ts';
import { StoreError, type StoredItem } from '../store/port.ts';
import { changeOf, itemBody } from '../wire.ts';
import type { AppContext, Exchange, Handler } from './context.ts';
import { readJson, sendEmpty, sendJson, sendJsonText } from './io.ts';
import { ifMatch, ifNoneMatch, itemId, limitParam, sinceParam, userId, USER_ID } from './params.ts';

const PutBody = z.strictObject({
  type: z.enum(['trip', 'route', 'place']),
  data: z.record(z.string(), z.unknown()),
});

const ShareBody = z.strictObject({
  to: z.string().regex(USER_ID, 'must be a user id of 1-128 characters without spaces or slashes'),
});

const SHARE_BODY_LIMIT = 4096;
const MAX_STREAMS_PER_USER = 64;

function notFound(id: string): ApiError {
  return new ApiError(404, 'not-found', `item ${id} not found`);
}

/** A store's 'not-found' on a change: 403 if the caller can read the item (a sharee), else 404. */
async function refuseChange(context: AppContext, id: string, user: string, error: unknown): Promise<never> {
  if (error instanceof StoreError && error.code === 'not-found') {
    if (await context.store.get(id, user))
      throw new ApiError(403, 'not-owner', `item ${id} is shared with you: only its owner may change it`);
    throw notFound(id);
  }
  throw error;
}

const etag = (rev: string) => `"${rev}"`;

/**
 * The owner's view of items as last serialised, by item object: a store that hands out the same
 * object for an unchanged item (the SQLite store does) is answered without serialising it again.
 */
const ownerBodies = new WeakMap<StoredItem, string>();

export const getItem: Handler = async (context, { response, principal, params }) => {
  const id = itemId(params[0]);
  const item = await context.store.get(id, principal.user);
  if (!item) throw notFound(id);
  let body = item.owner === principal.user ? ownerBodies.get(item) : undefined;
  if (body === undefined) {
    body = JSON.stringify(itemBody(item, principal.user));
    if (item.owner === principal.user) ownerBodies.set(item, body);
  }
  sendJsonText(response, 200, body, { etag: etag(item.rev) });
};

export const putItem: Handler = async (context, exchange) => {
  const { request, response, principal, params } = exchange;
  const id = itemId(params[0]);
  const match = ifMatch(request.headers['if-match']);
  const noneMatch = ifNoneMatch(request.headers['if-none-match']);
  if (match !== undefined && noneMatch !== undefined)
    throw new ApiError(400, 'invalid-precondition', 'If-Match and If-None-Match cannot be combined');
  const body = await readJson(exchange, MAX_ITEM_BYTES, PutBody);
  const result = await context.store
    .put({ id, owner: principal.user, type: body.type, data: body.data, ifMatch: match, ifNoneMatch: noneMatch })
    .catch((error: unknown) => refuseChange(context, id, principal.user, error));
  context.announce(result.item.seq, [principal.user, ...result.item.shares]);
  sendJson(response, result.created ? 201 : 200, itemBody(result.item, principal.user), {
    etag: etag(result.item.rev),
  });
};

export const deleteItem: Handler = async (context, { request, response, principal, params }) => {
  const id = itemId(params[0]);
  const match = ifMatch(request.headers['if-match']);
  const tombstone = await context.store
    .delete(id, principal.user, match)
    .catch((error: unknown) => refuseChange(context, id, principal.user, error));
  context.announce(tombstone.seq, [principal.user, ...tombstone.shares]);
  sendEmpty(response, 204);
};

export const shareItem: Handler = async (context, exchange) => {
  const { response, principal, params } = exchange;
  const id = itemId(params[0]);
  const { to } = await readJson(exchange, SHARE_BODY_LIMIT, ShareBody);
  if (to === principal.user) throw new ApiError(400, 'invalid-share', 'an item cannot be shared with its owner');
  const item = await context.store
    .share(id, principal.user, to)
    .catch((error: unknown) => refuseChange(context, id, principal.user, error));
  context.announce(item.seq, [principal.user, ...item.shares]);
  sendJson(response, 200, { id: item.id, rev: item.rev, shares: item.shares }, { etag: etag(item.rev) });
};

export const unshareItem: Handler = async (context, { response, principal, params }) => {
  const id = itemId(params[0]);
  const to = userId(params[1], 'the user to stop sharing with');
  const item = await context.store
    .unshare(id, principal.user, to)
    .catch((error: unknown) => refuseChange(context, id, principal.user, error));
  context.announce(item.seq, [principal.user, to, ...item.shares]);
  sendEmpty(response, 204, { etag: etag(item.rev) });
};

export const inbox: Handler = async (context, { response, principal, query }) => {
  const items = await context.store.inbox(principal.user, limitParam(query, 100, 200));
  sendJson(response, 200, { items: items.map((item) => itemBody(item, principal.user)) });
};

/** The store ends a page after the change that passes its byte bound (PAGE_BYTES), before it loads the items. */
export const changes: Handler = async (context, { response, principal, query }) => {
  const since = sinceParam(query);
  const limit = limitParam(query, 100, 1000);
  const page = await context.store.changes(principal.user, since, limit);
  const next = page.length > 0 ? page[page.length - 1]!.seq : since;
  sendJsonText(
    response,
    200,
    `{"changes":[${page.map((change) => JSON.stringify(changeOf(change))).join(',')}],"next":${JSON.stringify(encodeCursor(next))}}`,
  );
};

export const stream: Handler = async (context, exchange: Exchange) => {
  const { response, principal, query } = exchange;
  if (context.state.draining) {
    throw new ApiError(503, 'draining', `node ${context.config.nodeId} is draining: connect to another node`, {
      'retry-after': String(context.config.retryAfterSeconds),
    });
  }
  const since = sinceParam(query);
  const highest = await context.store.highestSeq();
  if (since > highest)
    throw new ApiError(
      410,
      'cursor-gone',
      `cursor ${since} is beyond the newest change of this store: start again without since`,
    );
  // Each stream holds a socket and up to a buffer's worth of unsent bytes: one user cannot hold a node's memory.
  // Checked just before opening, with no await between, so concurrent opens cannot pass it together.
  if (context.hub.streamsOf(principal.user) >= MAX_STREAMS_PER_USER) {
    throw new ApiError(
      429,
      'too-many-streams',
      `a user may hold at most ${MAX_STREAMS_PER_USER} streams on one node: close one first`,
      { 'retry-after': String(context.config.retryAfterSeconds) },
    );
  }
  context.hub.open(principal.user, since, response);
};
