import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SyncClient } from '../../src/navcloud/client.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import type { StreamMessage } from '../../src/navcloud/protocol.ts';
import { ConnectionError } from '../../src/navcloud/stream.ts';
import { freePort } from '../../src/net.ts';
import { JWT_SECRET, startProxy, startTestStack, type TestStack } from './stack.ts';
import { fenceAsIs, unfenceAsIs } from '../support/fence.ts';

let stack: TestStack;
const as = async (user: string, baseUrl = stack.outputs.endpoint) =>
  new SyncClient({ baseUrl, token: await signToken(JWT_SECRET, user), timeoutMs: 5000 });

beforeAll(async () => {
  // Writes on a fenced stack are refused at once (not held), so the refusal can be checked.
  stack = await startTestStack({ nodes: 2, heartbeatMs: 150, holdMs: 0 });
});
afterAll(async () => {
  await stack?.close();
});

describe('SyncClient', () => {
  it('writes, reads and deletes with revisions as ETags and preconditions', async () => {
    const alice = await as('client-alice');
    const created = await alice.putItem('client-item-1', { type: 'trip', data: { km: 1 } }, { ifNoneMatch: '*' });
    expect(created).toMatchObject({ ok: true, status: 201 });
    const rev1 = created.ok ? created.etag : undefined;
    expect(rev1).toMatch(/^1-/);

    const again = await alice.putItem('client-item-1', { type: 'trip', data: { km: 1 } }, { ifNoneMatch: '*' });
    expect(again).toMatchObject({ ok: false, status: 412, error: { code: 'precondition-failed' } });

    const updated = await alice.putItem('client-item-1', { type: 'trip', data: { km: 2 } }, { ifMatch: rev1 });
    expect(updated.ok && updated.etag).toMatch(/^2-/);
    const read = await alice.getItem('client-item-1');
    expect(read).toMatchObject({
      ok: true,
      status: 200,
      body: { id: 'client-item-1', owner: 'client-alice', data: { km: 2 } },
    });
    expect(read.ok && read.etag).toBe(updated.ok && updated.etag);

    expect(await alice.deleteItem('client-item-1', rev1)).toMatchObject({ ok: false, status: 412 });
    expect(await alice.deleteItem('client-item-1', updated.ok ? updated.etag : undefined)).toMatchObject({
      ok: true,
      status: 204,
    });
    expect(await alice.getItem('client-item-1')).toMatchObject({ ok: false, status: 404 });
  });

  it("shares an item and lists it in the reader's inbox", async () => {
    const owner = await as('client-owner');
    await owner.putItem('client-shared-1', { type: 'place', data: { name: 'x' } }, { ifNoneMatch: '*' });
    expect(await (await as('client-reader')).getItem('client-shared-1')).toMatchObject({ status: 404 });
    expect(await owner.share('client-shared-1', 'client-reader')).toMatchObject({ ok: true });
    expect(await (await as('client-reader')).getItem('client-shared-1')).toMatchObject({
      ok: true,
      body: { data: { name: 'x' } },
    });
    const inbox = await (await as('client-reader')).inbox();
    expect(inbox.ok && inbox.body.items.map((i) => i.id)).toEqual(['client-shared-1']);
    expect(await owner.unshare('client-shared-1', 'client-reader')).toMatchObject({ ok: true });
    expect(await (await as('client-reader')).getItem('client-shared-1')).toMatchObject({ status: 404 });
  });

  it('returns refusals as results with the error body, and Retry-After on a fence', async () => {
    const anonymous = new SyncClient({ baseUrl: stack.outputs.endpoint });
    expect(await anonymous.getItem('x')).toMatchObject({ ok: false, status: 401, error: { code: 'missing-token' } });
    const admin = createAdminClient({ adminUrl: stack.outputs.adminUrl, jwtSecret: JWT_SECRET });
    await fenceAsIs(admin, 60);
    try {
      const refused = await (await as('client-fenced')).putItem('client-fenced-1', { type: 'trip', data: {} });
      expect(refused).toMatchObject({ ok: false, status: 503, error: { code: 'fenced' }, retryAfterMs: 1000 });
    } finally {
      await unfenceAsIs(admin);
    }
  });

  it('throws ConnectionError when nothing answers, or an answer stalls past the timeout', async () => {
    const port = await freePort();
    const nobody = new SyncClient({ baseUrl: `http://127.0.0.1:${port}`, token: 't' });
    await expect(nobody.health()).rejects.toBeInstanceOf(ConnectionError);

    const staller = createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"status":');
    });
    staller.listen(0, '127.0.0.1');
    await once(staller, 'listening');
    try {
      const address = staller.address() as AddressInfo;
      const stalled = new SyncClient({ baseUrl: `http://127.0.0.1:${address.port}`, timeoutMs: 150 });
      await expect(stalled.health()).rejects.toThrow(/answer not complete within \d+ ms/);
    } finally {
      staller.closeAllConnections();
      staller.close();
    }
  });
});

describe('SyncStream', () => {
  it('delivers changes written on another node and follows their cursor', async () => {
    const reader = await as('stream-bob');
    const page = await reader.changes();
    const since = page.ok ? page.body.next : undefined;
    const opened = await reader.stream({ since });
    if (!opened.ok) throw new Error(`stream refused: ${opened.status}`);
    const stream = opened.body;
    expect(stream.cursor).toBe(since);
    const written = await (
      await as('stream-bob', stack.outputs.nodes[1])
    ).putItem('stream-item-1', { type: 'route', data: { n: 1 } }, { ifNoneMatch: '*' });
    expect(written.ok).toBe(true);
    const seen: StreamMessage[] = [];
    for await (const message of stream) {
      seen.push(message);
      if (message.type === 'change') break;
    }
    const change = seen.find((m) => m.type === 'change');
    expect(change).toMatchObject({ type: 'change', id: 'stream-item-1', itemType: 'route', data: { n: 1 } });
    expect(stream.cursor).toBe(change && change.type === 'change' ? change.cursor : 'none');
    expect(stream.cursor).not.toBe(since);
    // The cursor resumes after the change: the feed has nothing newer for this user.
    const after = await reader.changes(stream.cursor);
    expect(after.ok && after.body.changes).toEqual([]);
  });

  it('ends cleanly after reconnect when the node drains, and the node refuses new streams', async () => {
    const drainable = await startTestStack({ nodes: 1, heartbeatMs: 100 });
    try {
      const client = new SyncClient({
        baseUrl: drainable.outputs.endpoint,
        token: await signToken(JWT_SECRET, 'drained-user'),
      });
      const opened = await client.stream();
      if (!opened.ok) throw new Error('stream refused');
      const admin = createAdminClient({ adminUrl: drainable.outputs.adminUrl, jwtSecret: JWT_SECRET });
      const types: string[] = [];
      for await (const message of opened.body) {
        types.push(message.type);
        if (message.type === 'heartbeat' && types.length === 1) await admin.drain(drainable.outputs.nodes[0]!);
      }
      expect(types.at(-1)).toBe('reconnect');
      expect(await client.stream()).toMatchObject({
        ok: false,
        status: 503,
        error: { code: 'draining' },
        retryAfterMs: 1000,
      });
    } finally {
      await drainable.close();
    }
  });

  it('throws the abort reason when aborted and ConnectionError when silent too long', async () => {
    const controller = new AbortController();
    const opened = await (await as('stream-carol')).stream({ signal: controller.signal });
    if (!opened.ok) throw new Error('stream refused');
    const reason = new Error('test aborted the stream');
    const iterate = (async () => {
      for await (const message of opened.body) if (message.type === 'heartbeat') controller.abort(reason);
    })();
    await expect(iterate).rejects.toBe(reason);

    // Heartbeats every 150 ms cannot keep a 20 ms idle bound satisfied.
    const silent = await (await as('stream-carol')).stream({ idleTimeoutMs: 20 });
    if (!silent.ok) throw new Error('stream refused');
    const drainSilent = (async () => {
      for await (const message of silent.body) void message;
    })();
    await expect(drainSilent).rejects.toThrow(/silent for 20 ms/);
  });

  it('reassembles lines and characters split across chunks', async () => {
    const change = {
      type: 'change',
      cursor: 'c1',
      id: 'zurich',
      owner: 'u',
      itemType: 'place',
      rev: '1-a',
      deleted: false,
      data: { name: 'Zürich 東京' },
      updatedAt: 'now',
    };
    const line = Buffer.from(`${JSON.stringify(change)}\n`);
    const splitter = createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // One byte per chunk: every multi-byte character and the line itself arrive in pieces.
      void (async () => {
        for (const byte of line) {
          response.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
        response.end();
      })();
    });
    splitter.listen(0, '127.0.0.1');
    await once(splitter, 'listening');
    try {
      const address = splitter.address() as AddressInfo;
      const opened = await new SyncClient({ baseUrl: `http://127.0.0.1:${address.port}`, token: 't' }).stream();
      if (!opened.ok) throw new Error('stream refused');
      const messages: StreamMessage[] = [];
      for await (const message of opened.body) messages.push(message);
      expect(messages).toMatchObject([{ type: 'change', id: 'zurich', data: { name: 'Zürich 東京' } }]);
      expect(opened.body.cursor).toBe('c1');
    } finally {
      splitter.close();
    }
  });

  it('ends quietly on close(), and throws ConnectionError when the connection is cut midway', async () => {
    const closing = await (await as('stream-dave')).stream();
    if (!closing.ok) throw new Error('stream refused');
    const closed = (async () => {
      for await (const message of closing.body) if (message.type === 'heartbeat') closing.body.close();
    })();
    await expect(closed).resolves.toBeUndefined();

    const proxy = await startProxy(stack.outputs.endpoint, () => undefined);
    const cut = await (await as('stream-dave', proxy.url)).stream();
    if (!cut.ok) throw new Error('stream refused');
    const iterate = (async () => {
      for await (const message of cut.body) if (message.type === 'heartbeat') void proxy.close();
    })();
    await expect(iterate).rejects.toBeInstanceOf(ConnectionError);
  });
});
