/**
 * The route table: every endpoint of a node with who may call it and what it does while the stack
 * switches. A route is one line here; the request pipeline (pipeline.ts) looks requests up in it.
 */
import * as admin from './admin.ts';
import type { Handler } from './context.ts';
import * as probes from './probes.ts';
import * as api from './sync-api.ts';

/** public: anyone; user: any valid token; admin: a token with role "admin". */
export type Access = 'public' | 'user' | 'admin';

/**
 * What a route does while the stack switches (server/flip/hold.ts reads it, nothing else decides):
 * - local: answered by this node whatever the fence (operators, probes, metrics);
 * - read: answered here while fenced, relayed while forwarding;
 * - write: changes items: its body is read first, it is held while fenced, relayed while forwarding;
 * - stream: like read, and once relayed it stays relayed until either side closes it.
 */
export type Flip = 'local' | 'read' | 'write' | 'stream';

export interface Route {
  method: string;
  /** The path pattern, as metrics and logs name the route. */
  name: string;
  /** Segments of the pattern; `:` marks a parameter. */
  pattern: string[];
  access: Access;
  flip: Flip;
  handler: Handler;
}

function route(method: string, path: string, access: Access, flip: Flip, handler: Handler): Route {
  return { method, pattern: path.split('/').slice(1), name: path, access, flip, handler };
}

export const ROUTES: Route[] = [
  route('GET', '/v1/items/:id', 'user', 'read', api.getItem),
  route('PUT', '/v1/items/:id', 'user', 'write', api.putItem),
  route('DELETE', '/v1/items/:id', 'user', 'write', api.deleteItem),
  route('POST', '/v1/items/:id/shares', 'user', 'write', api.shareItem),
  route('DELETE', '/v1/items/:id/shares/:user', 'user', 'write', api.unshareItem),
  route('GET', '/v1/inbox', 'user', 'read', api.inbox),
  route('GET', '/v1/changes', 'user', 'read', api.changes),
  route('GET', '/v1/stream', 'user', 'stream', api.stream),
  route('GET', '/healthz', 'public', 'local', probes.health),
  route('GET', '/readyz', 'public', 'local', probes.ready),
  route('GET', '/metrics', 'public', 'local', probes.metrics),
  route('GET', '/admin/export', 'admin', 'local', admin.exportItems),
  route('GET', '/admin/revisions', 'admin', 'local', admin.revisions),
  route('GET', '/admin/items/:id', 'admin', 'local', admin.itemLine),
  // Imports fill the new stack while the old one is fenced: never held.
  route('POST', '/admin/import', 'admin', 'local', admin.importItems),
  route('GET', '/admin/fence', 'admin', 'local', admin.fenceNow),
  route('POST', '/admin/fence', 'admin', 'local', admin.fence),
  route('POST', '/admin/forward', 'admin', 'local', admin.forward),
  route('POST', '/admin/unfence', 'admin', 'local', admin.unfence),
  route('GET', '/admin/settled', 'admin', 'local', admin.settled),
  route('POST', '/admin/drain', 'admin', 'local', admin.drain),
  route('POST', '/admin/undrain', 'admin', 'local', admin.undrain),
  route('GET', '/admin/stats', 'admin', 'local', admin.stats),
];

/** A path's routes: `route` for the request's method if there is one, and the methods the path allows. */
export interface PathMatch {
  route: Route | undefined;
  allowed: string[];
  /** Path parameters, in pattern order. */
  params: string[];
}

/** undefined when no route has this path. */
export function matchRoute(method: string, path: string, routes: readonly Route[] = ROUTES): PathMatch | undefined {
  const segments = path.split('/').slice(1);
  let found: PathMatch | undefined;
  for (const candidate of routes) {
    if (candidate.pattern.length !== segments.length) continue;
    const values: string[] = [];
    let ok = true;
    for (let i = 0; i < segments.length; i++) {
      const part = candidate.pattern[i]!;
      if (part.startsWith(':')) values.push(segments[i]!);
      else if (part !== segments[i]) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    found ??= { route: undefined, allowed: [], params: values };
    found.allowed.push(candidate.method);
    if (candidate.method === method) {
      found.route = candidate;
      found.params = values;
    }
  }
  return found;
}
