import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { DrainResult, ExportLine, FenceResult, NodeStats } from '../../src/navcloud/protocol.ts';
import { call, exportAll, openStream, startTestNode, type TestNode } from './helpers.ts';
import { tempDir } from '../support/temp-dir.ts';
import { encodeCursor } from '../../src/navcloud/cursor.ts';

const nodes: TestNode[] = [];
async function node(
  options: Parameters<typeof startTestNode>[0] = {},
  dir?: ReturnType<typeof tempDir>,
): Promise<TestNode> {
  const started = await startTestNode(options, dir);
  nodes.push(started);
  return started;
}
afterEach(async () => {
  for (const started of nodes.splice(0).reverse()) await started.stop();
});

async function feed(
  target: TestNode,
  token: string,
  since?: string,
): Promise<Array<{ id: string; rev: string; cursor: string; deleted: boolean }>> {
  const all = [];
  let cursor = since;
  for (;;) {
    const page = await call(target, 'GET', `/v1/changes?limit=3${cursor ? `&since=${cursor}` : ''}`, { token });
    expect(page.status).toBe(200);
    all.push(...page.json.changes);
    if (page.json.changes.length < 3) return all;
    cursor = page.json.next;
  }
}

function ndjson(lines: unknown[]): string {
  return lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
}

describe('admin export and import', () => {
  it('looks one item up by id whoever owns it, tombstones included, for operators only', async () => {
    const target = await node();
    const admin = await target.token('ops', true);
    const alice = await target.token('alice');
    const put = await call(target, 'PUT', '/v1/items/looked-up', {
      token: alice,
      body: { type: 'place', data: { name: 'x' } },
    });
    const found = await call(target, 'GET', '/admin/items/looked-up', { token: admin });
    expect(found.status).toBe(200);
    expect(found.json).toMatchObject({
      kind: 'item',
      id: 'looked-up',
      owner: 'alice',
      rev: put.json.rev,
      deleted: false,
      data: { name: 'x' },
    });
    await call(target, 'DELETE', '/v1/items/looked-up', { token: alice });
    expect((await call(target, 'GET', '/admin/items/looked-up', { token: admin })).json).toMatchObject({
      id: 'looked-up',
      deleted: true,
    });
    expect((await call(target, 'GET', '/admin/items/never-was', { token: admin })).status).toBe(404);
    expect((await call(target, 'GET', '/admin/items/looked-up', { token: alice })).status).toBe(403);
  });

  it('moves a store to an empty one keeping items, revisions and cursors; a client resumes with a pre-export cursor', async () => {
    const source = await node();
    const admin = await source.token('ops', true);
    const alice = await source.token('alice');
    const bob = await source.token('bob');
    for (let i = 0; i < 6; i++)
      await call(source, 'PUT', `/v1/items/a${i}`, { token: alice, body: { type: 'trip', data: { i } } });
    await call(source, 'PUT', '/v1/items/b0', { token: bob, body: { type: 'route', data: {} } });
    await call(source, 'POST', '/v1/items/a1/shares', { token: alice, body: { to: 'bob' } });
    const clientCursor = (await call(source, 'GET', '/v1/changes?limit=4', { token: alice })).json.next as string;
    await call(source, 'DELETE', '/v1/items/a2', { token: alice });
    await call(source, 'PUT', '/v1/items/a0', { token: alice, body: { type: 'trip', data: { i: 'edited' } } });

    const backup = await exportAll(source, admin);
    // The data check's view of the same items: in id order, id, revision and cursor of each, then an end line.
    const revisions = await call(source, 'GET', '/admin/revisions', { token: admin });
    const byId = backup.filter((line) => line.kind === 'item').sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(
      revisions.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([
      ...byId.map((line) => ({ kind: 'revision', id: line.id, rev: line.rev, cursor: line.cursor })),
      backup.at(-1),
    ]);
    const end = backup[backup.length - 1] as Extract<ExportLine, { kind: 'end' }>;
    expect(end).toMatchObject({ kind: 'end', items: backup.length - 1 });
    expect(
      backup
        .slice(0, -1)
        .every((line) => line.kind === 'item' && typeof line.cursor === 'string' && typeof line.rev === 'string'),
    ).toBe(true);

    // Writes after the backup reach the new store through a catch-up export since the backup's end cursor.
    await call(source, 'PUT', '/v1/items/a3', { token: alice, body: { type: 'trip', data: { i: 'late' } } });
    await call(source, 'DELETE', '/v1/items/a1/shares/bob', { token: alice });
    const catchUp = await exportAll(source, admin, end.cursor);
    expect(catchUp.slice(0, -1).map((line) => line.id)).toEqual(['a3', 'a1']);

    const target = await node();
    const restored = await call(target, 'POST', '/admin/import', {
      token: admin,
      raw: ndjson(backup),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(restored.status).toBe(200);
    expect(restored.json).toEqual({ applied: backup.length - 1, skipped: 0, cursor: end.cursor });
    const caughtUp = await call(target, 'POST', '/admin/import', {
      token: admin,
      raw: ndjson(catchUp),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(caughtUp.json).toMatchObject({ applied: 2, skipped: 0 });
    const again = await call(target, 'POST', '/admin/import', {
      token: admin,
      raw: ndjson([...backup, ...catchUp]),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(again.json).toMatchObject({ applied: 0, skipped: backup.length - 1 + 2 });

    expect(await exportAll(target, admin)).toEqual(await exportAll(source, admin));
    for (const token of [alice, bob]) {
      expect(await feed(target, token)).toEqual(await feed(source, token));
      const resumed = await feed(target, token, clientCursor);
      expect(resumed).toEqual(await feed(source, token, clientCursor));
      expect(new Set(resumed.map((c) => c.cursor)).size).toBe(resumed.length);
    }
    const resumedIds = (await feed(target, alice, clientCursor)).map((c) => c.id);
    expect(resumedIds).toEqual(['a5', 'a2', 'a0', 'a3', 'a1']);
    expect((await call(target, 'GET', '/v1/items/a1', { token: bob })).status).toBe(404);
    expect((await call(target, 'GET', '/v1/items/a0', { token: alice })).json.data).toEqual({ i: 'edited' });
  });
});

describe('fence', () => {
  it('answers writes 503 with Retry-After on every node of the store while reads and streams go on; unfence restores', async () => {
    const dir = tempDir('navcloud-');
    // Writes refused at once rather than held (server/flip/hold.ts), so the refusal itself is checked.
    const a = await node({ heartbeatMs: 100, holdMs: 0 }, dir);
    const b = await node({ heartbeatMs: 100, holdMs: 0 }, { path: dir.path, remove: () => undefined });
    const admin = await a.token('ops', true);
    const alice = await a.token('alice');
    const put = await call(a, 'PUT', '/v1/items/f1', { token: alice, body: { type: 'trip', data: { v: 1 } } });
    const stream = await openStream(b, alice);
    await stream.next((m) => m.type === 'change' && m.id === 'f1');

    const fenced = await call(a, 'POST', '/admin/fence', {
      token: admin,
      body: { expected: { epoch: 0, mode: 'open' }, by: 'test', leaseSeconds: 60 },
    });
    expect(fenced.status).toBe(200);
    const result = fenced.json as FenceResult;
    expect(result.fenced).toBe(true);
    expect(put.status).toBe(201);
    expect(result.cursor).toBe((await call(a, 'GET', '/v1/changes', { token: alice })).json.next);

    for (const target of [a, b]) {
      const write = await call(target, 'PUT', '/v1/items/f1', { token: alice, body: { type: 'trip', data: { v: 2 } } });
      expect(write.status).toBe(503);
      expect(write.json.error.code).toBe('fenced');
      expect(Number(write.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await call(target, 'DELETE', '/v1/items/f1', { token: alice })).status).toBe(503);
      expect((await call(target, 'POST', '/v1/items/f1/shares', { token: alice, body: { to: 'bob' } })).status).toBe(
        503,
      );
      const read = await call(target, 'GET', '/v1/items/f1', { token: alice });
      expect(read.status).toBe(200);
      expect(read.json.data).toEqual({ v: 1 });
      expect((await call(target, 'GET', '/v1/changes', { token: alice })).status).toBe(200);
    }
    const beats = stream.messages.filter((m) => m.type === 'heartbeat').length;
    await expect
      .poll(() => stream.messages.filter((m) => m.type === 'heartbeat').length, { timeout: 5000 })
      .toBeGreaterThan(beats);
    const lateStream = await openStream(a, alice);
    expect(lateStream.status).toBe(200);
    await lateStream.next((m) => m.type === 'change' && m.id === 'f1');
    const stats = (await call(b, 'GET', '/admin/stats', { token: admin })).json as NodeStats;
    expect(stats.fenced).toBe(true);
    expect(stats.cursor).toBe(result.cursor);

    const unfenced = await call(b, 'POST', '/admin/unfence', {
      token: admin,
      body: { expected: { epoch: result.epoch, mode: 'fenced' }, by: 'test' },
    });
    expect(unfenced.json).toEqual({
      fenced: false,
      mode: 'open',
      epoch: result.epoch + 1,
      by: 'test',
      cursor: result.cursor,
    });
    const after = await call(a, 'PUT', '/v1/items/f1', { token: alice, body: { type: 'trip', data: { v: 3 } } });
    expect(after.status).toBe(200);
    const live = await lateStream.next((m) => m.type === 'change' && m.id === 'f1' && m.data?.v === 3);
    expect(live.rev).toBe(after.json.rev);
    stream.close();
    lateStream.close();
  });
  it("answers a fenced write alike whether the node held it first or its view of the fence was behind the store's", async () => {
    const dir = tempDir('navcloud-');
    // Views that never refresh by themselves: `behind` keeps the open fence it read at start, `aware` starts fenced.
    const views = { holdMs: 0, fencePollMs: 600_000, fenceIdleMs: 600_000 };
    const behind = await node(views, dir);
    const admin = await behind.token('ops', true);
    const alice = await behind.token('alice');
    expect(
      (await call(behind, 'PUT', '/v1/items/w', { token: alice, body: { type: 'trip', data: { v: 1 } } })).status,
    ).toBe(201);
    const fenced = await call(behind, 'POST', '/admin/fence', {
      token: admin,
      body: { expected: { epoch: 0, mode: 'open' }, by: 'test', leaseSeconds: 60 },
    });
    expect(fenced.status).toBe(200);
    const aware = await node(views, { path: dir.path, remove: () => undefined });
    const answers = [];
    for (const target of [behind, aware]) {
      const write = await call(target, 'PUT', '/v1/items/w', { token: alice, body: { type: 'trip', data: { v: 2 } } });
      answers.push({
        status: write.status,
        body: write.json,
        retryAfter: write.headers.get('retry-after'),
        connection: write.headers.get('connection'),
      });
    }
    expect(answers[0]).toMatchObject({ status: 503, body: { error: { code: 'fenced' } }, connection: 'close' });
    expect(answers[1]).toEqual(answers[0]);
    // Neither was applied: the store's fence check refused both.
    expect((await call(aware, 'GET', '/v1/items/w', { token: alice })).json.data).toEqual({ v: 1 });
    // Only `aware` held its write (for holdMs, 0 here) before the store refused it.
    expect((await call(aware, 'GET', '/metrics')).text).toMatch(
      /navcloud_requests_held_total\{outcome="timed-out"\} 1/,
    );
    expect((await call(behind, 'GET', '/metrics')).text).not.toMatch(
      /navcloud_requests_held_total\{outcome="timed-out"\}/,
    );
  });
});

describe('fence lease and forward over HTTP', () => {
  it('changes the fence only as expected: takes and renews a lease, forwards from a live fence, answers 409 with the fence as it is, 400 for a malformed change', async () => {
    const target = await node();
    const admin = await target.token('ops', true);
    const post = (path: string, body?: unknown) => call(target, 'POST', path, { token: admin, body });
    const change = (epoch: number, mode: string, by = 'switch-1/a') => ({ expected: { epoch, mode }, by });

    const open = (await call(target, 'GET', '/admin/fence', { token: admin })).json as FenceResult;
    expect(open).toEqual({ fenced: false, mode: 'open', epoch: 0, cursor: open.cursor });
    const refused = await post('/admin/forward', {
      ...change(0, 'fenced'),
      to: 'http://127.0.0.1:9000',
      cursor: open.cursor,
    });
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ error: { code: 'fence-conflict' }, fence: { mode: 'open', epoch: 0 } });
    expect(refused.json.error.message).toContain('expected epoch 0 fenced');
    const malformed: unknown[] = [
      { ...change(0, 'open'), leaseSeconds: 0 },
      { ...change(0, 'open'), leaseSeconds: 3601 },
      { ...change(0, 'open'), leaseSeconds: 1.5 },
      { ...change(0, 'open'), leaseSeconds: '60' },
      { leaseSeconds: 60 },
      { ...change(0, 'open') },
      { ...change(0, 'closed'), leaseSeconds: 60 },
      { expected: { epoch: 0, mode: 'open' }, by: '', leaseSeconds: 60 },
      { ...change(0, 'open'), leaseSeconds: 60, lease: 60 },
    ];
    for (const bad of malformed) {
      const answer = await post('/admin/fence', bad);
      expect(answer.status, JSON.stringify(bad)).toBe(400);
      expect(answer.json.error.code).toBe('invalid-body');
    }
    expect((await post('/admin/fence')).json.error.code).toBe('unsupported-media-type');
    expect((await call(target, 'GET', '/admin/stats', { token: admin })).json).toMatchObject({
      fenced: false,
      fence: { mode: 'open', epoch: 0 },
    });

    const fenced = (await post('/admin/fence', { ...change(0, 'open'), leaseSeconds: 120 })).json as FenceResult;
    expect(fenced).toMatchObject({ fenced: true, mode: 'fenced', epoch: 1, leaseSeconds: 120, by: 'switch-1/a' });
    expect(fenced.leaseLeftMs).toBeGreaterThan(119_000);
    const renewed = (await post('/admin/fence', { ...change(1, 'fenced'), leaseSeconds: 600 })).json as FenceResult;
    expect(renewed).toMatchObject({ epoch: 2, leaseSeconds: 600 });
    // A late renewal still expecting epoch 1, from another step: refused, nothing changed.
    const late = await post('/admin/fence', { ...change(1, 'fenced', 'switch-1/b'), leaseSeconds: 5 });
    expect(late.status).toBe(409);
    expect(late.json.fence).toMatchObject({ epoch: 2, leaseSeconds: 600 });
    const stats = (await call(target, 'GET', '/admin/stats', { token: admin })).json as NodeStats;
    expect(stats).toMatchObject({ fenced: true, fence: { mode: 'fenced', epoch: 2 } });

    for (const to of [
      'ftp://127.0.0.1:9000',
      'not a url',
      'http://user:pw@127.0.0.1:9000',
      'http://127.0.0.1:9000/?x=1',
    ]) {
      const answer = await post('/admin/forward', { ...change(2, 'fenced'), to, cursor: fenced.cursor });
      expect(answer.status).toBe(400);
      expect(answer.json.error.code).toBe('invalid-body');
    }
    expect(
      (await post('/admin/forward', { ...change(2, 'fenced'), to: 'https://new.example:8443', cursor: 'not-a-cursor' }))
        .json.error.message,
    ).toMatch(/^cursor:/);
    const forwarding = await post('/admin/forward', {
      ...change(2, 'fenced'),
      to: 'https://new.example:8443',
      cursor: fenced.cursor,
    });
    expect(forwarding.json).toEqual({
      fenced: true,
      mode: 'forwarding',
      epoch: 3,
      forwardTo: 'https://new.example:8443',
      by: 'switch-1/a',
      cursor: fenced.cursor,
    });
    expect((await post('/admin/fence', { ...change(3, 'forwarding'), leaseSeconds: 5 })).status).toBe(409);
    expect((await call(target, 'GET', '/admin/stats', { token: admin })).json.fence).toEqual({
      mode: 'forwarding',
      epoch: 3,
      forwardTo: 'https://new.example:8443',
    });
    expect((await post('/admin/unfence', change(3, 'forwarding', 'rollback-1/a'))).json).toEqual({
      fenced: false,
      mode: 'open',
      epoch: 4,
      by: 'rollback-1/a',
      cursor: fenced.cursor,
    });
  });
});

describe('settled', () => {
  it('answers at once on SQLite, whose writes check the fence and store in one transaction, and names a bad wait', async () => {
    const target = await node({ nodeId: 'node-s' });
    const admin = await target.token('ops', true);
    const settled = (query: string) => call(target, 'GET', `/admin/settled${query}`, { token: admin });
    expect((await settled('?within_ms=10000')).json).toEqual({ node: 'node-s', unresolved: 0 });
    expect((await settled('')).json).toEqual({ node: 'node-s', unresolved: 0 });
    for (const bad of ['?within_ms=10001', '?within_ms=-1', '?within_ms=soon']) {
      const refused = await settled(bad);
      expect([refused.status, refused.json.error.code]).toEqual([400, 'invalid-within']);
      expect(refused.json.error.message).toMatch(/within_ms must be an integer from 0 to 10000, got "/);
    }
  });
});

describe('drain', () => {
  it('sends reconnect to every stream, answers readyz and new streams 503, and keeps serving requests', async () => {
    const target = await node();
    const admin = await target.token('ops', true);
    const alice = await target.token('alice');
    const streams = await Promise.all([openStream(target, alice), openStream(target, await target.token('bob'))]);
    await expect
      .poll(async () => ((await call(target, 'GET', '/admin/stats', { token: admin })).json as NodeStats).openStreams)
      .toBe(2);

    const drained = await call(target, 'POST', '/admin/drain', { token: admin });
    expect(drained.json).toEqual({ draining: true, closedStreams: 2 });
    for (const stream of streams) {
      const last = await stream.next((m) => m.type === 'reconnect');
      expect(last.reason).toBe('draining');
      await stream.ended;
    }
    const ready = await call(target, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.error.code).toBe('draining');
    const refused = await call(target, 'GET', '/v1/stream', { token: alice });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('draining');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(
      (await call(target, 'PUT', '/v1/items/d1', { token: alice, body: { type: 'place', data: {} } })).status,
    ).toBe(201);
    const stats = (await call(target, 'GET', '/admin/stats', { token: admin })).json as NodeStats;
    expect(stats).toMatchObject({ node: 'test-node', draining: true, fenced: false, openStreams: 0, items: 1 });
    expect(stats.requestRate).toBeGreaterThan(0);
    expect(stats.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('undrain reopens only the node that answers it: readyz 200 and a stream opens again', async () => {
    const dir = tempDir('navcloud-');
    // Writes refused at once rather than held (server/flip/hold.ts), so the refusal itself is checked.
    const a = await node({ heartbeatMs: 100, holdMs: 0 }, dir);
    const b = await node({ heartbeatMs: 100, holdMs: 0 }, { path: dir.path, remove: () => undefined });
    const admin = await a.token('ops', true);
    const alice = await a.token('alice');
    for (const target of [a, b])
      expect((await call(target, 'POST', '/admin/drain', { token: admin })).status).toBe(200);
    for (const target of [a, b]) {
      expect((await call(target, 'GET', '/readyz')).status).toBe(503);
      expect((await call(target, 'GET', '/v1/stream', { token: alice })).json.error.code).toBe('draining');
    }

    const undrained = await call(a, 'POST', '/admin/undrain', { token: admin });
    expect(undrained.status).toBe(200);
    expect(undrained.json as DrainResult).toEqual({ draining: false, closedStreams: 0 });
    expect((await call(a, 'GET', '/readyz')).json).toEqual({ status: 'ready', node: 'test-node' });
    const stream = await openStream(a, alice);
    expect(stream.status).toBe(200);
    await stream.next((m) => m.type === 'heartbeat');
    const put = await call(a, 'PUT', '/v1/items/u1', { token: alice, body: { type: 'trip', data: {} } });
    expect((await stream.next((m) => m.type === 'change' && m.id === 'u1')).rev).toBe(put.json.rev);
    expect((await call(a, 'GET', '/admin/stats', { token: admin })).json as NodeStats).toMatchObject({
      draining: false,
      openStreams: 1,
    });
    // The other node was not told: it still refuses.
    expect((await call(b, 'GET', '/readyz')).json.error.code).toBe('draining');
    expect(((await call(b, 'GET', '/admin/stats', { token: admin })).json as NodeStats).draining).toBe(true);
    // Undoing a drain twice, or on a node that never drained, changes nothing.
    expect((await call(a, 'POST', '/admin/undrain', { token: admin })).json).toEqual({
      draining: false,
      closedStreams: 0,
    });
    expect((await call(a, 'GET', '/readyz')).status).toBe(200);
    expect((await call(a, 'POST', '/admin/undrain', { token: alice })).status).toBe(403);
    stream.close();
  });

  it('refuses an undrain that reaches a node already shutting down', async () => {
    const target = await startTestNode();
    const admin = await target.token('ops', true);
    // The request head arrives in two parts: shutdown begins between them, on a connection it cannot close as idle.
    const socket = connect(target.port, '127.0.0.1');
    await once(socket, 'connect');
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    const ended = once(socket, 'close');
    socket.write(`POST /admin/undrain HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${admin}\r\n`);
    await new Promise((wait) => setTimeout(wait, 100));
    const stopped = target.stop();
    socket.write('content-length: 0\r\n\r\n');
    await ended;
    await stopped;
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(JSON.parse(body!).error.code).toBe('shutting-down');
  });
});

describe("import with the export's end line", () => {
  it("numbers every later write above the end line's cursor, and refuses an end line that is not one", async () => {
    const target = await node();
    const admin = await target.token('ops', true);
    const alice = await target.token('alice');
    const line = {
      kind: 'item',
      id: 'e1',
      owner: 'alice',
      type: 'trip',
      rev: '1-aaaaaaaaaaaa',
      deleted: false,
      data: {},
      shares: [],
      cursor: encodeCursor(3),
      updatedAt: '2026-12-01T10:00:00.000Z',
    };
    // The source's cursor is past its last item: it took numbers 4 to 9 and stored none of them.
    const end = { kind: 'end', cursor: encodeCursor(9), items: 1 };
    const imported = await call(target, 'POST', '/admin/import', {
      token: admin,
      raw: ndjson([line, end]),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(imported.json).toEqual({ applied: 1, skipped: 0, cursor: encodeCursor(9) });
    await call(target, 'PUT', '/v1/items/e2', { token: alice, body: { type: 'trip', data: {} } });
    const copyBack = await exportAll(target, admin, encodeCursor(9));
    expect(copyBack.filter((l) => l.kind === 'item').map((l) => l.kind === 'item' && l.id)).toEqual(['e2']);

    const badEnd = await call(target, 'POST', '/admin/import', {
      token: admin,
      raw: ndjson([
        { ...line, id: 'e3' },
        { ...end, cursor: 'nope' },
      ]),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(badEnd.status).toBe(400);
    expect(badEnd.json.error.message).toMatch(
      /line 2: the end line's cursor is not a cursor of this service; lines 1-1 were imported/,
    );
    await target.stop();
  });
});
