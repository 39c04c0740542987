import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { signToken } from '../../src/navcloud/token.ts';
import { SqliteStore } from '../../server/store/sqlite.ts';
import { call, exportAll, SECRET, startTestNode, type TestNode } from './helpers.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('sync API (server/README.md) over real sockets and a SQLite file', () => {
  let node: TestNode;
  let alice: string;
  let bob: string;
  let carol: string;
  let admin: string;

  beforeAll(async () => {
    node = await startTestNode();
    alice = await node.token('alice');
    bob = await node.token('bob');
    carol = await node.token('carol');
    admin = await node.token('ops', true);
  });
  afterAll(async () => node.stop());

  it('creates (201), updates (200) and reads (200) an item with its revision as ETag', async () => {
    const created = await call(node, 'PUT', '/v1/items/trip-a', {
      token: alice,
      body: { type: 'trip', data: { name: 'Lyon' } },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe(`"${created.json.rev}"`);
    expect(created.json).toMatchObject({
      id: 'trip-a',
      owner: 'alice',
      type: 'trip',
      data: { name: 'Lyon' },
      shares: [],
    });
    const updated = await call(node, 'PUT', '/v1/items/trip-a', {
      token: alice,
      body: { type: 'trip', data: { name: 'Nice' } },
    });
    expect(updated.status).toBe(200);
    expect(updated.json.rev).not.toBe(created.json.rev);
    const read = await call(node, 'GET', '/v1/items/trip-a', { token: alice });
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe(`"${updated.json.rev}"`);
    expect(read.json.data).toEqual({ name: 'Nice' });
  });

  it('answers 412 on failed preconditions and applies the write when they hold', async () => {
    const created = await call(node, 'PUT', '/v1/items/pre', {
      token: alice,
      body: { type: 'place', data: { v: 1 } },
      headers: { 'if-none-match': '*' },
    });
    expect(created.status).toBe(201);
    const again = await call(node, 'PUT', '/v1/items/pre', {
      token: alice,
      body: { type: 'place', data: { v: 2 } },
      headers: { 'if-none-match': '*' },
    });
    expect(again.status).toBe(412);
    expect(again.json.error.code).toBe('precondition-failed');
    const stale = await call(node, 'PUT', '/v1/items/pre', {
      token: alice,
      body: { type: 'place', data: { v: 2 } },
      headers: { 'if-match': '"7-stale"' },
    });
    expect(stale.status).toBe(412);
    const fresh = await call(node, 'PUT', '/v1/items/pre', {
      token: alice,
      body: { type: 'place', data: { v: 3 } },
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(fresh.status).toBe(200);
    const staleDelete = await call(node, 'DELETE', '/v1/items/pre', {
      token: alice,
      headers: { 'if-match': created.headers.get('etag')! },
    });
    expect(staleDelete.status).toBe(412);
    expect((await call(node, 'GET', '/v1/items/pre', { token: alice })).json.data).toEqual({ v: 3 });
    const badHeader = await call(node, 'PUT', '/v1/items/pre', {
      token: alice,
      body: { type: 'place', data: {} },
      headers: { 'if-match': 'unquoted' },
    });
    expect(badHeader.status).toBe(400);
    expect(badHeader.json.error.code).toBe('invalid-precondition');
  });

  it('deletes with 204, leaving 404 behind', async () => {
    await call(node, 'PUT', '/v1/items/del', { token: alice, body: { type: 'route', data: {} } });
    expect((await call(node, 'DELETE', '/v1/items/del', { token: alice })).status).toBe(204);
    expect((await call(node, 'GET', '/v1/items/del', { token: alice })).status).toBe(404);
    const second = await call(node, 'DELETE', '/v1/items/del', { token: alice });
    expect(second.status).toBe(404);
    expect(second.json.error).toEqual({ code: 'not-found', message: 'item del not found' });
  });

  it('hides an item from everyone but its owner and sharees, and lets only the owner change it', async () => {
    await call(node, 'PUT', '/v1/items/private', { token: alice, body: { type: 'trip', data: { secret: true } } });
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { type: 'trip', data: { stolen: true } }],
      ['DELETE', undefined],
    ] as const) {
      const answer = await call(node, method, '/v1/items/private', { token: carol, body });
      expect(answer.status, `${method} by a stranger`).toBe(404);
    }
    expect(
      (await call(node, 'POST', '/v1/items/private/shares', { token: carol, body: { to: 'mallory' } })).status,
    ).toBe(404);

    const shared = await call(node, 'POST', '/v1/items/private/shares', { token: alice, body: { to: 'bob' } });
    expect(shared.status).toBe(200);
    expect(shared.json.shares).toEqual(['bob']);
    const asBob = await call(node, 'GET', '/v1/items/private', { token: bob });
    expect(asBob.status).toBe(200);
    expect(asBob.json.shares).toBeUndefined();
    const bobWrites = await call(node, 'PUT', '/v1/items/private', {
      token: bob,
      body: { type: 'trip', data: { changed: 'by bob' } },
    });
    expect(bobWrites.status).toBe(403);
    expect(bobWrites.json.error.code).toBe('not-owner');
    expect((await call(node, 'DELETE', '/v1/items/private', { token: bob })).status).toBe(403);
    expect((await call(node, 'GET', '/v1/items/private', { token: carol })).status).toBe(404);
    const inbox = await call(node, 'GET', '/v1/inbox', { token: bob });
    expect(inbox.json.items.map((i: { id: string }) => i.id)).toContain('private');

    expect((await call(node, 'DELETE', '/v1/items/private/shares/bob', { token: alice })).status).toBe(204);
    expect((await call(node, 'GET', '/v1/items/private', { token: bob })).status).toBe(404);
    expect(
      (await call(node, 'GET', '/v1/inbox', { token: bob })).json.items.map((i: { id: string }) => i.id),
    ).not.toContain('private');
    expect((await call(node, 'GET', '/v1/items/private', { token: alice })).json.data).toEqual({ secret: true });
    const selfShare = await call(node, 'POST', '/v1/items/private/shares', { token: alice, body: { to: 'alice' } });
    expect(selfShare.status).toBe(400);
  });

  it('pages the changes feed with opaque cursors and answers 410 for unknown ones', async () => {
    const dave = await node.token('dave');
    for (let i = 0; i < 5; i++)
      await call(node, 'PUT', `/v1/items/dave-${i}`, { token: dave, body: { type: 'place', data: { i } } });
    const first = await call(node, 'GET', '/v1/changes?limit=3', { token: dave });
    expect(first.status).toBe(200);
    expect(first.json.changes.map((c: { id: string }) => c.id)).toEqual(['dave-0', 'dave-1', 'dave-2']);
    expect(first.json.next).toBe(first.json.changes[2].cursor);
    const second = await call(node, 'GET', `/v1/changes?since=${first.json.next}&limit=3`, { token: dave });
    expect(second.json.changes.map((c: { id: string }) => c.id)).toEqual(['dave-3', 'dave-4']);
    const empty = await call(node, 'GET', `/v1/changes?since=${second.json.next}`, { token: dave });
    expect(empty.json).toEqual({ changes: [], next: second.json.next });

    const unknown = await call(node, 'GET', '/v1/changes?since=not-a-cursor', { token: dave });
    expect(unknown.status).toBe(410);
    expect(unknown.json.error.code).toBe('cursor-unknown');
    const future = await call(node, 'GET', `/v1/changes?since=${Buffer.from('nc1.zzzz').toString('base64url')}`, {
      token: dave,
    });
    expect(future.status).toBe(410);
    expect(future.json.error.code).toBe('cursor-gone');
    const badLimit = await call(node, 'GET', '/v1/changes?limit=0', { token: dave });
    expect(badLimit.status).toBe(400);
    expect(badLimit.json.error.code).toBe('invalid-limit');
  });

  it('ends a feed page early when its changes are large, and the next page goes on from there', async () => {
    const gina = await node.token('gina');
    const blob = 'g'.repeat(250 * 1024);
    for (let i = 0; i < 20; i++)
      expect(
        (await call(node, 'PUT', `/v1/items/large-${i}`, { token: gina, body: { type: 'route', data: { blob, i } } }))
          .status,
      ).toBe(201);
    const first = await call(node, 'GET', '/v1/changes?limit=1000', { token: gina });
    const count = first.json.changes.length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(20);
    expect(first.json.next).toBe(first.json.changes[count - 1].cursor);
    const second = await call(node, 'GET', `/v1/changes?limit=1000&since=${first.json.next}`, { token: gina });
    expect([...first.json.changes, ...second.json.changes].map((c: { data: { i: number } }) => c.data.i)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('answers 401 with a specific message for missing, malformed, expired and wrongly signed tokens', async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'missing-token'],
      ['Basic abc', 'bad-token'],
      ['Bearer not.a.jwt.at-all', 'bad-token'],
      ['Bearer abc', 'bad-token'],
      [`Bearer ${await signToken('another-secret-entirely', 'alice')}`, 'bad-signature'],
      [`Bearer ${await signToken(SECRET, 'alice', { expiresIn: -10 })}`, 'token-expired'],
      [`Bearer ${await signToken(SECRET, '')}`, 'bad-token'],
    ];
    for (const [authorization, code] of cases) {
      const answer = await call(node, 'GET', '/v1/items/trip-a', { headers: authorization ? { authorization } : {} });
      expect(answer.status, String(authorization)).toBe(401);
      expect(answer.json.error.code, String(authorization)).toBe(code);
      expect(answer.json.error.message.length).toBeGreaterThan(10);
    }
    const none = await call(node, 'GET', '/v1/items/trip-a', {
      headers: {
        authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.`,
      },
    });
    expect(none.status).toBe(401);
    expect(none.json.error.message).toContain('HS256');
  });

  it('answers 403 on admin endpoints without the admin role', async () => {
    for (const [method, path] of [
      ['GET', '/admin/export'],
      ['POST', '/admin/fence'],
      ['POST', '/admin/drain'],
      ['GET', '/admin/stats'],
      ['POST', '/admin/import'],
    ]) {
      const answer = await call(node, method!, path!, { token: alice });
      expect(answer.status, path).toBe(403);
      expect(answer.json.error.code).toBe('forbidden');
    }
  });

  it('refuses bad input with its code and message, stays up, and leaves stored data unchanged', async () => {
    const before = await exportAll(node, admin);
    const huge = 'x'.repeat(300 * 1024);
    const cases: Array<{
      what: string;
      method: string;
      path: string;
      raw?: string;
      body?: unknown;
      headers?: Record<string, string>;
      status: number;
      code: string;
      message?: RegExp;
    }> = [
      {
        what: 'malformed JSON',
        method: 'PUT',
        path: '/v1/items/trip-a',
        raw: '{"type": "trip", "data": {',
        headers: { 'content-type': 'application/json' },
        status: 400,
        code: 'malformed-json',
        message: /not valid JSON/,
      },
      {
        what: 'wrong type of type',
        method: 'PUT',
        path: '/v1/items/trip-a',
        body: { type: 7, data: {} },
        status: 400,
        code: 'invalid-body',
        message: /^type:/,
      },
      {
        what: 'unknown item type',
        method: 'PUT',
        path: '/v1/items/trip-a',
        body: { type: 'boat', data: {} },
        status: 400,
        code: 'invalid-body',
        message: /^type:/,
      },
      {
        what: 'data not an object',
        method: 'PUT',
        path: '/v1/items/trip-a',
        body: { type: 'trip', data: [1, 2] },
        status: 400,
        code: 'invalid-body',
        message: /^data:/,
      },
      {
        what: 'unknown field',
        method: 'PUT',
        path: '/v1/items/trip-a',
        body: { type: 'trip', data: {}, owner: 'mallory' },
        status: 400,
        code: 'invalid-body',
      },
      {
        what: 'huge id',
        method: 'PUT',
        path: `/v1/items/${'i'.repeat(129)}`,
        body: { type: 'trip', data: {} },
        status: 400,
        code: 'invalid-id',
        message: /129 characters/,
      },
      { what: 'id with bad characters', method: 'GET', path: '/v1/items/a%20b', status: 400, code: 'invalid-id' },
      {
        what: 'huge body',
        method: 'PUT',
        path: '/v1/items/trip-a',
        raw: JSON.stringify({ type: 'trip', data: { huge } }),
        headers: { 'content-type': 'application/json' },
        status: 413,
        code: 'payload-too-large',
      },
      {
        what: 'wrong content type',
        method: 'PUT',
        path: '/v1/items/trip-a',
        raw: '{"type":"trip","data":{}}',
        headers: { 'content-type': 'text/plain' },
        status: 415,
        code: 'unsupported-media-type',
      },
      {
        what: 'share body wrong type',
        method: 'POST',
        path: '/v1/items/trip-a/shares',
        body: { to: 42 },
        status: 400,
        code: 'invalid-body',
        message: /^to:/,
      },
      {
        what: 'import not NDJSON',
        method: 'POST',
        path: '/admin/import',
        raw: '{}',
        headers: { 'content-type': 'application/json' },
        status: 415,
        code: 'unsupported-media-type',
      },
      {
        what: 'import garbage line',
        method: 'POST',
        path: '/admin/import',
        raw: '{"kind":"item","id":"z"}\n',
        headers: { 'content-type': 'application/x-ndjson' },
        status: 400,
        code: 'invalid-import-line',
        message: /^line 1: /,
      },
      { what: 'unknown route', method: 'GET', path: '/v2/items/x', status: 404, code: 'no-route' },
      {
        what: 'unknown export cursor',
        method: 'GET',
        path: '/admin/export?since=garbage',
        status: 410,
        code: 'cursor-unknown',
      },
    ];
    for (const c of cases) {
      const token = c.path.startsWith('/admin') ? admin : alice;
      const answer = await call(node, c.method, c.path, { token, raw: c.raw, body: c.body, headers: c.headers });
      expect(answer.status, c.what).toBe(c.status);
      expect(answer.json?.error?.code, c.what).toBe(c.code);
      if (c.message) expect(answer.json.error.message, c.what).toMatch(c.message);
    }
    expect((await call(node, 'GET', '/healthz')).status).toBe(200);
    const after = await exportAll(node, admin);
    expect(after).toEqual(before);
  });

  it('answers an id too long for any request line with 431 and stays up', async () => {
    const answer = await call(node, 'GET', `/v1/items/${'x'.repeat(20_000)}`, { token: alice });
    expect(answer.status).toBe(431);
    expect((await call(node, 'GET', '/healthz')).status).toBe(200);
  });

  it('answers 405 with Allow for a known path and a wrong method', async () => {
    const answer = await call(node, 'POST', '/v1/items/trip-a', { token: alice, body: {} });
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('GET, PUT, DELETE');
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await call(node, 'GET', '/healthz')).json).toEqual({ status: 'ok', node: 'test-node' });
    expect((await call(node, 'GET', '/readyz')).status).toBe(200);
    const metrics = await call(node, 'GET', '/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(metrics.text).toMatch(
      /navcloud_http_requests_total\{route="\/v1\/items\/:id",method="PUT",status="201"\} \d+/,
    );
    expect(metrics.text).toContain('navcloud_open_streams 0');
    expect(metrics.text).toMatch(/navcloud_store_latency_seconds_count\{operation="put"\} \d+/);
    expect(metrics.text).toContain('navcloud_heartbeat_lag_seconds_bucket');
    expect(metrics.text).toContain('navcloud_bus_lag_seconds_count');
    // prom-client's process metrics beside the node's own: CPU, memory, event-loop lag, GC.
    expect(metrics.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(metrics.text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(metrics.text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(metrics.text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
  });
});

describe('per-user rate limit', () => {
  it('answers 429 with Retry-After once a user spends the burst, without touching other users', async () => {
    const node = await startTestNode({ rateLimit: { perSecond: 1, burst: 3 } });
    try {
      const erin = await node.token('erin');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await call(node, 'GET', '/v1/inbox', { token: erin })).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const limited = await call(node, 'GET', '/v1/inbox', { token: erin });
      expect(limited.json.error.code).toBe('rate-limited');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await call(node, 'GET', '/v1/inbox', { token: await node.token('frank') })).status).toBe(200);
    } finally {
      await node.stop();
    }
  });
});

describe('readiness', () => {
  it('answers /readyz 503 while the store is unreachable, and /healthz 200', async () => {
    const dir = tempDir('navcloud-');
    const store = new SqliteStore(join(dir.path, 'gone.sqlite'));
    await store.close();
    const node = await startTestNode({ storeInstance: store }, dir);
    try {
      const ready = await call(node, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.error.code).toBe('store-unavailable');
      expect((await call(node, 'GET', '/healthz')).status).toBe(200);
      const read = await call(node, 'GET', '/v1/items/anything', { token: await node.token('alice') });
      expect(read.status).toBe(503);
      expect(read.json.error.code).toBe('store-unavailable');
    } finally {
      await node.stop();
    }
  });
});
