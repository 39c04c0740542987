/**
 * A loopback HTTP server that answers the parts of Riak KV's HTTP API the store uses, as the Riak
 * documentation describes them: fetch object (200, 300 multipart/mixed siblings, 304 on a matching
 * If-None-Match, 404), store object (200/300 with returnbody, 204 without, 412 on a failed
 * If-None-Match/If-Match, siblings when the vector clock does not descend from the stored one, as
 * with allow_mult=true), secondary index queries (exact and range, sorted by term then key,
 * max_results/continuation pagination, return_terms), the counter data type, and ping. Quorum
 * values above n_val=3 answer 400, as Riak does.
 *
 * It records every request, and answers the next matching request with a canned response when
 * a test asks for one (503, 412, ...). A test can also hold any step at a gate it opens when it
 * wants (`hold`): a request before it is applied (a counter increment not yet made, an object not
 * yet stored), its answer after it was applied (a number taken that its writer does not know yet),
 * or an object's index entries (stored and acknowledged, but a secondary index query still reads
 * the replica that has not seen it). `addNode()` answers on another port over the same data, as
 * the nodes of one cluster do, so a gate can hold one node's requests against another's.
 *
 * A node of the cluster can also be down (`nodeDown`), as on Riak's worst day: a write that asks
 * for all three primaries (pw, w or dw `all`) is stored on the others and answered 503 "PW-value
 * unsatisfied", one that asks for fewer is acknowledged; either way the node that comes back
 * (`nodeBack`) serves index queries from its old copy of the object until hinted handoff has run
 * (`handoff`), so a coverage query misses what was written meanwhile.
 *
 * Run standalone (`tsx test/support/riak-emulator.ts [port]`), it prints its URL and serves until
 * SIGTERM or SIGINT.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface RecordedRequest {
  /** Which of the emulator's nodes received it: 0 for the first, then in `addNode()` order. */
  node: number;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

export interface CannedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Sibling {
  body: Buffer;
  contentType: string;
  vtag: string;
  lastModified: string;
  indexes: Record<string, string[]>;
}

interface StoredObject {
  siblings: Sibling[];
  version: number;
  /** While set, index queries see these entries instead of the siblings' (a lagging replica). */
  laggingIndexes?: Record<string, string[]>[];
}

/**
 * Where a gate holds a matching request: 'before' it is applied, its 'answer' after it was
 * applied, or (object stores only) its 'index' entries, hidden from index queries while the write
 * itself is acknowledged.
 */
export type GateStep = 'before' | 'answer' | 'index';

export interface Gate {
  /** Resolves with the request once it reached the gate. */
  readonly reached: Promise<RecordedRequest>;
  open(): void;
}

interface PendingGate {
  match: (request: RecordedRequest) => boolean;
  step: GateStep;
  reach: (request: RecordedRequest) => void;
  opened: Promise<void>;
}

const N_VAL = 3;
const QUORUM = /^(one|quorum|all|default|[0-9]+)$/;

export class RiakEmulator {
  readonly requests: RecordedRequest[] = [];
  private readonly objects = new Map<string, StoredObject>();
  private readonly counters = new Map<string, number>();
  private readonly canned: { match: (request: RecordedRequest) => boolean; response: CannedResponse }[] = [];
  private readonly gates: PendingGate[] = [];
  private readonly servers: Server[] = [];
  /** The first node's base URL. */
  url = '';
  /** Off: requests are answered but not kept in `requests` (a long-running process). */
  recording = true;
  /** As the bucket types report it; the emulator always keeps siblings. */
  allowMult = true;
  /** A node of the cluster is down: writes that ask for every primary replica are refused. */
  private down = false;
  /** Objects written while a node was down or before handoff: index queries read their old entries. */
  private readonly missedByReturningNode = new Map<string, Record<string, string[]>[]>();

  constructor(readonly types: { kv: string[]; counter: string[] } = { kv: ['navcloud'], counter: ['counters'] }) {}

  async start(port = 0): Promise<this> {
    this.url = await this.listen(port);
    return this;
  }

  /** Another node of the same cluster: a base URL answering over the same objects and counters. */
  addNode(): Promise<string> {
    return this.listen(0);
  }

  async stop(): Promise<void> {
    for (const server of this.servers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    }
  }

  /** Holds the next request `match` accepts at `step` until the gate is opened. */
  hold(match: (request: RecordedRequest) => boolean, step: GateStep = 'before'): Gate {
    let reach!: (request: RecordedRequest) => void;
    let open!: () => void;
    const reached = new Promise<RecordedRequest>((res) => (reach = res));
    const opened = new Promise<void>((res) => (open = res));
    this.gates.push({ match, step, reach, opened });
    return { reached, open };
  }

  private async listen(port: number): Promise<string> {
    const node = this.servers.length;
    const server = createServer((request, response) => this.handle(node, request, response));
    this.servers.push(server);
    await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** The next request `match` accepts gets `response` instead of the emulated answer. */
  respondOnce(match: (request: RecordedRequest) => boolean, response: CannedResponse): void {
    this.canned.push({ match, response });
  }

  /** Adds a sibling as a concurrent writer on another node would (a store without our vector clock). */
  addSibling(type: string, bucket: string, key: string, value: unknown, indexes: Record<string, string[]> = {}): void {
    const object = this.objects.get(objectId(type, bucket, key)) ?? { siblings: [], version: 0 };
    object.siblings.push(sibling(Buffer.from(JSON.stringify(value)), 'application/json', indexes));
    object.version += 1;
    this.objects.set(objectId(type, bucket, key), object);
  }

  nodeDown(): void {
    this.down = true;
  }

  /** The node is back, but hands nothing over yet: index queries still read its old copies. */
  nodeBack(): void {
    this.down = false;
  }

  /** Hinted handoff has brought the returning node everything written while it was away. */
  handoff(): void {
    this.missedByReturningNode.clear();
  }

  siblingCount(type: string, bucket: string, key: string): number {
    return this.objects.get(objectId(type, bucket, key))?.siblings.length ?? 0;
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  private handle(node: number, request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A fault of the emulator's stays an unhandled rejection: vitest reports it and fails the run,
    // rather than a client getting an answer Riak would not give.
    request.on('end', () => void this.respond(node, request, response, Buffer.concat(chunks)));
  }

  /** Answers one request as Riak would, or as a canned answer says, held where a gate says. */
  private async respond(node: number, request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://riak');
    const recorded: RecordedRequest = {
      node,
      method: request.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(
        Object.entries(request.headers).map(([name, value]) => [
          name,
          Array.isArray(value) ? value.join(', ') : (value ?? ''),
        ]),
      ),
      body: body.toString('utf8'),
    };
    if (this.recording) this.requests.push(recorded);
    const canned = this.canned.findIndex((entry) => entry.match(recorded));
    if (canned >= 0) {
      const answer = this.canned.splice(canned, 1)[0]!.response;
      response.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
      return;
    }
    const gateAt = this.gates.findIndex((gate) => gate.match(recorded));
    const gate = gateAt >= 0 ? this.gates.splice(gateAt, 1)[0] : undefined;
    gate?.reach(recorded);
    if (gate?.step === 'before') await gate.opened;
    const before = gate?.step === 'index' ? this.visibleIndexes(recorded.path) : undefined;
    const answer = this.answer(recorded, url, body);
    if (gate?.step === 'index' && before) this.lagIndexes(recorded.path, before, gate.opened);
    if (gate?.step === 'answer') await gate.opened;
    if (response.destroyed) return;
    response.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
  }

  /** The object at a request path as index queries see it now. */
  private visibleIndexes(path: string): Record<string, string[]>[] | undefined {
    const id = objectIdOfPath(path);
    if (!id) return undefined;
    const object = this.objects.get(id);
    return object?.laggingIndexes ?? object?.siblings.map((s) => s.indexes) ?? [];
  }

  private lagIndexes(path: string, before: Record<string, string[]>[], opened: Promise<void>): void {
    const object = this.objects.get(objectIdOfPath(path)!);
    if (!object) return;
    object.laggingIndexes = before;
    void opened.then(() => {
      if (object.laggingIndexes === before) delete object.laggingIndexes;
    });
  }

  private answer(request: RecordedRequest, url: URL, body: Buffer): Answer {
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (request.method === 'GET' && url.pathname === '/ping')
      return { status: 200, headers: { 'content-type': 'text/html' }, body: 'OK' };
    for (const name of ['r', 'pr', 'w', 'pw', 'dw']) {
      const value = request.query[name];
      if (value !== undefined && (!QUORUM.test(value) || (/^[0-9]+$/.test(value) && Number(value) > N_VAL))) {
        return text(400, `Specified ${name} value ${value} is invalid for bucket n value of ${N_VAL}\n`);
      }
    }
    const [typesWord, type, bucketsWord, bucket, kind, ...rest] = segments;
    if (typesWord !== 'types' || bucketsWord !== 'buckets' || !type || !bucket)
      return text(404, 'Resource not found\n');
    if (kind === 'props' && rest.length === 0 && request.method === 'GET') {
      const datatype = this.types.counter.includes(type) ? { datatype: 'counter' } : {};
      if (!this.types.kv.includes(type) && !datatype.datatype) return text(404, `Unknown bucket type: ${type}\n`);
      return json(200, {
        props: { name: bucket, n_val: N_VAL, allow_mult: this.allowMult, last_write_wins: false, ...datatype },
      });
    }
    if (kind === 'keys' && rest.length === 1) {
      if (!this.types.kv.includes(type)) return text(404, `Unknown bucket type: ${type}\n`);
      const id = objectId(type, bucket, rest[0]!);
      if (request.method === 'GET') return this.fetch(id, request);
      if (request.method === 'PUT') return this.store(id, request, body);
    }
    if (kind === 'index' && (rest.length === 2 || rest.length === 3) && request.method === 'GET') {
      if (!this.types.kv.includes(type)) return text(404, `Unknown bucket type: ${type}\n`);
      return this.index(type, bucket, rest[0]!, rest[1]!, rest[2], request.query);
    }
    if (kind === 'datatypes' && rest.length === 1) {
      if (!this.types.counter.includes(type)) return text(404, `Bucket datatype not set for type ${type}\n`);
      const id = objectId(type, bucket, rest[0]!);
      if (request.method === 'GET') {
        const value = this.counters.get(id);
        return value === undefined
          ? json(404, { type: 'counter', error: 'notfound' })
          : json(200, { type: 'counter', value });
      }
      if (request.method === 'POST') {
        const op = JSON.parse(body.toString('utf8')) as { increment?: unknown };
        if (!Number.isSafeInteger(op.increment)) return text(400, 'Invalid counter operation\n');
        const value = (this.counters.get(id) ?? 0) + (op.increment as number);
        this.counters.set(id, value);
        if (this.down && asksEveryPrimary(request)) return text(503, 'PW-value unsatisfied: 2/3\n');
        return request.query.returnbody === 'true' ? json(200, { type: 'counter', value }) : { status: 204 };
      }
    }
    return text(405, 'Method not allowed\n');
  }

  private fetch(id: string, request: RecordedRequest): Answer {
    const object = this.objects.get(id);
    if (!object || object.siblings.length === 0) return text(404, 'not found\n');
    const vclock = vclockOf(id, object.version);
    if (object.siblings.length === 1) {
      const [only] = object.siblings as [Sibling];
      if (request.headers['if-none-match'] === `"${only.vtag}"`)
        return { status: 304, headers: { etag: `"${only.vtag}"`, 'x-riak-vclock': vclock } };
      return { status: 200, headers: { ...siblingHeaders(only), 'x-riak-vclock': vclock }, body: only.body };
    }
    return this.multiple(object, vclock, request);
  }

  private multiple(object: StoredObject, vclock: string, request: RecordedRequest): Answer {
    if (!(request.headers.accept ?? '').includes('multipart/mixed')) {
      return text(300, `Siblings:\n${object.siblings.map((s) => s.vtag).join('\n')}\n`, { 'x-riak-vclock': vclock });
    }
    const boundary = randomBytes(12).toString('base64url');
    const parts = object.siblings.map((s) =>
      Buffer.concat([
        Buffer.from(
          `\r\n--${boundary}\r\n${Object.entries(siblingHeaders(s))
            .map(([n, v]) => `${n}: ${v}`)
            .join('\r\n')}\r\n\r\n`,
        ),
        s.body,
      ]),
    );
    return {
      status: 300,
      headers: { 'content-type': `multipart/mixed; boundary=${boundary}`, 'x-riak-vclock': vclock },
      body: Buffer.concat([...parts, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    };
  }

  private store(id: string, request: RecordedRequest, body: Buffer): Answer {
    const object = this.objects.get(id) ?? { siblings: [], version: 0 };
    const exists = object.siblings.length > 0;
    if (request.headers['if-none-match'] === '*' && exists) return text(412, 'Precondition Failed\n');
    const ifMatch = request.headers['if-match'];
    if (ifMatch !== undefined && !(object.siblings.length === 1 && `"${object.siblings[0]!.vtag}"` === ifMatch))
      return text(412, 'Precondition Failed\n');
    const indexes: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (!name.startsWith('x-riak-index-')) continue;
      const index = name.slice('x-riak-index-'.length);
      const values = value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
      if (!/_(bin|int)$/.test(index)) return text(400, `Invalid index name: ${index}\n`);
      if (index.endsWith('_int') && values.some((v) => !/^-?[0-9]+$/.test(v)))
        return text(400, `Could not parse index value: ${value}\n`);
      indexes[index] = values;
    }
    const value = sibling(body, request.headers['content-type'] ?? 'application/octet-stream', indexes);
    if (this.down && !this.missedByReturningNode.has(id))
      this.missedByReturningNode.set(
        id,
        object.siblings.map((s) => s.indexes),
      );
    const descends = request.headers['x-riak-vclock'] === vclockOf(id, object.version);
    object.siblings = descends || !exists ? [value] : [...object.siblings, value];
    object.version += 1;
    this.objects.set(id, object);
    // Stored on the replicas that answered, refused all the same: as Riak answers a pw it could not meet.
    if (this.down && asksEveryPrimary(request)) return text(503, 'PW-value unsatisfied: 2/3\n');
    if (request.query.returnbody !== 'true') return { status: 204 };
    return this.fetch(id, { ...request, headers: { ...request.headers, 'if-none-match': '' } });
  }

  private index(
    type: string,
    bucket: string,
    index: string,
    start: string,
    end: string | undefined,
    query: Record<string, string>,
  ): Answer {
    // Riak's special index of every key in the bucket, in key order: exact query on any term.
    if (index === '$bucket' && end === undefined)
      return this.index(type, bucket, '$bucket_bin', '', '\uffff', { ...query, return_terms: 'false' });
    if (!/_(bin|int)$/.test(index)) return text(400, `Invalid index name: ${index}\n`);
    const numeric = index.endsWith('_int');
    const compare = (a: string, b: string) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0);
    const prefix = objectId(type, bucket, '');
    const entries: [string, string][] = [];
    for (const [id, object] of this.objects) {
      if (!id.startsWith(prefix)) continue;
      const key = id.slice(prefix.length);
      const visible =
        this.missedByReturningNode.get(id) ?? object.laggingIndexes ?? object.siblings.map((s) => s.indexes);
      // $bucket lists a key while the replica read has any value of it.
      const terms =
        index === '$bucket_bin'
          ? new Set(visible.length > 0 && object.siblings.length > 0 ? [key] : [])
          : new Set(visible.flatMap((indexes) => indexes[index] ?? []));
      for (const term of terms) {
        if (end === undefined ? compare(term, start) === 0 : compare(term, start) >= 0 && compare(term, end) <= 0)
          entries.push([term, key]);
      }
    }
    entries.sort(([ta, ka], [tb, kb]) => compare(ta, tb) || (ka < kb ? -1 : ka > kb ? 1 : 0));
    let from = 0;
    if (query.continuation) {
      const [term, key] = JSON.parse(Buffer.from(query.continuation, 'base64').toString('utf8')) as [string, string];
      from = entries.findIndex(([t, k]) => compare(t, term) > 0 || (compare(t, term) === 0 && k > key));
      if (from < 0) from = entries.length;
    }
    const max = query.max_results ? Number(query.max_results) : Infinity;
    const page = entries.slice(from, from + max);
    const more = Number.isFinite(max) && page.length === max;
    const last = page[page.length - 1];
    const continuation = more && last ? Buffer.from(JSON.stringify(last)).toString('base64') : undefined;
    const answer =
      query.return_terms === 'true' && end !== undefined
        ? { results: page.map(([term, key]) => ({ [term]: key })) }
        : { keys: page.map(([, key]) => key) };
    return json(200, continuation ? { ...answer, continuation } : answer);
  }
}

function asksEveryPrimary(request: RecordedRequest): boolean {
  return ['w', 'pw', 'dw'].some((name) => request.query[name] === 'all' || request.query[name] === String(N_VAL));
}

function objectId(type: string, bucket: string, key: string): string {
  return `${type}\u0000${bucket}\u0000${key}`;
}

function objectIdOfPath(path: string): string | undefined {
  const [typesWord, type, bucketsWord, bucket, keysWord, key, ...rest] = path
    .split('/')
    .slice(1)
    .map(decodeURIComponent);
  if (
    typesWord !== 'types' ||
    bucketsWord !== 'buckets' ||
    keysWord !== 'keys' ||
    !type ||
    !bucket ||
    key === undefined ||
    rest.length > 0
  )
    return undefined;
  return objectId(type, bucket, key);
}

function vclockOf(id: string, version: number): string {
  return Buffer.from(`a85hYGBgzGDKBVI${id.length}:${version}`).toString('base64');
}

function sibling(body: Buffer, contentType: string, indexes: Record<string, string[]>): Sibling {
  return {
    body,
    contentType,
    vtag: randomBytes(8).toString('base64url'),
    lastModified: new Date().toUTCString(),
    indexes,
  };
}

function siblingHeaders(s: Sibling): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': s.contentType,
    etag: `"${s.vtag}"`,
    'last-modified': s.lastModified,
  };
  for (const [name, values] of Object.entries(s.indexes)) headers[`x-riak-index-${name}`] = values.join(', ');
  return headers;
}

function text(status: number, body: string, headers: Record<string, string> = {}): Answer {
  return { status, headers: { 'content-type': 'text/plain', ...headers }, body };
}

function json(status: number, value: unknown): Answer {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

/** The emulator as a process of its own (as a stack's nodes would reach a Riak), stopped by stop(). */
export async function spawnRiakEmulator(): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const [first] = (await Promise.race([
    once(createInterface({ input: child.stdout! }), 'line'),
    exited.then(() => {
      throw new Error(
        `the Riak emulator process exited before it printed its URL (${child.exitCode ?? child.signalCode})`,
      );
    }),
  ])) as [string];
  return {
    url: (JSON.parse(first) as { url: string }).url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const port = Number(process.argv[2] ?? process.env.RIAK_EMULATOR_PORT ?? 0);
  const emulator = await new RiakEmulator().start(port);
  // Only the answers are kept: a long run must not grow the request log without bound.
  emulator.recording = false;
  process.stdout.write(`${JSON.stringify({ url: emulator.url })}\n`);
  const stop = () => void emulator.stop().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
