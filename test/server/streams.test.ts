import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { call, openStream, startTestNode, type TestNode } from './helpers.ts';

const nodes: TestNode[] = [];
async function node(options: Parameters<typeof startTestNode>[0] = {}): Promise<TestNode> {
  const started = await startTestNode(options);
  nodes.push(started);
  return started;
}
afterEach(async () => {
  for (const started of nodes.splice(0)) await started.stop();
});

describe('GET /v1/stream', () => {
  it('catches up from since, then delivers live changes, each once and in order', async () => {
    const target = await node();
    const alice = await target.token('alice');
    for (let i = 0; i < 3; i++)
      await call(target, 'PUT', `/v1/items/s${i}`, { token: alice, body: { type: 'place', data: { i } } });
    const since = (await call(target, 'GET', '/v1/changes?limit=1', { token: alice })).json.next;

    const stream = await openStream(target, alice, since);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('application/x-ndjson');
    expect(stream.headers['transfer-encoding']).toBe('chunked');
    const caughtUp = [await stream.next((m) => m.type === 'change'), await stream.next((m) => m.type === 'change')];
    expect(caughtUp.map((m) => m.id)).toEqual(['s1', 's2']);
    expect(caughtUp[0]).toMatchObject({
      type: 'change',
      owner: 'alice',
      itemType: 'place',
      deleted: false,
      data: { i: 1 },
    });

    const writes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(target, 'PUT', `/v1/items/live${i}`, { token: alice, body: { type: 'trip', data: { i } } }),
      ),
    );
    await call(target, 'DELETE', '/v1/items/s0', { token: alice });
    await stream.next((m) => m.type === 'change' && m.id === 's0' && m.deleted);
    const changes = stream.messages.filter((m) => m.type === 'change');
    expect(changes.map((m) => m.id).sort()).toEqual(['s1', 's2', 's0', ...writes.map((w) => w.json.id)].sort());
    expect(new Set(changes.map((m) => m.cursor)).size).toBe(changes.length);
    const feed = (await call(target, 'GET', `/v1/changes?since=${since}&limit=1000`, { token: alice })).json.changes;
    expect(changes.map((m) => m.cursor)).toEqual(feed.map((c: { cursor: string }) => c.cursor));
    stream.close();
  });

  it('catches up across many store pages without losing or repeating a change', async () => {
    const target = await node();
    const alice = await target.token('alice');
    for (let batch = 0; batch < 9; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          call(target, 'PUT', `/v1/items/bulk-${batch}-${i}`, {
            token: alice,
            body: { type: 'place', data: { batch, i } },
          }),
        ),
      );
    }
    const stream = await openStream(target, alice);
    await expect.poll(() => stream.messages.filter((m) => m.type === 'change').length, { timeout: 10_000 }).toBe(450);
    const cursors = stream.messages.filter((m) => m.type === 'change').map((m) => m.cursor);
    expect(new Set(cursors).size).toBe(450);
    const feed = [];
    let since = '';
    for (;;) {
      const page = (
        await call(target, 'GET', `/v1/changes?limit=1000${since ? `&since=${since}` : ''}`, { token: alice })
      ).json;
      feed.push(...page.changes.map((c: { cursor: string }) => c.cursor));
      if (page.changes.length === 0) break;
      since = page.next;
    }
    expect(cursors).toEqual(feed);
    stream.close();
  });

  it('tells a sharee about shared items, their edits and the revocation, and nobody else', async () => {
    const target = await node();
    const alice = await target.token('alice');
    const bobStream = await openStream(target, await target.token('bob'));
    const carolStream = await openStream(target, await target.token('carol'));
    await call(target, 'PUT', '/v1/items/shared-trip', { token: alice, body: { type: 'trip', data: { v: 1 } } });
    await call(target, 'POST', '/v1/items/shared-trip/shares', { token: alice, body: { to: 'bob' } });
    const shared = await bobStream.next((m) => m.type === 'shared');
    expect(shared).toMatchObject({ type: 'shared', by: 'alice', to: 'bob', id: 'shared-trip', data: { v: 1 } });
    await call(target, 'PUT', '/v1/items/shared-trip', { token: alice, body: { type: 'trip', data: { v: 2 } } });
    expect(await bobStream.next((m) => m.type === 'shared')).toMatchObject({ data: { v: 2 } });
    await call(target, 'DELETE', '/v1/items/shared-trip/shares/bob', { token: alice });
    const revoked = await bobStream.next((m) => m.type === 'shared');
    expect(revoked).toMatchObject({ by: 'alice', to: 'bob', revoked: true, deleted: true });
    expect(revoked.data).toBeUndefined();
    expect(carolStream.messages.filter((m) => m.type !== 'heartbeat')).toEqual([]);
    bobStream.close();
    carolStream.close();
  });

  it('sends heartbeats every SYNC_HEARTBEAT_MS with the node id', async () => {
    const target = await node({ heartbeatMs: 100 });
    const stream = await openStream(target, await target.token('alice'));
    const beats = [];
    for (let i = 0; i < 4; i++) beats.push(await stream.next((m) => m.type === 'heartbeat', 5000));
    for (const beat of beats) {
      expect(beat.node).toBe('test-node');
      expect(Number.isNaN(Date.parse(beat.at))).toBe(false);
    }
    const metrics = (await call(target, 'GET', '/metrics')).text;
    expect(Number(/navcloud_heartbeats_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(4);
    stream.close();
  });

  it('refuses an unknown cursor with 410 before streaming', async () => {
    const target = await node();
    const answer = await call(target, 'GET', '/v1/stream?since=bogus', { token: await target.token('alice') });
    expect(answer.status).toBe(410);
    expect(answer.json.error.code).toBe('cursor-unknown');
  });

  it('cuts off a client that stops reading with reconnect instead of buffering for it', async () => {
    const target = await node({ heartbeatMs: 50, slowStreamMs: 300, streamBufferBytes: 64 * 1024 });
    const alice = await target.token('alice');
    // A raw socket paused from the start: Node reads nothing, so once the kernel's socket buffers
    // are full (their size depends on the machine's TCP tuning) the node's own buffer would grow.
    const { port } = new URL(target.url);
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    socket.pause();
    await once(socket, 'connect');
    socket.write(`GET /v1/stream HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${alice}\r\n\r\n`);
    const blob = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 60; i++)
      await call(target, 'PUT', `/v1/items/big${i}`, { token: alice, body: { type: 'trip', data: { blob } } });
    await expect
      .poll(async () => (await call(target, 'GET', '/metrics')).text, { timeout: 15_000 })
      .toMatch(/navcloud_stream_reconnects_total\{reason="slow-reader"\} 1/);
    expect((await call(target, 'GET', '/metrics')).text).toContain('navcloud_open_streams 0');
    // The response ends with the reconnect line and the terminating chunk; the connection may stay open.
    let text = '';
    socket.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (text.endsWith('\r\n0\r\n\r\n')) resolve();
      });
      socket.once('close', () => resolve());
      socket.once('error', reject);
      socket.resume();
    });
    socket.destroy();
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(text).toContain('{"type":"reconnect","reason":"slow-reader"}');
  });
});
