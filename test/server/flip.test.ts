/**
 * The flip on real `navcloud-sync` processes on loopback, each stack its own SQLite file: writes
 * held while the old stack is fenced, then relayed to the new stack once it forwards (or applied
 * where they are when the fence opens), reads, changes, the inbox, shares and streams relayed
 * with the caller's identity, and a hold that times out.
 */
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/navcloud/token.ts';
import { encodeProxyHeader } from '../../server/proxy-protocol.ts';
import { call, changeFenceAsRead, copyAll, openStream, SECRET, startTestNode } from './helpers.ts';
import { tempDir } from '../support/temp-dir.ts';
import { startSyncProcess, stopSyncProcess, type SyncProcess } from '../support/sync-process.ts';

const admin = await signToken(SECRET, 'switchyard', { admin: true });
const alice = await signToken(SECRET, 'flip-alice');
const bob = await signToken(SECRET, 'flip-bob');

interface NodeProcess extends SyncProcess {
  stop(): Promise<void>;
}

async function launch(name: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const dir = tempDir(`flip-${name}-`);
  const node = await startSyncProcess({
    store: `sqlite:${join(dir.path, 'store.sqlite')}`,
    nodeId: name,
    secret: SECRET,
    env: { LOG_LEVEL: 'warn', SYNC_HEARTBEAT_MS: '200', SYNC_RATE_LIMIT: 'off', ...env },
  });
  return {
    ...node,
    async stop() {
      await stopSyncProcess(node);
      dir.remove();
    },
  };
}

const fence = (node: NodeProcess, leaseSeconds = 30) =>
  changeFenceAsRead(node, admin, '/admin/fence', { leaseSeconds });
const forward = (node: NodeProcess, to: NodeProcess | string) =>
  changeFenceAsRead(node, admin, '/admin/forward', { to: typeof to === 'string' ? to : to.url });
/** Nodes read the fence at most 25 ms old: a request sent later than this after a fence change sees it. */
const settled = () => new Promise((wait) => setTimeout(wait, 100));
const unfence = (node: NodeProcess) => changeFenceAsRead(node, admin, '/admin/unfence');
const put = (node: { url: string }, id: string, data: object, token = alice) =>
  call(node, 'PUT', `/v1/items/${id}`, { token, body: { type: 'trip', data } });

/** A raw request with its status and headers as sent (fetch hides Connection). */
function rawPut(
  node: NodeProcess,
  id: string,
  data: object,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  const body = JSON.stringify({ type: 'trip', data });
  return new Promise((done, fail) => {
    const outgoing = request(
      `${node.url}/v1/items/${id}`,
      {
        method: 'PUT',
        agent: false,
        headers: {
          authorization: `Bearer ${alice}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (answer: IncomingMessage) => {
        let text = '';
        answer
          .setEncoding('utf8')
          .on('data', (chunk: string) => (text += chunk))
          .on('end', () => done({ status: answer.statusCode ?? 0, headers: answer.headers, body: JSON.parse(text) }));
      },
    );
    outgoing.on('error', fail);
    outgoing.end(body);
  });
}

describe('the flip: hold, then forward', () => {
  let old: NodeProcess;
  let fresh: NodeProcess;
  beforeAll(async () => {
    [old, fresh] = await Promise.all([launch('old-1'), launch('new-1')]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([old?.stop(), fresh?.stop()]);
  });

  it('holds a write while fenced, relays it to the new stack once forwarding, and tells open streams to reconnect', async () => {
    expect((await put(old, 'flip-a', { n: 1 })).status).toBe(201);
    expect(
      (await call(old, 'POST', '/v1/items/flip-a/shares', { token: alice, body: { to: 'flip-bob' } })).status,
    ).toBe(200);
    const stream = await openStream(old, alice);
    await stream.next((m) => m.type === 'heartbeat' && m.node === 'old-1');

    expect((await fence(old)).json).toMatchObject({ fenced: true, mode: 'fenced' });
    const started = Date.now();
    let answeredAt = 0;
    const held = put(old, 'flip-held', { n: 1 }).then((answer) => ((answeredAt = Date.now()), answer));
    // Reads are served while fenced.
    expect((await call(old, 'GET', '/v1/items/flip-a', { token: alice })).status).toBe(200);
    await new Promise((wait) => setTimeout(wait, 300));
    expect(answeredAt).toBe(0);
    await copyAll(old, fresh, admin);
    const forwardedAt = Date.now();
    expect((await forward(old, fresh)).json).toMatchObject({ mode: 'forwarding', forwardTo: fresh.url });

    const answer = await held;
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({ id: 'flip-held', owner: 'flip-alice', data: { n: 1 } });
    expect(answeredAt).toBeGreaterThanOrEqual(forwardedAt);
    console.log(
      `held write: answered ${answeredAt - started} ms after it was sent, ${answeredAt - forwardedAt} ms after forward()`,
    );
    // It landed on the new stack, not the old one.
    expect((await call(fresh, 'GET', '/v1/items/flip-held', { token: alice })).json).toMatchObject({
      owner: 'flip-alice',
      data: { n: 1 },
    });
    expect((await call(old, 'GET', '/admin/export', { token: admin })).text).not.toContain('flip-held');

    expect(await stream.next((m) => m.type === 'reconnect')).toEqual({ type: 'reconnect', reason: 'forwarding' });
    await stream.ended;
  });

  it("relays reads, changes, the inbox, shares and deletes to the new stack with the caller's identity", async () => {
    // Written on the new stack only: the old one can answer it only by relaying.
    const created = await put(fresh, 'flip-only-new', { n: 7 });
    expect(created.status).toBe(201);
    expect((await call(old, 'GET', '/v1/items/flip-only-new', { token: alice })).json).toMatchObject({
      owner: 'flip-alice',
      data: { n: 7 },
    });
    // Identity kept: to bob the item does not exist, and he may not change alice's items.
    expect((await call(old, 'GET', '/v1/items/flip-only-new', { token: bob })).status).toBe(404);
    expect((await put(old, 'flip-a', { n: 2 }, bob)).status).toBe(403);
    expect((await call(old, 'GET', '/v1/items/flip-only-new')).status).toBe(401);

    expect(
      (await call(old, 'POST', '/v1/items/flip-only-new/shares', { token: alice, body: { to: 'flip-bob' } })).status,
    ).toBe(200);
    const inbox = await call(old, 'GET', '/v1/inbox', { token: bob });
    expect(inbox.json.items.map((item: { id: string }) => item.id).sort()).toEqual(['flip-a', 'flip-only-new']);
    const changes = await call(old, 'GET', '/v1/changes?limit=1000', { token: alice });
    expect(changes.json.changes.map((c: { id: string }) => c.id)).toEqual(
      expect.arrayContaining(['flip-a', 'flip-held', 'flip-only-new']),
    );
    expect((await call(old, 'DELETE', '/v1/items/flip-only-new/shares/flip-bob', { token: alice })).status).toBe(204);
    expect((await call(old, 'DELETE', '/v1/items/flip-held', { token: alice })).status).toBe(204);
    expect((await call(fresh, 'GET', '/v1/items/flip-held', { token: alice })).status).toBe(404);

    const metrics = (await call(old, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/navcloud_requests_held_total\{outcome="forwarded"\} 1/);
    expect(metrics).toMatch(/navcloud_requests_forwarded_total\{route="\/v1\/inbox"\} 1/);
    // Admin calls are the old stack's own.
    expect((await call(old, 'GET', '/admin/stats', { token: admin })).json).toMatchObject({
      node: 'old-1',
      fence: { mode: 'forwarding' },
      // The held write, then the eight requests above with a token (the one without was refused here).
      flip: { requestsHeld: 1, holdsTimedOut: 0, requestsForwarded: 9 },
    });
  });

  it('relays a stream opened on the old stack: heartbeats and changes come from the new one', async () => {
    const stream = await openStream(old, alice);
    try {
      expect(stream.status).toBe(200);
      await expect
        .poll(async () => (await call(fresh, 'GET', '/admin/stats', { token: admin })).json.openStreams)
        .toBe(1);
      expect(await stream.next((m) => m.type === 'heartbeat')).toMatchObject({ node: 'new-1' });
      await put(fresh, 'flip-streamed', { n: 1 });
      expect(await stream.next((m) => m.type === 'change' && m.id === 'flip-streamed')).toMatchObject({
        owner: 'flip-alice',
        data: { n: 1 },
      });
    } finally {
      stream.close();
    }
    // Closed by the client: the relay lets go of the new stack's stream too.
    await expect
      .poll(async () => (await call(fresh, 'GET', '/admin/stats', { token: admin })).json.openStreams, {
        timeout: 5_000,
      })
      .toBe(0);
  });

  it('ends relayed streams on a drain, spread over SYNC_RECONNECT_SPREAD_MS, and counts them as open until then', async () => {
    const back = await launch('old-3', { SYNC_RECONNECT_SPREAD_MS: '2000' });
    try {
      await fence(back);
      await forward(back, fresh);
      await settled();
      const streams = await Promise.all(Array.from({ length: 4 }, () => openStream(back, bob)));
      await Promise.all(streams.map((stream) => stream.next((m) => m.type === 'heartbeat' && m.node === 'new-1')));
      expect((await call(back, 'GET', '/admin/stats', { token: admin })).json.openStreams).toBe(4);
      expect((await call(back, 'POST', '/admin/drain', { token: admin })).json).toEqual({
        draining: true,
        closedStreams: 4,
      });
      // One stream every 500 ms: right after the drain most are still open, and the drain's evidence says so.
      expect((await call(back, 'GET', '/admin/stats', { token: admin })).json.openStreams).toBeGreaterThan(1);
      await Promise.all(streams.map((stream) => stream.ended));
      expect((await call(back, 'GET', '/admin/stats', { token: admin })).json.openStreams).toBe(0);
    } finally {
      await back.stop();
    }
  });

  it('ends a relayed stream when the new stack closes it', async () => {
    const other = await launch('new-2');
    const back = await launch('old-2');
    try {
      await fence(back);
      await forward(back, other);
      await settled();
      const stream = await openStream(back, bob);
      await stream.next((m) => m.type === 'heartbeat' && m.node === 'new-2');
      await other.stop();
      expect(await stream.next((m) => m.type === 'reconnect')).toEqual({ type: 'reconnect', reason: 'shutdown' });
      await stream.ended;
    } finally {
      await Promise.all([other.stop(), back.stop()]);
    }
  });
});

describe('holding without forwarding', () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await launch('held', { SYNC_HOLD_SECONDS: '2' });
  }, 60_000);
  afterAll(async () => node?.stop());

  it('answers 503 fenced with Retry-After and Connection: close when the hold times out', async () => {
    await fence(node, 60);
    const started = Date.now();
    const answer = await rawPut(node, 'held-timeout', { n: 1 });
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ error: { code: 'fenced' } });
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    expect(answer.headers.connection).toBe('close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect((await call(node, 'GET', '/v1/items/held-timeout', { token: alice })).status).toBe(404);
    expect((await call(node, 'GET', '/metrics')).text).toMatch(/navcloud_requests_held_total\{outcome="timed-out"\} 1/);
    await unfence(node);
  });

  it('applies a held write here when the lease lapses', async () => {
    await fence(node, 1);
    const answer = await put(node, 'held-lapsed', { n: 1 });
    expect(answer.status).toBe(201);
    expect((await call(node, 'GET', '/v1/items/held-lapsed', { token: alice })).json).toMatchObject({ data: { n: 1 } });
  });

  it('applies a held write here when the stack is unfenced', async () => {
    await fence(node, 60);
    const held = put(node, 'held-unfenced', { n: 1 });
    await new Promise((wait) => setTimeout(wait, 200));
    await unfence(node);
    expect((await held).status).toBe(201);
  });
});

describe('forwarding behind a PROXY protocol balancer', () => {
  it("relays the caller's Authorization and its address from the PROXY header in X-Forwarded-For", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const upstream = createServer((incoming, outgoing) => {
      seen.push(incoming.headers);
      incoming.resume();
      outgoing.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}');
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const address = upstream.address();
    const upstreamUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const node = await launch('proxied', { SYNC_PROXY_PROTOCOL: '1' });
    try {
      const header = encodeProxyHeader({ address: '203.0.113.7', port: 40_000 }, { address: '10.0.0.1', port: 443 });
      const send = (bytes: Buffer) =>
        new Promise<string>((done, fail) => {
          const socket = connect({ host: '127.0.0.1', port: node.port });
          let text = '';
          socket
            .setEncoding('utf8')
            .on('data', (chunk: string) => (text += chunk))
            .on('close', () => done(text))
            .on('error', fail);
          socket.write(bytes);
        });
      const admin2 = (path: string, body: object) =>
        Buffer.from(
          `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${admin}\r\ncontent-type: ` +
            `application/json\r\ncontent-length: ${JSON.stringify(body).length}\r\n\r\n${JSON.stringify(body)}`,
        );
      const change = (epoch: number, mode: string) => ({ expected: { epoch, mode }, by: 'test' });
      expect(
        await send(Buffer.concat([header, admin2('/admin/fence', { ...change(0, 'open'), leaseSeconds: 30 })])),
      ).toMatch(/^HTTP\/1.1 200/);
      const cursor = /"cursor":"([^"]+)"/.exec(
        await send(
          Buffer.concat([
            header,
            Buffer.from(
              `GET /admin/fence HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${admin}\r\n\r\n`,
            ),
          ]),
        ),
      )![1];
      expect(
        await send(
          Buffer.concat([header, admin2('/admin/forward', { ...change(1, 'fenced'), cursor, to: upstreamUrl })]),
        ),
      ).toMatch(/^HTTP\/1.1 200/);
      await settled();
      const inbox = Buffer.from(
        `GET /v1/inbox HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${bob}\r\nx-forwarded-for: 198.51.100.9\r\n\r\n`,
      );
      expect(await send(Buffer.concat([header, inbox]))).toMatch(/^HTTP\/1.1 200[\s\S]*\{"items":\[\]\}/);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        authorization: `Bearer ${bob}`,
        'x-forwarded-for': '198.51.100.9, 203.0.113.7',
        via: '1.1 navcloud-sync',
      });
    } finally {
      await node.stop();
      upstream.close();
    }
  });
});

describe('stacks forwarding to each other', () => {
  it('refuse a request relayed three times instead of relaying it forever', async () => {
    const node = await startTestNode();
    try {
      const operator = await node.token('switchyard', true);
      await changeFenceAsRead(node, operator, '/admin/fence', { leaseSeconds: 30 });
      // The worst misconfiguration: a stack forwarding to itself.
      expect((await changeFenceAsRead(node, operator, '/admin/forward', { to: node.url })).status).toBe(200);
      await settled();
      const answer = await call(node, 'GET', '/v1/inbox', { token: await node.token('looped') });
      expect(answer.status).toBe(503);
      expect(answer.json).toMatchObject({ error: { code: 'forward-loop' } });
      expect(answer.headers.get('retry-after')).toBeTruthy();
    } finally {
      await node.stop();
    }
  });
});

describe('reading the fence', () => {
  it('does not read the store per request: requests share a cached fence', async () => {
    const node = await startTestNode();
    try {
      const token = await node.token('cache-user');
      expect((await call(node, 'PUT', '/v1/items/cached', { token, body: { type: 'trip', data: {} } })).status).toBe(
        201,
      );
      const fenceReads = async () =>
        Number(
          /navcloud_store_latency_seconds_count\{operation="fenceState"\} (\d+)/.exec(
            (await call(node, 'GET', '/metrics')).text,
          )?.[1] ?? 0,
        );
      const before = await fenceReads();
      const requests = 400;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < requests / 4; i++) await call(node, 'GET', '/v1/items/cached', { token });
        }),
      );
      expect((await fenceReads()) - before).toBeLessThan(requests / 4);
    } finally {
      await node.stop();
    }
  });
});
