import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { startClientLoad, type ClientLoad, type ClientLoadOptions } from '../../src/load/client-load.ts';
import { freePort } from '../../src/net.ts';
import type { ClientFigures } from '../../src/switch/contract.ts';
import { JWT_SECRET, startTestStack, type TestStack } from '../navcloud/stack.ts';
import { testLogger } from '../support/logger.ts';
import { cleanupsAfterEach, loopbackAddresses } from '../support/loopback-servers.ts';
import { startTestDns, type TestDns } from './dns.ts';
import { startAnswerMangler, startStreamMangler } from './mangler.ts';
import { checkLinearizability } from '../../src/load/history.ts';
import { fenceAsIs, unfenceAsIs } from '../support/fence.ts';

const RECORD = 'api.load.navcloud.test';
const HEARTBEAT_MS = 200;

const cleanups = cleanupsAfterEach();

async function setUp(nodes: number): Promise<{ stack: TestStack; dns: TestDns; hosts: string[]; port: number }> {
  const hosts = loopbackAddresses(nodes + 1);
  const port = await freePort(hosts[0]);
  const stack = await startTestStack({
    hosts: hosts.slice(0, nodes),
    port,
    heartbeatMs: HEARTBEAT_MS,
    retryAfterSeconds: 1,
  });
  cleanups.push(() => stack.close());
  const dns = await startTestDns(RECORD, [hosts[0]!], 1);
  cleanups.push(() => dns.close());
  return { stack, dns, hosts, port };
}

function loadOptions(dns: TestDns, port: number, overrides: Partial<ClientLoadOptions> = {}): ClientLoadOptions {
  return {
    recordName: RECORD,
    resolver: { host: dns.host, port: dns.port },
    servicePort: port,
    jwtSecret: JWT_SECRET,
    users: 4,
    writesPerSecond: 20,
    maxDurationMs: 20_000,
    heartbeatMs: 500,
    settleMs: 3000,
    log: testLogger,
    ...overrides,
  };
}

async function started(options: ClientLoadOptions): Promise<ClientLoad> {
  const load = await startClientLoad(options);
  cleanups.push(() => load.stop());
  return load;
}

/** Polls the running figures until `condition` holds; fails the test after `ms`. */
async function until(
  load: ClientLoad,
  condition: (f: ClientFigures) => boolean,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition(load.figures())) {
    if (Date.now() > deadline)
      throw new Error(`load did not reach: ${what} within ${ms} ms: ${JSON.stringify(load.figures())}`);
    await sleep(50);
  }
}

describe('client load', () => {
  it('writes, reads and streams through the public name with every write acknowledged, delivered once and stored', async () => {
    const { stack, dns, port } = await setUp(1);
    const load = await started(loadOptions(dns, port));
    await until(load, (f) => f.writesAcknowledged >= 16, 10_000, '16 acknowledged writes');
    const figures = await load.stop();
    expect(figures).toMatchObject({
      failedRequests: 0,
      streams: 4,
      duplicateEvents: 0,
      missedEvents: 0,
      writesLost: 0,
    });
    // Every write is followed by one read.
    expect(figures.requests).toBeGreaterThanOrEqual(2 * figures.writesAcknowledged - 4);
    expect(dns.queries).toBeGreaterThan(0);
    const verified = await load.verify(stack.outputs.endpoint);
    expect(verified).toEqual({ ...figures, writesLost: 0 });
  });

  it('follows a repointed record and a drain, retrying the fence, with nothing failed, lost, missed or repeated', async () => {
    const { stack, dns, hosts, port } = await setUp(2);
    const [oldNode, newNode] = stack.outputs.nodes as [string, string];
    const admin = createAdminClient({ adminUrl: newNode, jwtSecret: JWT_SECRET });
    const load = await started(loadOptions(dns, port, { users: 6, writesPerSecond: 30 }));
    await until(load, (f) => f.writesAcknowledged >= 10, 10_000, '10 acknowledged writes');

    // A switch as the clients live it: writes fenced, the record moved, the old node drained.
    await fenceAsIs(admin, 60);
    dns.point([hosts[1]!]);
    await sleep(400);
    await unfenceAsIs(admin);
    // Once the record's TTL has passed, requests go to the new node before any drain says so.
    const deadline = Date.now() + 5000;
    while ((await admin.stats(newNode)).requestRate === 0) {
      if (Date.now() > deadline) throw new Error('no request reached the new node after the TTL');
      await sleep(100);
    }
    await admin.drain(oldNode);
    const movedAt = load.figures().writesAcknowledged;
    await until(
      load,
      (f) => f.streamsReconnected >= 6 && f.writesAcknowledged >= movedAt + 10,
      10_000,
      'every stream reopened and 10 more writes',
    );
    expect((await admin.stats(oldNode)).openStreams).toBe(0);
    expect((await admin.stats(newNode)).openStreams).toBe(6);

    const figures = await load.stop();
    expect(figures).toMatchObject({ failedRequests: 0, streams: 6, duplicateEvents: 0, missedEvents: 0 });
    expect(figures.maxReconnectMs).toBeGreaterThan(0);
    expect(await load.verify(newNode)).toMatchObject({ writesLost: 0 });
  });

  it('re-resolves and retries when the address it uses stops answering', async () => {
    const { stack, dns, hosts, port } = await setUp(2);
    // Clients first reach node 1 through a middlebox on a third address, which then dies.
    const doomed = await startStreamMangler(hosts[2]!, port, stack.outputs.nodes[0]!, (line) => [line]);
    cleanups.push(() => doomed.close());
    dns.point([hosts[2]!]);
    const load = await started(loadOptions(dns, port));
    await until(load, (f) => f.writesAcknowledged >= 8, 10_000, '8 acknowledged writes');
    dns.point([hosts[1]!]);
    await doomed.close();
    const before = load.figures().writesAcknowledged;
    await until(
      load,
      (f) => f.streamsReconnected >= 4 && f.writesAcknowledged >= before + 8,
      10_000,
      'every stream reopened and 8 more writes',
    );
    const figures = await load.stop();
    expect(figures).toMatchObject({ failedRequests: 0, streams: 4, duplicateEvents: 0, missedEvents: 0 });
    expect(await load.verify(stack.outputs.nodes[1]!)).toMatchObject({ writesLost: 0 });
  });

  it('counts acknowledged writes missing from a stack as lost', async () => {
    const { dns, port } = await setUp(1);
    const load = await started(loadOptions(dns, port, { users: 2 }));
    await until(load, (f) => f.writesAcknowledged >= 4, 10_000, '4 acknowledged writes');
    const figures = await load.stop();
    const elsewhere = await startTestStack({ nodes: 1 });
    cleanups.push(() => elsewhere.close());
    expect(await load.verify(elsewhere.outputs.endpoint)).toMatchObject({ writesLost: figures.writesAcknowledged });
  });

  it('records a write answered with a store failure as one that may have landed, so a read of it stays linearizable', async () => {
    const { stack, dns, hosts, port } = await setUp(1);
    const failing = await startAnswerMangler(hosts[1]!, port, stack.outputs.endpoint);
    cleanups.push(() => failing.close());
    dns.point([hosts[1]!]);
    const plain = await started(loadOptions(dns, port, { users: 2, retrying: false }));
    await until(
      plain,
      (f) => f.failedRequests >= 4 && f.writesAcknowledged >= 4,
      10_000,
      '4 writes failed and 4 acknowledged',
    );
    await plain.stop();
    // Half the writes the node applied were answered 503: each is in the history as unknown, and the reads that saw them are legal.
    expect(
      plain.history.operations.filter((op) => op.kind === 'write' && op.return === null).length,
    ).toBeGreaterThanOrEqual(2);
    expect(await checkLinearizability(plain.history)).toMatchObject({ ok: true, result: 'Ok' });
  });

  it('counts change events delivered twice, and acknowledged writes never delivered', async () => {
    const { stack, dns, hosts, port } = await setUp(1);
    const doubling = await startStreamMangler(hosts[1]!, port, stack.outputs.endpoint, (line) =>
      line.includes('"type":"change"') ? [line, line] : [line],
    );
    cleanups.push(() => doubling.close());
    dns.point([hosts[1]!]);
    const doubled = await started(loadOptions(dns, port, { users: 2 }));
    await until(doubled, (f) => f.writesAcknowledged >= 4, 10_000, '4 acknowledged writes');
    const doubledFigures = await doubled.stop();
    expect(doubledFigures.duplicateEvents).toBeGreaterThanOrEqual(doubledFigures.writesAcknowledged);
    expect(doubledFigures.missedEvents).toBe(0);
    await doubling.close();

    const dropping = await startStreamMangler(hosts[1]!, port, stack.outputs.endpoint, (line) =>
      line.includes('"type":"change"') ? [] : [line],
    );
    cleanups.push(() => dropping.close());
    const starved = await started(loadOptions(dns, port, { users: 2, settleMs: 300 }));
    await until(starved, (f) => f.writesAcknowledged >= 4, 10_000, '4 acknowledged writes');
    const starvedFigures = await starved.stop();
    expect(starvedFigures.missedEvents).toBe(starvedFigures.writesAcknowledged);
    expect(starvedFigures.duplicateEvents).toBe(0);
  });

  it('refuses options that would not bound the load', async () => {
    await expect(
      startClientLoad({ ...loadOptions({ host: '127.0.0.1', port: 1 } as TestDns, 1), writesPerSecond: 0 }),
    ).rejects.toThrow(/writesPerSecond must be a positive number, got 0/);
    await expect(
      startClientLoad({ ...loadOptions({ host: '127.0.0.1', port: 1 } as TestDns, 1), maxDurationMs: Number.NaN }),
    ).rejects.toThrow(/maxDurationMs/);
  });
});
