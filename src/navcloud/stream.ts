/**
 * HTTP exchanges with a sync node over node:http, read as they arrive: the raw response for the
 * typed client (src/navcloud/client.ts) and the NDJSON reader of GET /v1/stream. node:http
 * rather than fetch so a caller controls the agent (one per fleet), sees connection failures as
 * such, and can hold thousands of chunked responses open cheaply.
 */
import { request, type Agent, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { ApiErrorBody, StreamMessage } from './protocol.ts';

export interface HttpExchange {
  method: string;
  /** Base URL of a node or load balancer, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** Path with its query string. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  agent?: Agent;
  signal?: AbortSignal;
  /** Bound on the wait for the response headers; a stream's body is not bounded by it. */
  headersTimeoutMs?: number;
}

/** Raised when no complete answer arrived: refused, reset, cut off, timed out. HTTP statuses are never this. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(
    readonly target: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${target}: ${message}`, options);
  }
}

export interface OpenResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  request: ClientRequest;
}

/** Sends one request and resolves with the response once its headers are in. */
export function openResponse(exchange: HttpExchange): Promise<OpenResponse> {
  const url = new URL(exchange.path, exchange.baseUrl);
  const target = `${exchange.method} ${url.origin}${url.pathname}`;
  return new Promise((resolve, reject) => {
    if (exchange.signal?.aborted) {
      reject(exchange.signal.reason);
      return;
    }
    const headers: Record<string, string | number> = { ...exchange.headers };
    if (exchange.body !== undefined) headers['content-length'] = Buffer.byteLength(exchange.body);
    const req = request(url, { method: exchange.method, headers, agent: exchange.agent, signal: exchange.signal });
    const timer =
      exchange.headersTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            req.destroy(new ConnectionError(target, `no answer within ${exchange.headersTimeoutMs} ms`));
          }, exchange.headersTimeoutMs);
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, request: req });
    });
    // `on`, not `once`: a socket can fail again after the answer started, and must not crash the process.
    req.on('error', (err) => {
      clearTimeout(timer);
      if (exchange.signal?.aborted) reject(exchange.signal.reason);
      else if (err instanceof ConnectionError) reject(err);
      else reject(new ConnectionError(target, err.message, { cause: err }));
    });
    req.end(exchange.body);
  });
}

/** Reads a whole body as text; a reset midway, or no end within `timeoutMs`, is a ConnectionError. */
export async function readText(response: OpenResponse, target: string, timeoutMs?: number): Promise<string> {
  const chunks: Buffer[] = [];
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          response.request.destroy();
        }, timeoutMs);
  try {
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
  } catch (err) {
    if (timedOut) throw new ConnectionError(target, `answer not complete within ${timeoutMs} ms`, { cause: err });
    throw new ConnectionError(target, `response cut off: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The `error` member of an API error body, or a description of what came instead. */
export function parseApiError(status: number, text: string): ApiErrorBody['error'] {
  try {
    const parsed = JSON.parse(text) as Partial<ApiErrorBody>;
    if (parsed.error && typeof parsed.error.code === 'string') return parsed.error;
  } catch {
    // Not JSON: a proxy or a crashed handler answered; keep its text for the report.
  }
  return { code: `http-${status}`, message: text.slice(0, 200) || `HTTP ${status}` };
}

/** Milliseconds a 503 or 429 asks the client to wait (Retry-After in seconds or as a date). */
export function retryAfterMs(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['retry-after'];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Splits a chunked body into parsed JSON lines as they arrive. */
async function* ndjsonLines(body: AsyncIterable<Buffer>): AsyncGenerator<unknown> {
  // A chunk can end inside a multi-byte character: the decoder keeps the partial bytes.
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of body) {
    pending += decoder.write(chunk);
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield parseLine(line);
      newline = pending.indexOf('\n');
    }
  }
  pending += decoder.end();
  if (pending.trim()) yield parseLine(pending.trim());
}

/** A line of an NDJSON body that is not JSON: the peer is broken, retrying will not help. */
export class NdjsonError extends Error {
  override name = 'NdjsonError';
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new NdjsonError(`NDJSON line is not JSON: ${line.slice(0, 120)}`);
  }
}

/**
 * One open GET /v1/stream. Iterate it for messages; the iteration ends when the server closes
 * the stream cleanly (after `reconnect`) or when close() is called, and throws ConnectionError
 * when it is cut off or silent too long, or the signal's reason when aborted. `cursor` follows
 * the last change received, ready for a resume.
 */
export class SyncStream implements AsyncIterable<StreamMessage> {
  cursor: string | undefined;
  /** Node id from the last heartbeat. */
  node: string | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private iterated = false;
  private closedByClient = false;
  private cutReason: ConnectionError | undefined;

  constructor(
    private readonly response: OpenResponse,
    private readonly options: { since?: string; target: string; idleTimeoutMs?: number; signal?: AbortSignal },
  ) {
    this.cursor = options.since;
    this.armIdleTimer();
  }

  /** Ends the stream from this side; an iteration in progress finishes without error. */
  close(): void {
    this.closedByClient = true;
    this.stop();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StreamMessage> {
    if (this.iterated) throw new Error('a SyncStream can be iterated once');
    this.iterated = true;
    try {
      for await (const line of ndjsonLines(this.bodyWithIdleCheck())) {
        const message = line as StreamMessage;
        if (message.type === 'change' || message.type === 'shared') this.cursor = message.cursor;
        else if (message.type === 'heartbeat') this.node = message.node;
        yield message;
      }
      if (this.cutReason) throw this.cutReason;
    } catch (err) {
      if (this.options.signal?.aborted) throw this.options.signal.reason;
      if (this.closedByClient) return;
      if (this.cutReason) throw this.cutReason;
      if (err instanceof NdjsonError || err instanceof ConnectionError) throw err;
      throw new ConnectionError(this.options.target, `stream cut off: ${(err as Error).message}`, { cause: err });
    } finally {
      this.stop();
    }
  }

  private stop(): void {
    clearTimeout(this.idleTimer);
    this.response.request.destroy();
  }

  private async *bodyWithIdleCheck(): AsyncGenerator<Buffer> {
    for await (const chunk of this.response.body) {
      this.armIdleTimer();
      yield chunk as Buffer;
    }
  }

  private armIdleTimer(): void {
    const idleTimeoutMs = this.options.idleTimeoutMs;
    if (idleTimeoutMs === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.cutReason = new ConnectionError(this.options.target, `stream silent for ${idleTimeoutMs} ms`);
      this.response.request.destroy();
    }, idleTimeoutMs);
    this.idleTimer.unref();
  }
}
