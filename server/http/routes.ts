/**
 * The route table: every endpoint of a node with who may call it. A route is one line here;
 * the request pipeline (pipeline.ts) looks requests up in it.
 */
import * as admin from './admin.ts';
import type { Handler } from './context.ts';
import * as probes from './probes.ts';
import * as api from './sync-api.ts';

/** public: anyone; user: any valid token; admin: a token with role "admin". */
export type Access = 'public' | 'user' | 'admin';

export interface Route {
  method: string;
  /** The path pattern, as metrics and logs name the route. */
  name: string;
  /** Segments of the pattern; `:` marks a parameter. */
  pattern: string[];
  access: Access;
  handler: Handler;
}

function route(method: string, path: string, access: Access, handler: Handler): Route {
  return { method, pattern: path.split('/').slice(1), name: path, access, handler };
}

export const ROUTES: Route[] = [
  route('GET', '/v1/items/:id', 'user', api.getItem),
  route('PUT', '/v1/items/:id', 'user', api.putItem),
  route('DELETE', '/v1/items/:id', 'user', api.deleteItem),
  route('POST', '/v1/items/:id/shares', 'user', api.shareItem),
  route('DELETE', '/v1/items/:id/shares/:user', 'user', api.unshareItem),
  route('GET', '/v1/inbox', 'user', api.inbox),
  route('GET', '/v1/changes', 'user', api.changes),
  route('GET', '/v1/stream', 'user', api.stream),
  route('GET', '/healthz', 'public', probes.health),
  route('GET', '/readyz', 'public', probes.ready),
  route('GET', '/metrics', 'public', probes.metrics),
  route('GET', '/admin/export', 'admin', admin.exportItems),
  route('GET', '/admin/revisions', 'admin', admin.revisions),
  route('GET', '/admin/items/:id', 'admin', admin.itemLine),
  route('POST', '/admin/import', 'admin', admin.importItems),
  route('GET', '/admin/fence', 'admin', admin.fenceNow),
  route('POST', '/admin/fence', 'admin', admin.fence),
  route('POST', '/admin/forward', 'admin', admin.forward),
  route('POST', '/admin/unfence', 'admin', admin.unfence),
  route('POST', '/admin/drain', 'admin', admin.drain),
  route('POST', '/admin/undrain', 'admin', admin.undrain),
  route('GET', '/admin/stats', 'admin', admin.stats),
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
