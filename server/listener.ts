/**
 * The node's sockets: the HTTP server (behind an optional PROXY protocol v2 listener), malformed
 * requests answered at the HTTP layer, requests in flight counted, and the graceful close of all
 * of it. What runs per request is the pipeline's business (http/pipeline.ts).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Logger } from '../src/logging.ts';
import { acceptProxied } from './proxy-protocol.ts';

export interface ListenerOptions {
  host: string;
  port: number;
  proxyProtocol: boolean;
  logger: Logger;
}

export interface Listener {
  /** http://host:port */
  url: string;
  port: number;
  /** Stops accepting connections; resolves once the listener is closed and connections have gone. */
  stopAccepting(): Promise<void>;
  /** Waits up to graceMs for requests in flight to finish; then idle connections are closed, and the rest 2 s later. */
  settle(graceMs: number): Promise<void>;
  /** Requests not finished yet. */
  readonly inFlight: number;
}

/**
 * Handles one request; `client` is the client's address: the PROXY header's source when there is
 * one, else the peer's.
 */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse, client: string) => Promise<void>;

/** Listens and hands every request to `handle`; a request counts as in flight until `handle` settles. */
export async function listen(options: ListenerOptions, handle: RequestHandler): Promise<Listener> {
  const { logger } = options;
  const clientAddresses = new WeakMap<Socket, string>();
  let inFlight = 0;
  let idle: (() => void) | undefined;

  // A restore streams a whole backup as one import body: give a request an hour to arrive, not
  // node's default five minutes (request heads still have to arrive within a minute).
  const server: Server = createHttpServer(
    { keepAliveTimeout: 65_000, requestTimeout: 3_600_000 },
    (request, response) => {
      inFlight++;
      // A stream is in flight until its headers are out; after that the hub owns it.
      const client = clientAddresses.get(request.socket) ?? request.socket.remoteAddress ?? 'unknown';
      handle(request, response, client).then(finished, (error: unknown) => {
        // Only answering the error itself can fail here; the node must stay up regardless.
        logger.error({ err: error }, 'could not answer a failed request');
        response.destroy();
        finished();
      });
    },
  );
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
  if (options.proxyProtocol) {
    listener = createNetServer((socket) => {
      acceptProxied(
        socket,
        5000,
        (header) => {
          if (header.kind === 'proxy') clientAddresses.set(socket, header.source.address);
          server.emit('connection', socket);
        },
        (reason) =>
          logger.warn(
            { remote: socket.remoteAddress, reason },
            'connection refused: PROXY protocol v2 header required',
          ),
      );
    });
  }
  // A deep accept queue: after a switch, thousands of streams reconnect at once.
  listener.listen({ port: options.port, host: options.host, backlog: 4096 });
  await once(listener, 'listening');
  const address = listener.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  let listenerClosed: Promise<void> | undefined;
  const stopAccepting = (): Promise<void> =>
    (listenerClosed ??= new Promise<void>((resolve) => {
      listener.close(() => resolve());
      if (listener !== server) server.close();
    }));

  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    port,
    get inFlight() {
      return inFlight;
    },
    stopAccepting,
    async settle(graceMs) {
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (idle = resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
        ]);
      }
      server.closeIdleConnections();
      const forced = setTimeout(() => server.closeAllConnections(), 2000);
      forced.unref();
      await stopAccepting();
      clearTimeout(forced);
    },
  };
}
