/**
 * What every request goes through, in order: refused while the node shuts down; routed;
 * authenticated and rate limited as its route demands; handed to the dispatch. Whatever fails
 * on the way is answered by failures.ts, and every request is counted under its route.
 */
import type { IncomingMessage } from 'node:http';
import type { Authenticator, Principal } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { RequestHandler } from '../listener.ts';
import type { RateLimiter } from '../rate-limit.ts';
import type { AppContext, Exchange } from './context.ts';
import { answerFailure } from './failures.ts';
import { matchRoute, type Route } from './routes.ts';

/** A routed and admitted request, as the dispatch sees it. */
export interface IncomingCall {
  /** What the route's handler is given: the dispatch keeps a held write's body on it. */
  exchange: Exchange;
  /** Its flags (access, what it does while the stack switches) decide how it is admitted and dispatched. */
  route: Route;
  /** The client's address (from the PROXY protocol header behind a load balancer). */
  client: string;
}

/**
 * Wraps the handler of every routed and admitted request: runs it, runs it again, or answers
 * itself instead (server/flip/hold.ts holds and forwards requests while the stack switches).
 */
export type Dispatch = (call: IncomingCall, handle: () => Promise<void>) => Promise<void>;

export interface PipelineOptions {
  context: AppContext;
  authenticator: Authenticator;
  limiter: RateLimiter | undefined;
  dispatch: Dispatch;
}

/** Handlers only read the query: one empty instance serves every request without a query string. */
const NO_QUERY = new URLSearchParams();
const PUBLIC: Principal = { user: '', admin: false };

export function requestPipeline(options: PipelineOptions): RequestHandler {
  const { context, authenticator, limiter, dispatch } = options;
  const { config, logger, metrics, state } = context;

  /** The caller as the route demands it, or a 401/403/429. */
  async function admit(route: Route, request: IncomingMessage, client: string): Promise<Principal> {
    if (route.access === 'public') return PUBLIC;
    let principal: Principal;
    try {
      principal = await authenticator.authenticate(request.headers.authorization);
    } catch (error) {
      // Failed authentications count against the client's address, so guessing tokens is throttled too.
      const wait = limiter?.take(`address:${client}`) ?? 0;
      if (wait > 0)
        throw new ApiError(429, 'rate-limited', `too many requests from ${client}`, { 'retry-after': String(wait) });
      throw error;
    }
    if (route.access === 'admin' && !principal.admin)
      throw new ApiError(403, 'forbidden', 'admin endpoints need a token with role "admin"');
    const wait = limiter?.take(`user:${principal.user}`) ?? 0;
    if (wait > 0)
      throw new ApiError(429, 'rate-limited', `too many requests for user ${principal.user}: retry in ${wait} s`, {
        'retry-after': String(wait),
      });
    return principal;
  }

  return async function handle(request, response, client) {
    const url = request.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = request.method ?? 'GET';
    let name = 'unmatched';
    let user: string | undefined;
    try {
      if (state.shuttingDown) {
        response.setHeader('connection', 'close');
        throw new ApiError(503, 'shutting-down', `node ${config.nodeId} is shutting down`, { 'retry-after': '1' });
      }
      const found = matchRoute(method, path);
      const route = found?.route;
      if (route) name = route.name;
      if (!found) throw new ApiError(404, 'no-route', `no route for ${path.slice(0, 200)}`);
      if (!route)
        throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path.slice(0, 200)}`, {
          allow: found.allowed.join(', '),
        });
      const principal = await admit(route, request, client);
      if (route.access !== 'public') user = principal.user;
      const query = q < 0 ? NO_QUERY : new URLSearchParams(url.slice(q + 1));
      const exchange: Exchange = { request, response, principal, params: found.params, query };
      await dispatch({ exchange, route, client }, () => route.handler(context, exchange));
    } catch (caught) {
      answerFailure(response, caught, config.retryAfterSeconds, logger, { route: name, method, user, client });
    } finally {
      metrics.request(name, method, response.statusCode);
      if (logger.isLevelEnabled('debug'))
        logger.debug({ method, route: name, status: response.statusCode, user, client }, 'request');
    }
  };
}
