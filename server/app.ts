/**
 * One sync node: plain node:http with a small router in front of the handlers, the stream hub,
 * and the node's lifecycle (start, drain, graceful close). `startServer` is what the `navcloud-sync`
 * bin runs and what tests and the local profile start in-process.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { createLogger, type Logger } from '../src/logging.ts';
import { Authenticator, type Principal } from './auth.ts';
import { openBus } from './bus/open.ts';
import type { EventBus } from './bus/port.ts';
import { defaultConfig, type ServerConfig } from './config.ts';
import { ApiError } from './errors.ts';
import * as admin from './http/admin.ts';
import type { AppContext, Handler, NodeState } from './http/context.ts';
import { sendError, sendJson } from './http/io.ts';
import * as api from './http/sync-api.ts';
import { Metrics } from './metrics.ts';
import { acceptProxied } from './proxy-protocol.ts';
import { RateLimiter } from './rate-limit.ts';
import { instrumentStore } from './store/instrumented.ts';
import { openStore } from './store/open.ts';
import { StoreError, type SyncStore } from './store/port.ts';
import { StreamHub } from './streams.ts';

type Access = 'public' | 'user' | 'admin';

interface Route {
  method: string;
  /** Segments; `:` marks a parameter. */
  pattern: string[];
  name: string;
  access: Access;
  handler: Handler;
}

function route(method: string, path: string, access: Access, handler: Handler): Route {
  return { method, pattern: path.split('/').slice(1), name: path, access, handler };
}

const health: Handler = async (context, { response }) => sendJson(response, 200, { status: 'ok', node: context.config.nodeId });

const ready: Handler = async (context, { response }) => {
  if (context.state.draining) throw new ApiError(503, 'draining', `node ${context.config.nodeId} is draining`);
  try {
    await context.store.ping();
  } catch (error) {
    throw new ApiError(503, 'store-unavailable', `store is unreachable: ${(error as Error).message}`);
  }
  sendJson(response, 200, { status: 'ready', node: context.config.nodeId });
};

const metricsRoute: Handler = async (context, { response }) => {
  const text = context.metrics.render();
  response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
  response.end(text);
};

const ROUTES: Route[] = [
  route('GET', '/v1/items/:id', 'user', api.getItem),
  route('PUT', '/v1/items/:id', 'user', api.putItem),
  route('DELETE', '/v1/items/:id', 'user', api.deleteItem),
  route('POST', '/v1/items/:id/shares', 'user', api.shareItem),
  route('DELETE', '/v1/items/:id/shares/:user', 'user', api.unshareItem),
  route('GET', '/v1/inbox', 'user', api.inbox),
  route('GET', '/v1/changes', 'user', api.changes),
  route('GET', '/v1/stream', 'user', api.stream),
  route('GET', '/healthz', 'public', health),
  route('GET', '/readyz', 'public', ready),
  route('GET', '/metrics', 'public', metricsRoute),
  route('GET', '/admin/export', 'admin', admin.exportItems),
  route('POST', '/admin/import', 'admin', admin.importItems),
  route('POST', '/admin/fence', 'admin', admin.fence),
  route('POST', '/admin/forward', 'admin', admin.forward),
  route('POST', '/admin/unfence', 'admin', admin.unfence),
  route('POST', '/admin/drain', 'admin', admin.drain),
  route('POST', '/admin/undrain', 'admin', admin.undrain),
  route('GET', '/admin/stats', 'admin', admin.stats),
];

/** Handlers only read the query: one empty instance serves every request without a query string. */
const NO_QUERY = new URLSearchParams();

function match(path: string): { routes: Route[]; params: string[] } | undefined {
  const segments = path.split('/').slice(1);
  let params: string[] = [];
  const found: Route[] = [];
  for (const candidate of ROUTES) {
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
    if (ok) {
      found.push(candidate);
      params = values;
    }
  }
  return found.length > 0 ? { routes: found, params } : undefined;
}

/** The storage errors a client can act on, as API errors. */
function fromStoreError(error: StoreError, retryAfter: number): ApiError {
  switch (error.code) {
    case 'fenced':
      return new ApiError(503, 'fenced', 'writes are fenced while the service switches stacks: retry shortly', { 'retry-after': String(retryAfter) });
    case 'unavailable':
      return new ApiError(503, 'store-unavailable', error.message, { 'retry-after': '1' });
    case 'not-found':
      return new ApiError(404, 'not-found', error.message);
    case 'precondition-failed':
      return new ApiError(412, 'precondition-failed', error.message);
    case 'cursor-gone':
      return new ApiError(410, 'cursor-gone', error.message);
    case 'fence-lapsed':
      return new ApiError(409, 'fence-lapsed', error.message);
  }
}

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  nodeId: string;
  /** Graceful: stop accepting, send reconnect to every stream, finish in-flight requests, close the store. */
  close(): Promise<void>;
}

export interface StartOptions extends Partial<ServerConfig> {
  jwtSecret: string;
  logger?: Logger;
  /** An already-open store (tests of other adapters); otherwise `store` is opened. It is closed with the server. */
  storeInstance?: SyncStore;
  busInstance?: EventBus;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const { logger: givenLogger, storeInstance, busInstance, ...overrides } = options;
  const config = defaultConfig(overrides);
  const logger = (givenLogger ?? createLogger('navcloud-sync')).child({ node: config.nodeId });
  const state: NodeState = { draining: false, shuttingDown: false, startedAt: Date.now() };
  let hub: StreamHub | undefined;
  const metrics = new Metrics(() => hub?.size ?? 0);
  const store = instrumentStore(storeInstance ?? (await openStore(config.store)), (operation, seconds) => metrics.storeCall(operation, seconds));
  const bus = busInstance ?? (await openBus(config.bus, config.nodeId, logger));
  hub = new StreamHub({
    store, bus, metrics, logger, nodeId: config.nodeId,
    heartbeatMs: config.heartbeatMs, bufferBytes: config.streamBufferBytes, slowStreamMs: config.slowStreamMs,
  });
  const context: AppContext = {
    config, store, bus, hub, metrics, logger, state,
    announce(seq, users) {
      bus.publish({ seq, users: [...new Set(users)], node: config.nodeId, at: Date.now() });
    },
  };
  const limiter = config.rateLimit ? new RateLimiter(config.rateLimit) : undefined;
  const authenticator = new Authenticator(config.jwtSecret);
  const clientAddresses = new WeakMap<Socket, string>();
  let inFlight = 0;
  let idle: (() => void) | undefined;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = request.method ?? 'GET';
    const client = clientAddresses.get(request.socket) ?? request.socket.remoteAddress ?? 'unknown';
    let name = 'unmatched';
    let user: string | undefined;
    try {
      if (state.shuttingDown) {
        response.setHeader('connection', 'close');
        throw new ApiError(503, 'shutting-down', `node ${config.nodeId} is shutting down`, { 'retry-after': '1' });
      }
      const found = match(path);
      if (!found) throw new ApiError(404, 'no-route', `no route for ${path.slice(0, 200)}`);
      let chosen: Route | undefined;
      for (const candidate of found.routes) if (candidate.method === method) chosen = candidate;
      if (!chosen) throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path.slice(0, 200)}`, { allow: found.routes.map((r) => r.method).join(', ') });
      name = chosen.name;
      let principal: Principal = { user: '', admin: false };
      if (chosen.access !== 'public') {
        try {
          principal = authenticator.authenticate(request.headers.authorization);
        } catch (error) {
          // Failed authentications count against the client's address, so guessing tokens is throttled too.
          const wait = limiter?.take(`address:${client}`) ?? 0;
          if (wait > 0) throw new ApiError(429, 'rate-limited', `too many requests from ${client}`, { 'retry-after': String(wait) });
          throw error;
        }
        user = principal.user;
        if (chosen.access === 'admin' && !principal.admin) throw new ApiError(403, 'forbidden', 'admin endpoints need a token with role "admin"');
        const wait = limiter?.take(`user:${principal.user}`) ?? 0;
        if (wait > 0) throw new ApiError(429, 'rate-limited', `too many requests for user ${principal.user}: retry in ${wait} s`, { 'retry-after': String(wait) });
      }
      await chosen.handler(context, { request, response, principal, params: found.params, query: q < 0 ? NO_QUERY : new URLSearchParams(url.slice(q + 1)) });
    } catch (caught) {
      const error = caught instanceof StoreError ? fromStoreError(caught, config.retryAfterSeconds) : caught;
      if (response.headersSent) {
        logger.error({ err: error, route: name, user }, 'request failed after its answer started; cutting the connection');
        response.destroy();
      } else if (error instanceof ApiError) {
        sendError(response, error);
      } else {
        logger.error({ err: error, route: name, method, user, client }, 'request failed');
        sendJson(response, 500, { error: { code: 'internal', message: 'internal error; the node logged the details' } });
      }
    } finally {
      metrics.request(name, method, response.statusCode);
      if (logger.isLevelEnabled('debug')) logger.debug({ method, route: name, status: response.statusCode, user, client }, 'request');
    }
  }

  // A restore streams a whole backup as one import body: give a request an hour to arrive, not
  // node's default five minutes (request heads still have to arrive within a minute).
  const server: Server = createHttpServer({ keepAliveTimeout: 65_000, requestTimeout: 3_600_000 }, (request, response) => {
    inFlight++;
    // A stream is in flight until its headers are out; after that the hub owns it.
    handle(request, response).then(finished, (error: unknown) => {
      // Only answering the error itself can fail here; the node must stay up regardless.
      logger.error({ err: error }, 'could not answer a failed request');
      response.destroy();
      finished();
    });
  });
  function finished(): void {
    inFlight--;
    if (inFlight === 0) idle?.();
  }
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
    logger.debug({ err: error }, 'malformed HTTP request');
  });

  let listener: Server | NetServer = server;
  if (config.proxyProtocol) {
    listener = createNetServer((socket) => {
      acceptProxied(
        socket,
        5000,
        (header) => {
          if (header.kind === 'proxy') clientAddresses.set(socket, header.source.address);
          server.emit('connection', socket);
        },
        (reason) => logger.warn({ remote: socket.remoteAddress, reason }, 'connection refused: PROXY protocol v2 header required'),
      );
    });
  }
  // A deep accept queue: after a switch, thousands of streams reconnect at once.
  listener.listen({ port: config.port, host: config.host, backlog: 4096 });
  await once(listener, 'listening');
  const address = listener.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, store: config.store.replace(/\/\/[^@/]*@/, '//[redacted]@'), bus: config.bus.replace(/\/\/[^@/]*@/, '//[redacted]@'), heartbeatMs: config.heartbeatMs, proxyProtocol: config.proxyProtocol }, 'sync node listening');

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      state.shuttingDown = true;
      state.draining = true;
      const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
      if (listener !== server) server.close();
      const streams = hub!.closeAll('shutdown');
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref()),
        ]);
      }
      server.closeIdleConnections();
      const forced = setTimeout(() => server.closeAllConnections(), 2000);
      forced.unref();
      await listenerClosed;
      clearTimeout(forced);
      hub!.stop();
      await bus.close();
      await store.close();
      logger.info({ streams, unfinished: inFlight }, 'sync node stopped');
    })();
    return closing;
  }

  return { url, port, nodeId: config.nodeId, close };
}
