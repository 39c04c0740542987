/**
 * The few Riak KV HTTP calls the store needs (fetch and store object, secondary index queries,
 * counter data type, ping), with every documented answer mapped: 503 (and other 5xx, timeouts,
 * refused connections) become StoreError 'unavailable'; 400 is a configuration or programming
 * error and says what Riak answered; 412 and 304 are results, not errors.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../port.ts';
import type { RiakConfig, RiakQuorum } from './config.ts';
import { boundaryOf, parseMultipart } from './multipart.ts';

export interface RiakValue {
  body: Buffer;
  etag?: string;
  /** Index name (lower case, with _bin/_int) to its values. */
  indexes: Record<string, string[]>;
}

export type FetchResult =
  | { kind: 'missing'; vclock?: string }
  | { kind: 'not-modified' }
  /** One value, or several siblings (300) to resolve; `vclock` covers them all. */
  | { kind: 'found'; vclock?: string; etag?: string; values: RiakValue[] };

export interface StoreRequest {
  body: string;
  vclock?: string;
  indexes: Record<string, (string | number)[]>;
  /** `*`: only if the key holds nothing; an etag: only if the object is still that version. */
  ifNoneMatch?: '*';
  ifMatch?: string;
  /** Overrides the store URL's w, pw and dw for this write. */
  quorum?: RiakQuorum;
  /** Riak's own deadline for this write (its `timeout` parameter): it answers 503 "request timed out" after it. */
  timeoutMs?: number;
}

export type StoreResult =
  | { kind: 'precondition-failed' }
  /** The object as Riak holds it after the write: more than one value means concurrent writes made siblings. */
  | { kind: 'stored'; vclock?: string; values: RiakValue[] };

export interface IndexPage {
  /** [term, key] in index order. */
  results: [string, string][];
  continuation?: string;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Every read asks Riak not to count a replica's "not found" toward r, nor to answer early on a
 * quorum of them: a key answers 404 only when no replica asked holds it. By default two empty
 * replicas answer for the key (a node restarted after a crash, fallbacks standing in for it),
 * and a fence, a watermark or an item that exists read as absent.
 */
const ANSWER_FOUND = { notfound_ok: 'false', basic_quorum: 'false' };

export class RiakClient {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(readonly config: RiakConfig) {
    const secure = config.base.startsWith('https:');
    this.transport = secure ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: 64 });
  }

  objectPath(bucket: string, key: string): string {
    return `/types/${enc(this.config.bucketType)}/buckets/${enc(bucket)}/keys/${enc(key)}`;
  }

  async fetch(bucket: string, key: string, ifNoneMatch?: string): Promise<FetchResult> {
    const { r, pr } = this.config.quorum;
    const headers: Record<string, string> = { accept: 'multipart/mixed, application/json' };
    if (ifNoneMatch) headers['if-none-match'] = ifNoneMatch;
    const response = await this.send('GET', this.objectPath(bucket, key), { r, pr, ...ANSWER_FOUND }, headers);
    const vclock = header(response, 'x-riak-vclock');
    switch (response.status) {
      case 200:
        return {
          kind: 'found',
          vclock,
          etag: header(response, 'etag'),
          values: [valueOf(response.headers, response.body)],
        };
      case 300:
        return { kind: 'found', vclock, values: siblingsOf(response) };
      case 304:
        return { kind: 'not-modified' };
      case 404:
        if (!isNotFound(response)) throw this.unexpected('GET', key, response);
        return { kind: 'missing', vclock };
      default:
        throw this.unexpected('GET', key, response);
    }
  }

  async store(bucket: string, key: string, request: StoreRequest): Promise<StoreResult> {
    const { w, pw, dw, node_confirms } = { ...this.config.quorum, ...request.quorum };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'multipart/mixed, application/json',
    };
    if (request.vclock) headers['x-riak-vclock'] = request.vclock;
    if (request.ifNoneMatch) headers['if-none-match'] = request.ifNoneMatch;
    if (request.ifMatch) headers['if-match'] = request.ifMatch;
    for (const [name, values] of Object.entries(request.indexes)) {
      if (values.length > 0) headers[`x-riak-index-${name}`] = values.join(', ');
    }
    const timeout = request.timeoutMs === undefined ? undefined : String(request.timeoutMs);
    const response = await this.send(
      'PUT',
      this.objectPath(bucket, key),
      { w, pw, dw, node_confirms, timeout, returnbody: 'true' },
      headers,
      request.body,
      request.timeoutMs,
    );
    const vclock = header(response, 'x-riak-vclock');
    switch (response.status) {
      case 200:
        return { kind: 'stored', vclock, values: [valueOf(response.headers, response.body)] };
      case 204:
        return { kind: 'stored', vclock, values: [] };
      case 300:
        return { kind: 'stored', vclock, values: siblingsOf(response) };
      case 412:
        return { kind: 'precondition-failed' };
      default:
        throw this.unexpected('PUT', key, response);
    }
  }

  /** One page of an exact (`end` omitted) or inclusive range query, sorted by term then key. */
  async index(
    bucket: string,
    index: string,
    start: string | number,
    end: string | number | undefined,
    maxResults: number,
    continuation?: string,
  ): Promise<IndexPage> {
    const range = end === undefined ? enc(String(start)) : `${enc(String(start))}/${enc(String(end))}`;
    const path = `/types/${enc(this.config.bucketType)}/buckets/${enc(bucket)}/index/${enc(index)}/${range}`;
    const query: Record<string, string | undefined> = { max_results: String(maxResults), continuation };
    if (end !== undefined) query.return_terms = 'true';
    const response = await this.send('GET', path, query, { accept: 'application/json' });
    if (response.status !== 200) throw this.unexpected('GET', `${index} index`, response);
    const parsed = parseJson(response.body, `${index} index answer`) as {
      keys?: unknown;
      results?: unknown;
      continuation?: unknown;
    };
    const results: [string, string][] = [];
    if (Array.isArray(parsed.results)) {
      for (const entry of parsed.results as Record<string, unknown>[]) {
        for (const [term, key] of Object.entries(entry)) results.push([term, String(key)]);
      }
    } else if (Array.isArray(parsed.keys)) {
      for (const key of parsed.keys) results.push([String(start), String(key)]);
    } else {
      throw new StoreError('unavailable', `Riak answered the ${index} index query without keys or results`);
    }
    return { results, continuation: typeof parsed.continuation === 'string' ? parsed.continuation : undefined };
  }

  counterPath(key: string): string {
    return `/types/${enc(this.config.counterType)}/buckets/${enc(this.config.bucket)}/datatypes/${enc(key)}`;
  }

  /**
   * Adds `by` and answers the counter's value after the increment: Riak merges the replicas that
   * answered, so with pw at least quorum it counts every increment acknowledged before this one.
   */
  async increment(key: string, by: number, quorum?: RiakQuorum): Promise<number> {
    const { w, pw, dw, node_confirms } = { ...this.config.quorum, ...quorum };
    const response = await this.send(
      'POST',
      this.counterPath(key),
      { w, pw, dw, node_confirms, returnbody: 'true' },
      { 'content-type': 'application/json', accept: 'application/json' },
      JSON.stringify({ increment: by }),
    );
    if (response.status !== 200 && response.status !== 201) throw this.unexpected('POST', `counter ${key}`, response);
    return counterValue(response.body, key);
  }

  async counter(key: string): Promise<number> {
    const { r, pr } = this.config.quorum;
    const response = await this.send(
      'GET',
      this.counterPath(key),
      { r, pr, ...ANSWER_FOUND },
      { accept: 'application/json' },
    );
    if (response.status === 404 && isNotFound(response)) return 0;
    if (response.status !== 200) throw this.unexpected('GET', `counter ${key}`, response);
    return counterValue(response.body, key);
  }

  /** A bucket's properties (GET …/props), or undefined when Riak does not know its bucket type. */
  async props(bucketType: string, bucket: string): Promise<Record<string, unknown> | undefined> {
    const response = await this.send(
      'GET',
      `/types/${enc(bucketType)}/buckets/${enc(bucket)}/props`,
      {},
      { accept: 'application/json' },
    );
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw this.unexpected('GET', `props of ${bucketType}/${bucket}`, response);
    const parsed = parseJson(response.body, `props of ${bucketType}/${bucket}`) as { props?: unknown };
    if (typeof parsed.props !== 'object' || parsed.props === null)
      throw new StoreError('unavailable', `Riak answered props of ${bucketType}/${bucket} without props`);
    return parsed.props as Record<string, unknown>;
  }

  async ping(): Promise<void> {
    const response = await this.send('GET', '/ping', {}, {});
    if (response.status !== 200) throw this.unexpected('GET', 'ping', response);
  }

  close(): void {
    this.agent.destroy();
  }

  private unexpected(method: string, what: string, response: Response): Error {
    const detail = response.body.toString('utf8').slice(0, 300).trim();
    if (response.status === 503 && QUORUM_UNMET.test(detail)) {
      return new RiakQuorumUnmet(`Riak could not serve ${method} ${what} with the replicas asked for (${detail})`);
    }
    if (response.status >= 500 || response.status === 404) {
      return new StoreError(
        'unavailable',
        `Riak could not serve ${method} ${what} (${response.status}${detail ? `: ${detail}` : ''})`,
      );
    }
    if (response.status === 400) {
      return new Error(
        `Riak rejected ${method} ${what} as a bad request (check the riak: URL's bucket type and quorum parameters): ${detail || 'no detail'}`,
      );
    }
    return new Error(
      `Riak answered ${method} ${what} with an unexpected ${response.status}${detail ? `: ${detail}` : ''}`,
    );
  }

  private send(
    method: string,
    path: string,
    query: Record<string, string | undefined>,
    headers: Record<string, string>,
    body?: string,
    riakTimeoutMs?: number,
  ): Promise<Response> {
    // Riak's own deadline answers first; the socket's is the backstop for a node that answers nothing.
    const socketTimeoutMs =
      riakTimeoutMs === undefined ? this.config.timeoutMs : Math.min(this.config.timeoutMs, riakTimeoutMs + 1_000);
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) search.set(name, value);
    const target = `${this.config.base}${path}${search.size > 0 ? `?${search}` : ''}`;
    return new Promise((resolve, reject) => {
      const request = this.transport.request(
        target,
        { method, headers, agent: this.agent, timeout: socketTimeoutMs },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
          );
          response.on('error', (error) => reject(unreachable(method, path, error)));
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${socketTimeoutMs} ms`)));
      request.on('error', (error) => reject(unreachable(method, path, error)));
      request.end(body);
    });
  }
}

/** Riak's answers when it could not reach the replicas a request asked for (riak_kv_wm_object). */
const QUORUM_UNMET = /^(PW|W|DW|PR|R)-value unsatisfied|^request timed out|^Too Many write failures/;

/**
 * Riak could not reach the replicas asked for, in time: a node is down, stopped or frozen. A write
 * that got this answer may still have been stored on the replicas that did answer.
 */
export class RiakQuorumUnmet extends StoreError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

/** Reads of a value every write waits on, and how far apart, before a quorum Riak keeps failing counts as unavailable. */
const QUORUM_READ_ATTEMPTS = 4;
const QUORUM_READ_RETRY_MS = 25;

/**
 * Reads a value every write waits on (the fence, the export watermark, the undo mark), again while
 * Riak answers that the quorum was not met. A busy cluster's primary that did not answer in time
 * fails it with no node down (`PR-value unsatisfied: 1/2`), and the next read usually finds it:
 * the Riak demo's plain clients got 503s at the fence and at the watermark without this. Item
 * reads are not read again, so refusals while a node is down stay quick.
 */
export async function readAgainWhileQuorumUnmet<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof RiakQuorumUnmet) || attempt === QUORUM_READ_ATTEMPTS) throw error;
      await sleep(QUORUM_READ_RETRY_MS);
    }
  }
}

function unreachable(method: string, path: string, error: Error): StoreError {
  return new StoreError('unavailable', `Riak did not answer ${method} ${path}: ${error.message}`);
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function valueOf(headers: Record<string, string | string[] | undefined>, body: Buffer): RiakValue {
  const indexes: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-riak-index-') || value === undefined) continue;
    indexes[name.slice('x-riak-index-'.length)] = (Array.isArray(value) ? value.join(',') : value)
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  }
  const etag = headers.etag;
  return { body, etag: Array.isArray(etag) ? etag[0] : etag, indexes };
}

function siblingsOf(response: Response): RiakValue[] {
  const boundary = boundaryOf(header(response, 'content-type'));
  if (!boundary)
    throw new StoreError(
      'unavailable',
      `Riak answered 300 without a multipart/mixed body (content-type ${header(response, 'content-type')})`,
    );
  // A deleted sibling is a tombstone of Riak's own; our deletes are ordinary values.
  return parseMultipart(response.body, boundary)
    .filter((part) => part.headers['x-riak-deleted'] !== 'true')
    .map((part) => valueOf(part.headers, part.body));
}

function counterValue(body: Buffer, key: string): number {
  const parsed = parseJson(body, `counter ${key}`) as { type?: unknown; value?: unknown };
  if (parsed.type !== 'counter' || !Number.isSafeInteger(parsed.value)) {
    throw new StoreError(
      'unavailable',
      `Riak answered counter ${key} with ${body.toString('utf8').slice(0, 100)}; is its bucket type a counter type?`,
    );
  }
  return parsed.value as number;
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new StoreError('unavailable', `Riak answered ${what} with a body that is not JSON`);
  }
}

/**
 * Riak's own "not found" (an object's `not found`, a data type's `notfound`). A node restarting
 * answers 404 with webmachine's HTML page for a few hundred milliseconds before it serves, and
 * 404 `Unknown bucket type: …` for a type it does not know: neither is an answer about the key,
 * and reading it as absence would show a fence open or an item gone.
 */
function isNotFound(response: Response): boolean {
  return /^not found$|"error"\s*:\s*"notfound"/.test(response.body.toString('utf8').trim());
}
