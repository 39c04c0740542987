import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironment, type Environment } from '../../src/config/environment.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { createLogger } from '../../src/logging.ts';
import { switchUnderLoad } from '../../src/local/switch-under-load.ts';
import { spawnRiakEmulator } from '../support/riak-emulator.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';

// Issue 13 item 7: the whole switch (restore, catch-up, fence, verification) with every stack on
// one Riak (the emulator as a process), each stack in its own bucket, under client load.
describe('a switch of the local profile on Riak', () => {
  let riak: Awaited<ReturnType<typeof spawnRiakEmulator>>;
  let t: TestEnvironment;
  let env: Environment;
  const log = createLogger('riak-switch-test', { level: 'warn' });

  beforeAll(async () => {
    env = await loadEnvironment('dev');
    riak = await spawnRiakEmulator();
    t = await startTestEnvironment(200, { store: `riak:${riak.url}?write_deadline_ms=1000` });
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    await riak?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
    expect(left?.leftoverStacks ?? []).toEqual([]);
  });

  it('switches dev to green with no failed request and no lost write', async () => {
    const ports = createPorts(env, t.local.state);
    const seeded = (await ports.dns.current(env.recordName))!.stack;
    const run = await switchUnderLoad({ client: t.client, env, state: t.local.state, fleet: { users: 4, writesPerSecond: 10 }, log });
    expect(run.report.outcome).toBe('switched');
    expect(run.report.from).toEqual({ stack: seeded, colour: 'blue' });
    expect(run.report.backup?.items).toBeGreaterThanOrEqual(200);
    expect(run.clients.writesAcknowledged).toBeGreaterThan(0);
    expect(run.clients.failedRequests).toBe(0);
    expect(run.clients.writesLost).toBe(0);
    expect(run.clients.missedEvents).toBe(0);
  }, 300_000);
});
