import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironment, type Environment } from '../../src/config/environment.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { createRootLogger } from '../../src/logging.ts';
import { switchUnderLoad } from '../../src/local/switch-under-load.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';

// The demo's checks (issue 5) with a smaller client load: a switch of dev and back, under client load through DNS.
describe('the demo: two switches under synthetic client load', () => {
  let t: TestEnvironment;
  let env: Environment;
  const log = createRootLogger('demo-test', { level: 'warn' });

  beforeAll(async () => {
    env = await loadEnvironment('dev');
    t = await startTestEnvironment(500);
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
    expect(left?.leftoverStacks ?? []).toEqual([]);
  });

  it('switches dev to green and back to blue with no failed request and no lost write', async () => {
    const ports = createPorts(env, log, t.localEnvironment.state);
    const seeded = (await ports.dns.current(env.recordName))!.stack;

    const first = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      load: { users: 6, writesPerSecond: 12 },
      log,
    });
    expect(first.report.outcome).toBe('switched');
    expect(first.report.from).toEqual({ stack: seeded, colour: 'blue' });
    expect(first.report.to?.colour).toBe('green');
    expect(first.report.backup?.items).toBeGreaterThanOrEqual(500);
    expect(first.clients.writesAcknowledged).toBeGreaterThan(0);
    expect(first.clients.streams).toBeGreaterThanOrEqual(6);
    expect(first.clients.failedRequests).toBe(0);
    expect(first.clients.writesLost).toBe(0);
    expect(first.clients.missedEvents).toBe(0);
    expect((await ports.dns.current(env.recordName))!.stack).toBe(first.report.to!.stack);

    const second = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      load: { users: 6, writesPerSecond: 12 },
      log,
    });
    expect(second.report.outcome).toBe('switched');
    expect(second.report.from).toEqual(first.report.to);
    expect(second.report.to?.colour).toBe('blue');
    expect(second.clients.failedRequests).toBe(0);
    expect(second.clients.writesLost).toBe(0);
    expect(second.clients.missedEvents).toBe(0);

    // keepStacks 0: the drained stacks are gone, only the live one runs.
    expect((await ports.stacks.list(env.name)).map((s) => s.name)).toEqual([second.report.to!.stack]);
  }, 300_000);
});
