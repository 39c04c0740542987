/**
 * A typed client for the user side of the NavCloud sync API (server/README.md), used by the smoke
 * tests, the synthetic client fleet and the tests (the admin side is src/navcloud/admin-client.ts;
 * tokens come from src/navcloud/token.ts). HTTP answers come back as results, never as exceptions, because
 * callers act on the status (412, 404, 503 + Retry-After); only a missing answer (refused,
 * reset, timed out) throws, as ConnectionError.
 */
import type { Agent } from 'node:http';
import type { ApiErrorBody, ChangesPage, ItemType } from './protocol.ts';
import { openResponse, parseApiError, readText, retryAfterMs, SyncStream } from './stream.ts';

export type ApiResult<T> =
  | { ok: true; status: number; etag?: string; body: T }
  | { ok: false; status: number; error: ApiErrorBody['error']; retryAfterMs?: number };

/** An item as GET/PUT answer it. */
export interface ItemView {
  id: string;
  owner: string;
  type: ItemType;
  rev: string;
  data?: unknown;
  updatedAt: string;
}

export interface ItemBody {
  type: ItemType;
  data: unknown;
}

/** `ifNoneMatch: '*'` creates only; `ifMatch` updates only that revision. */
export interface Precondition {
  ifMatch?: string;
  ifNoneMatch?: '*';
}

export interface SyncClientOptions {
  /** Base URL of a node or load balancer, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** Bearer token; undefined sends none (to check refusals). */
  token?: string;
  agent?: Agent;
  /** Bound on each request, from sending it to the end of its answer (a stream: to its headers). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface OpenStreamOptions {
  since?: string;
  signal?: AbortSignal;
  /** See SyncStream: a stream silent this long is cut off as dead. */
  idleTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** `"<rev>"` or `W/"<rev>"` → `<rev>` */
export function parseEtag(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export class SyncClient {
  constructor(private readonly options: SyncClientOptions) {}

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  /** The same client as another user (or with another token). */
  withToken(token: string | undefined): SyncClient {
    return new SyncClient({ ...this.options, token });
  }

  health(): Promise<ApiResult<unknown>> {
    return this.call('GET', '/healthz');
  }

  ready(): Promise<ApiResult<unknown>> {
    return this.call('GET', '/readyz');
  }

  putItem(id: string, item: ItemBody, precondition: Precondition = {}): Promise<ApiResult<ItemView>> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (precondition.ifMatch !== undefined) headers['if-match'] = `"${precondition.ifMatch}"`;
    if (precondition.ifNoneMatch) headers['if-none-match'] = precondition.ifNoneMatch;
    return this.call('PUT', itemPath(id), { headers, body: JSON.stringify(item) });
  }

  getItem(id: string): Promise<ApiResult<ItemView>> {
    return this.call('GET', itemPath(id));
  }

  deleteItem(id: string, ifMatch?: string): Promise<ApiResult<unknown>> {
    return this.call('DELETE', itemPath(id), ifMatch === undefined ? {} : { headers: { 'if-match': `"${ifMatch}"` } });
  }

  changes(since?: string, limit?: number): Promise<ApiResult<ChangesPage>> {
    const query = new URLSearchParams();
    if (since !== undefined) query.set('since', since);
    if (limit !== undefined) query.set('limit', String(limit));
    return this.call('GET', `/v1/changes${query.size ? `?${query}` : ''}`);
  }

  share(id: string, to: string): Promise<ApiResult<unknown>> {
    return this.call('POST', `${itemPath(id)}/shares`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to }),
    });
  }

  unshare(id: string, user: string): Promise<ApiResult<unknown>> {
    return this.call('DELETE', `${itemPath(id)}/shares/${encodeURIComponent(user)}`);
  }

  inbox(): Promise<ApiResult<{ items: ItemView[] }>> {
    return this.call('GET', '/v1/inbox');
  }

  /**
   * GET /v1/stream. On 200 the body is a SyncStream to iterate; any other answer is an error
   * result. The request timeout bounds only the wait for the headers.
   */
  async stream(options: OpenStreamOptions = {}): Promise<ApiResult<SyncStream>> {
    const path = `/v1/stream${options.since === undefined ? '' : `?since=${encodeURIComponent(options.since)}`}`;
    const signal = this.signal(options.signal);
    const response = await openResponse({
      method: 'GET',
      baseUrl: this.options.baseUrl,
      path,
      headers: this.headers({ accept: 'application/x-ndjson' }),
      agent: this.options.agent,
      signal,
      headersTimeoutMs: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    const target = `GET ${this.options.baseUrl}/v1/stream`;
    if (response.status !== 200)
      return errorResult(
        response.status,
        response.headers,
        await readText(response, target, this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      );
    return {
      ok: true,
      status: 200,
      body: new SyncStream(response, { since: options.since, target, idleTimeoutMs: options.idleTimeoutMs, signal }),
    };
  }

  private async call<T>(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string } = {},
  ): Promise<ApiResult<T>> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const target = `${method} ${this.options.baseUrl}${path}`;
    const started = Date.now();
    const response = await openResponse({
      method,
      baseUrl: this.options.baseUrl,
      path,
      headers: this.headers(init.headers),
      body: init.body,
      agent: this.options.agent,
      signal: this.signal(),
      headersTimeoutMs: timeoutMs,
    });
    // The bound covers the whole exchange, body included.
    const text = await readText(response, target, Math.max(0, timeoutMs - (Date.now() - started)));
    if (response.status >= 400) return errorResult(response.status, response.headers, text);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    return { ok: true, status: response.status, etag: parseEtag(response.headers.etag), body: body as T };
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.options.token === undefined ? extra : { ...extra, authorization: `Bearer ${this.options.token}` };
  }

  private signal(extra?: AbortSignal): AbortSignal | undefined {
    const signals = [this.options.signal, extra].filter((s): s is AbortSignal => s !== undefined);
    return signals.length <= 1 ? signals[0] : AbortSignal.any(signals);
  }
}

function itemPath(id: string): string {
  return `/v1/items/${encodeURIComponent(id)}`;
}

function errorResult<T>(status: number, headers: import('node:http').IncomingHttpHeaders, text: string): ApiResult<T> {
  const wait = retryAfterMs(headers);
  return {
    ok: false,
    status,
    error: parseApiError(status, text),
    ...(wait === undefined ? {} : { retryAfterMs: wait }),
  };
}
