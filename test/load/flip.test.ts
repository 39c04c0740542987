/**
 * Synthetic clients through a flip on real sockets: retrying and non-retrying clients beside
 * each other, their history checked by the Porcupine checker (.tools/bin/linearizability).
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startClientLoad, type ClientLoad, type ClientLoadOptions } from '../../src/load/client-load.ts';
import { checkLinearizability, History } from '../../src/load/history.ts';
import { createAdminClient, type StackAdmin } from '../../src/navcloud/admin-client.ts';
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { freePort } from '../../src/net.ts';
import { JWT_SECRET, startTestStack, type TestStack } from '../navcloud/stack.ts';
import { testLogger } from '../support/logger.ts';
import { cleanupsAfterEach, loopbackAddresses } from '../support/loopback-servers.ts';
import { startTestDns, type TestDns } from './dns.ts';
import { fenceAsIs, forwardAsIs, unfenceAsIs } from '../support/fence.ts';

const RECORD = 'api.flip.navcloud.test';

const cleanups = cleanupsAfterEach();

async function twoStacks(holdMs?: number): Promise<{
  old: TestStack;
  fresh: TestStack;
  dns: TestDns;
  hosts: string[];
  port: number;
  oldAdmin: StackAdmin;
  newAdmin: StackAdmin;
}> {
  const hosts = loopbackAddresses(2);
  const port = await freePort(hosts[0]);
  const old = await startTestStack({ hosts: [hosts[0]!], port, heartbeatMs: 200, holdMs });
  cleanups.push(() => old.close());
  const fresh = await startTestStack({ hosts: [hosts[1]!], port, heartbeatMs: 200, holdMs });
  cleanups.push(() => fresh.close());
  const dns = await startTestDns(RECORD, [hosts[0]!], 1);
  cleanups.push(() => dns.close());
  return {
    old,
    fresh,
    dns,
    hosts,
    port,
    oldAdmin: createAdminClient({ adminUrl: old.outputs.adminUrl, jwtSecret: JWT_SECRET }),
    newAdmin: createAdminClient({ adminUrl: fresh.outputs.adminUrl, jwtSecret: JWT_SECRET }),
  };
}

async function startLoad(dns: TestDns, port: number, overrides: Partial<ClientLoadOptions>): Promise<ClientLoad> {
  const started = await startClientLoad({
    recordName: RECORD,
    resolver: { host: dns.host, port: dns.port },
    servicePort: port,
    jwtSecret: JWT_SECRET,
    users: 4,
    writesPerSecond: 40,
    maxDurationMs: 30_000,
    heartbeatMs: 500,
    settleMs: 3000,
    log: testLogger,
    ...overrides,
  });
  cleanups.push(() => started.stop());
  return started;
}

async function copy(from: StackAdmin, to: StackAdmin, since?: string): Promise<string> {
  const lines: ExportItemLine[] = [];
  let cursor = '';
  for await (const line of from.exportSince(since)) {
    if (line.kind === 'item') lines.push(line);
    else cursor = line.cursor;
  }
  if (lines.length) await to.importLines(lines);
  return cursor;
}

describe('clients through a flip', () => {
  it('non-retrying clients see no error while the old stack holds, then forwards; the history is linearizable', async () => {
    const { old, fresh, dns, hosts, port, oldAdmin, newAdmin } = await twoStacks();
    const history = new History();
    const retrying = await startLoad(dns, port, { history, userPrefix: 'retrying' });
    const plain = await startLoad(dns, port, { history, retrying: false, userPrefix: 'plain' });
    await sleep(1_000);

    // The switch's flip: catch up, fence, last delta, forward, then DNS.
    const caughtUp = await copy(oldAdmin, newAdmin);
    const fencedAt = Date.now();
    await fenceAsIs(oldAdmin, 30);
    await sleep(150); // a last delta that takes a while: writes pile up in the hold
    await copy(oldAdmin, newAdmin, caughtUp);
    await forwardAsIs(oldAdmin, fresh.outputs.endpoint);
    const forwardingAt = Date.now();
    dns.point([hosts[1]!]);
    await sleep(2_500); // TTL 1 s: every client resolves the new stack

    const [retried, direct] = [await retrying.stop(), await plain.stop()];
    const verified = [await retrying.verify(fresh.outputs.endpoint), await plain.verify(fresh.outputs.endpoint)];
    console.log(
      `flip: fence to forwarding ${forwardingAt - fencedAt} ms; longest write pause: retrying ${retried.maxWritePauseMs} ms, non-retrying ${direct.maxWritePauseMs} ms`,
    );
    expect(direct).toMatchObject({ failedRequests: 0, duplicateEvents: 0, missedEvents: 0 });
    expect(retried).toMatchObject({ failedRequests: 0, duplicateEvents: 0, missedEvents: 0 });
    expect(verified.map((f) => f.writesLost)).toEqual([0, 0]);
    expect(direct.writesAcknowledged).toBeGreaterThan(20);
    // Writes were held across the flip: some client waited at least the fence's duration.
    expect(Math.max(retried.maxWritePauseMs ?? 0, direct.maxWritePauseMs ?? 0)).toBeGreaterThanOrEqual(150);
    const metrics = await (await fetch(`${old.outputs.endpoint}/metrics`)).text();
    expect(metrics).toMatch(/navcloud_requests_held_total\{outcome="forwarded"\} [1-9]/);

    const verdict = await checkLinearizability(history);
    expect(verdict).toMatchObject({ ok: true, result: 'Ok', violations: [] });
    expect(verdict.operations).toBe(history.operations.length);
    expect(verdict.keys).toBe(4 * 3 * 2);
  });

  it('counts every refused write of a non-retrying client, where a retrying one waits it out', async () => {
    const { dns, port, oldAdmin } = await twoStacks(0);
    const history = new History();
    const retrying = await startLoad(dns, port, { history, userPrefix: 'retrying', users: 2, writesPerSecond: 20 });
    const plain = await startLoad(dns, port, {
      history,
      retrying: false,
      userPrefix: 'plain',
      users: 2,
      writesPerSecond: 20,
    });
    await sleep(500);
    await fenceAsIs(oldAdmin, 30);
    await sleep(600);
    await unfenceAsIs(oldAdmin);
    await sleep(1_500);
    const [retried, direct] = [await retrying.stop(), await plain.stop()];
    expect(retried.failedRequests).toBe(0);
    expect(direct.failedRequests).toBeGreaterThan(0);
    // Refused writes did not happen: the history of both stays linearizable.
    expect(await checkLinearizability(history)).toMatchObject({ ok: true });
  });
});

describe('checkLinearizability', () => {
  it('names an item whose read missed an acknowledged write, and accepts an unanswered write either way', async () => {
    const history = new History();
    const [a, b] = [history.newClient(), history.newClient()];
    history.record({ client: a, key: 'stale', kind: 'write', value: 1, call: 0, return: 10 });
    history.record({ client: b, key: 'stale', kind: 'read', value: 0, call: 20, return: 30 });
    history.record({ client: a, key: 'maybe', kind: 'write', value: 1, call: 0, return: null });
    history.record({ client: b, key: 'maybe', kind: 'read', value: 0, call: 20, return: 30 });
    history.record({ client: b, key: 'maybe', kind: 'read', value: 1, call: 40, return: 50 });
    expect(await checkLinearizability(history)).toMatchObject({
      ok: false,
      result: 'Illegal',
      operations: 5,
      keys: 2,
      violations: ['stale'],
    });
  });
});
