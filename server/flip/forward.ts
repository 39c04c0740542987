/**
 * Relays a client's request to the stack this one forwards to and its answer back: the caller's
 * headers (its Authorization included) with its address appended to X-Forwarded-For, the body
 * the pipeline already read, and the answer as it arrives. A stream stays relayed, heartbeats and
 * all, until either side closes it; `pipe` keeps at most a socket's buffers of it in memory.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from '../../src/logging.ts';
import { ApiError } from '../errors.ts';
import { spreadOver } from '../spread.ts';

/** Headers that describe one connection, not the request: never relayed (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** A request already relayed this often is refused: stacks forwarding to each other would loop it forever. */
const MAX_HOPS = 3;
const VIA = '1.1 navcloud-sync';

export interface ForwardCall {
  request: IncomingMessage;
  response: ServerResponse;
  /** The client's address as this node knows it (the PROXY header's source behind a load balancer). */
  client: string;
  /** The body already read, for requests that have one. */
  body: Buffer | undefined;
  /** A stream: relayed until either side closes, not bounded by `timeoutMs`. */
  stream: boolean;
}

export interface ForwarderOptions {
  /** Bound on a non-stream request's wait for the other stack's answer. */
  timeoutMs: number;
  logger: Logger;
}

export class Forwarder {
  private readonly http = new HttpAgent({ keepAlive: true });
  private readonly https = new HttpsAgent({ keepAlive: true });
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly options: ForwarderOptions) {}

  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * Resolves once the answer is relayed (for a stream: once its headers are), so the node counts
   * a relayed stream in flight no longer than a local one. Rejects with a 503 ApiError when the
   * other stack cannot be reached before anything was answered.
   */
  forward(to: string, call: ForwardCall): Promise<void> {
    const { request, response } = call;
    const hops = countHops(request.headers.via);
    if (hops >= MAX_HOPS) {
      return Promise.reject(
        new ApiError(
          503,
          'forward-loop',
          `request already relayed ${hops} times between stacks: refusing to relay it again`,
          { 'retry-after': '5' },
        ),
      );
    }
    const target = new URL(request.url ?? '/', to);
    const secure = target.protocol === 'https:';
    const headers = relayedHeaders(request.headers);
    // The other stack's host, and the length of the body as read here.
    delete headers.host;
    delete headers['content-length'];
    const forwardedFor = request.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = forwardedFor
      ? `${Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor}, ${call.client}`
      : call.client;
    headers.via = request.headers.via ? `${request.headers.via}, ${VIA}` : VIA;
    if (call.body) headers['content-length'] = call.body.length;
    return new Promise((resolve, reject) => {
      const upstream = (secure ? httpsRequest : httpRequest)(target, {
        method: request.method,
        headers,
        agent: secure ? this.https : this.http,
      });
      let answered = false;
      const fail = (error: Error) => {
        if (answered) {
          // Mid-answer: the client sees a cut connection, as it would from the other stack itself.
          response.destroy();
          return;
        }
        answered = true;
        reject(
          new ApiError(503, 'forward-failed', `could not relay the request to ${target.origin}: ${error.message}`, {
            'retry-after': '1',
          }),
        );
      };
      if (!call.stream) {
        upstream.setTimeout(this.options.timeoutMs, () =>
          upstream.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)),
        );
      }
      upstream.on('error', fail);
      upstream.on('response', (answer: IncomingMessage) => {
        answered = true;
        response.writeHead(answer.statusCode ?? 502, relayedHeaders(answer.headers));
        if (call.stream) {
          response.flushHeaders();
          response.socket?.setNoDelay(true);
          this.streams.add(response);
          resolve();
        }
        answer.pipe(response);
        answer.on('error', () => response.destroy());
        answer.on('end', () => resolve());
      });
      // The client going away ends the relay, a stream's included.
      response.on('close', () => {
        this.streams.delete(response);
        if (!upstream.destroyed) upstream.destroy();
        resolve();
      });
      upstream.end(call.body);
    });
  }

  /**
   * Ends every relayed stream (a drain, the stack stopped forwarding, this node going away), all
   * at once or spread over `spreadMs`: their clients reconnect.
   */
  closeStreams(spreadMs = 0): number {
    const streams = [...this.streams];
    spreadOver(streams, spreadMs, (response) => {
      this.streams.delete(response);
      response.end();
    });
    return streams.length;
  }

  close(): void {
    this.closeStreams();
    this.http.destroy();
    this.https.destroy();
  }
}

function relayedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const relayed: OutgoingHttpHeaders = {};
  // Headers named in Connection are hop-by-hop too.
  const named = new Set(
    String(headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((h) => h.trim()),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    relayed[name] = value;
  }
  return relayed;
}

function countHops(via: string | undefined): number {
  if (!via) return 0;
  return via.split(',').filter((hop) => hop.trim() === VIA).length;
}
