/**
 * The orchestrator's admin client against real sync nodes (SQLite stores on loopback), and the
 * restore and catch-up activities driving it: export, batched import, fence, drain, undrain, stats,
 * a restore resumed from a heartbeat checkpoint, and how failures are classified.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { CloudError } from '../../src/cloud/errors.ts';
import { createAdminClient, FenceConflictError, type StackAdmin } from '../../src/navcloud/admin-client.ts';
import type { ExportItemLine, ExportLine } from '../../src/navcloud/protocol.ts';
import { createActivities } from '../../activities/index.ts';
import type { CopyResult } from '../../activities/types.ts';
import { fakeEnvironment, FakeWorld } from '../support/fake-ports.ts';
import { call, SECRET, startTestNode, type TestNode } from '../server/helpers.ts';
import { freePort } from '../../src/net.ts';
import { tempDir } from '../support/temp-dir.ts';

let source: TestNode;
let target: TestNode;
let sourceAdmin: StackAdmin;
let targetAdmin: StackAdmin;

async function writeItems(node: TestNode, count: number, prefix: string): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const answer = await call(node, 'PUT', `/v1/items/${prefix}-${i}`, {
      token: await node.token('user-1'),
      body: { type: 'trip', data: { i } },
    });
    expect(answer.status).toBe(201);
  }
}

async function collect(lines: AsyncIterable<ExportLine>): Promise<ExportLine[]> {
  const all: ExportLine[] = [];
  for await (const line of lines) all.push(line);
  return all;
}

beforeAll(async () => {
  // Writes on the fenced source are refused at once rather than held, so the refusal is checked.
  source = await startTestNode({ nodeId: 'source', holdMs: 0 });
  target = await startTestNode({ nodeId: 'target' });
  sourceAdmin = createAdminClient({ adminUrl: source.url, jwtSecret: SECRET });
  targetAdmin = createAdminClient({ adminUrl: target.url, jwtSecret: SECRET });
  await writeItems(source, 25, 'trip');
});
afterAll(async () => {
  await source?.stop();
  await target?.stop();
});

describe('admin client against real sync nodes', () => {
  it('exports every item then the end line, and imports them idempotently', async () => {
    const lines = await collect(sourceAdmin.exportSince(undefined));
    const items = lines.filter((l): l is ExportItemLine => l.kind === 'item');
    expect(items).toHaveLength(25);
    expect(lines.at(-1)).toMatchObject({ kind: 'end', items: 25 });
    const first = await targetAdmin.importLines(items);
    expect(first).toMatchObject({ applied: 25, skipped: 0 });
    const again = await targetAdmin.importLines(items);
    expect(again).toMatchObject({ applied: 0, skipped: 25 });
    expect(again.cursor).toBe((lines.at(-1) as { cursor: string }).cursor);
  });

  it('exports only what follows a cursor', async () => {
    const { cursor } = await sourceAdmin.stats(source.url);
    await writeItems(source, 3, 'later');
    const lines = await collect(sourceAdmin.exportSince(cursor));
    expect(
      lines
        .filter((l) => l.kind === 'item')
        .map((l) => (l as ExportItemLine).id)
        .sort(),
    ).toEqual(['later-0', 'later-1', 'later-2']);
  });

  it('fences with a lease (writes refused, cursor returned), forwards, unfences, drains, undrains and reports stats', async () => {
    const open = await sourceAdmin.fenceState();
    const fenced = await sourceAdmin.fence({
      expected: { epoch: open.epoch, mode: 'open' },
      by: 'test',
      leaseSeconds: 30,
    });
    expect(fenced).toMatchObject({ fenced: true, mode: 'fenced', epoch: open.epoch + 1, leaseSeconds: 30 });
    const refused = await call(source, 'PUT', '/v1/items/while-fenced', {
      token: await source.token('user-1'),
      body: { type: 'trip', data: {} },
    });
    expect(refused.status).toBe(503);
    expect(await sourceAdmin.stats(source.url)).toMatchObject({
      fenced: true,
      fence: { mode: 'fenced', epoch: fenced.epoch },
    });
    const forwarding = await sourceAdmin.forward({
      expected: { epoch: fenced.epoch, mode: 'fenced' },
      by: 'test',
      cursor: fenced.cursor,
      to: 'http://127.0.0.1:9/',
    });
    expect(forwarding).toEqual({
      fenced: true,
      mode: 'forwarding',
      epoch: fenced.epoch + 1,
      forwardTo: 'http://127.0.0.1:9',
      by: 'test',
      cursor: fenced.cursor,
    });
    const unfenced = await sourceAdmin.unfence({
      expected: { epoch: forwarding.epoch, mode: 'forwarding' },
      by: 'test',
    });
    expect(unfenced).toEqual({
      fenced: false,
      mode: 'open',
      epoch: forwarding.epoch + 1,
      by: 'test',
      cursor: fenced.cursor,
    });
    // A repeated forward from another step, on the epoch it saw: a conflict carrying the fence as it is.
    const late = await sourceAdmin
      .forward({
        expected: { epoch: fenced.epoch, mode: 'fenced' },
        by: 'other',
        cursor: fenced.cursor,
        to: 'http://127.0.0.1:9',
      })
      .catch((e: unknown) => e);
    expect(late).toBeInstanceOf(FenceConflictError);
    expect(late).toMatchObject({ retryable: false, code: 'Http409', current: { mode: 'open', epoch: unfenced.epoch } });
    await sourceAdmin.drain(source.url);
    const stats = await sourceAdmin.stats(source.url);
    expect(stats).toMatchObject({ node: 'source', draining: true, fenced: false, openStreams: 0 });
    expect(await sourceAdmin.healthy(source.url)).toBe(true);
    expect((await call(source, 'GET', '/readyz')).status).toBe(503);
    await sourceAdmin.undrain(source.url);
    expect((await sourceAdmin.stats(source.url)).draining).toBe(false);
    expect((await call(source, 'GET', '/readyz')).status).toBe(200);
  });

  it("refuses a wrong secret for good, naming the URL and the server's message", async () => {
    const wrong = createAdminClient({ adminUrl: source.url, jwtSecret: 'not-the-secret' });
    const error = await wrong
      .fence({ expected: { epoch: 0, mode: 'open' }, by: 'test', leaseSeconds: 60 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CloudError);
    expect(error).toMatchObject({ retryable: false, code: 'Http401' });
    expect((error as Error).message).toContain(`POST ${source.url}/admin/fence answered 401`);
  });

  it('treats a closed port as retryable and an unhealthy one as not healthy', async () => {
    const port = await freePort();
    const nowhere = createAdminClient({
      adminUrl: `http://127.0.0.1:${port}`,
      jwtSecret: SECRET,
      requestTimeoutMs: 2_000,
    });
    await expect(nowhere.stats(`http://127.0.0.1:${port}`)).rejects.toMatchObject({
      retryable: true,
      code: 'Unreachable',
    });
    expect(await nowhere.healthy(`http://127.0.0.1:${port}`)).toBe(false);
  });
});

describe('admin client on answers a healthy node never gives', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((request, response) => {
      if (request.url?.startsWith('/admin/export')) {
        // A cut export: item lines, then the connection ends without the end line.
        response.writeHead(200, { 'content-type': 'application/x-ndjson' });
        response.end(
          '{"kind":"item","id":"a","owner":"u","type":"trip","rev":"1-a","deleted":false,"data":{},"shares":[],"cursor":"x","updatedAt":"2026-01-01T00:00:00Z"}\n',
        );
        return;
      }
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      response.end(JSON.stringify({ error: { code: 'store-unavailable', message: 'riak quorum not reached' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("retries a 503 and keeps the server's message", async () => {
    const admin = createAdminClient({ adminUrl: url, jwtSecret: SECRET });
    await expect(admin.importLines([])).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining('503: store-unavailable: riak quorum not reached'),
    });
  });

  it('calls an export without its end line truncated and retryable', async () => {
    const admin = createAdminClient({ adminUrl: url, jwtSecret: SECRET });
    await expect(collect(admin.exportSince(undefined))).rejects.toMatchObject({
      retryable: true,
      code: 'ExportTruncated',
    });
  });
});

describe('restore and catch-up activities over the admin client', () => {
  function activitiesFor(world: FakeWorld) {
    return createActivities({
      ...world.deps(tempDir('reports-').path),
      admin: (env, adminUrl) => createAdminClient({ adminUrl, jwtSecret: env.jwtSecret }),
      loadEnvironment: async (name) => fakeEnvironment(name, { jwtSecret: SECRET }),
    });
  }

  it('resumes a restore from its heartbeat checkpoint and checks the counts against the manifest', async () => {
    const world = new FakeWorld();
    const lines = await collect(sourceAdmin.exportSince(undefined));
    world.state.backups.push({
      manifest: {
        key: 'b1',
        dataKey: 'b1.gz',
        env: 'test',
        sourceStack: 'source',
        createdAt: '2026-01-01T00:00:00Z',
        items: lines.length - 1,
        sha256: 'x',
        cursor: (lines.at(-1) as { cursor: string }).cursor,
        bytes: 1,
      },
      lines: lines.map((l) => JSON.stringify(l)),
    });
    const fresh = await startTestNode({ nodeId: 'fresh' });
    try {
      const heartbeats: unknown[] = [];
      const env = new MockActivityEnvironment({ heartbeatDetails: { linesDone: 20, total: lines.length - 1 } });
      env.on('heartbeat', (details: unknown) => heartbeats.push(details));
      const result = await env.run(activitiesFor(world).restoreBackup, {
        env: 'test',
        backupKey: 'b1',
        adminUrl: fresh.url,
      });
      expect(result).toMatchObject({ items: lines.length - 1, resumedFrom: 20, applied: lines.length - 1 - 20 });
      expect(heartbeats.at(-1)).toEqual({ linesDone: lines.length - 1, total: lines.length - 1 });
      const restored = await collect(
        createAdminClient({ adminUrl: fresh.url, jwtSecret: SECRET }).exportSince(undefined),
      );
      expect(restored.at(-1)).toMatchObject({ kind: 'end', items: lines.length - 1 - 20 });

      world.state.backups[0]!.manifest.items += 1;
      const failure = await new MockActivityEnvironment()
        .run(activitiesFor(world).restoreBackup, { env: 'test', backupKey: 'b1', adminUrl: fresh.url })
        .catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'RestoreCountMismatch', nonRetryable: true });
    } finally {
      await fresh.stop();
    }
  });

  it('copies the changes since a cursor from one stack to another', async () => {
    const { cursor } = await targetAdmin.stats(target.url);
    const before = await collect(sourceAdmin.exportSince(cursor));
    const copy = (await new MockActivityEnvironment().run(activitiesFor(new FakeWorld()).copyChanges, {
      env: 'test',
      fromAdminUrl: source.url,
      toAdminUrl: target.url,
      since: cursor,
    })) as CopyResult;
    expect(copy.copied).toBe(before.length - 1);
    expect(copy.copied).toBeGreaterThan(0);
    const sourceIds = (await collect(sourceAdmin.exportSince(undefined)))
      .filter((l) => l.kind === 'item')
      .map((l) => (l as ExportItemLine).id)
      .sort();
    const targetIds = (await collect(targetAdmin.exportSince(undefined)))
      .filter((l) => l.kind === 'item')
      .map((l) => (l as ExportItemLine).id)
      .sort();
    expect(targetIds).toEqual(sourceIds);
  });
});
