import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environmentsDir, loadEnvironment, resolveSecret, type Environment } from '../../src/config/environment.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { createRootLogger } from '../../src/logging.ts';
import { switchUnderLoad } from '../../src/local/switch-under-load.ts';
import { TASK_QUEUE, rollbackWorkflowId, type RollbackReport } from '../../src/switch/contract.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { spawnRiakEmulator } from '../support/riak-emulator.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';
import { tempDir } from '../support/temp-dir.ts';

// Issue 13 item 7: the whole switch (restore, catch-up, fence, verification) and a rollback, with
// every stack on one Riak (the emulator as a process), each stack in its own bucket, under client load.
describe('a switch and a rollback of the local profile on Riak', () => {
  let riak: Awaited<ReturnType<typeof spawnRiakEmulator>>;
  let t: TestEnvironment;
  let env: Environment;
  let envDir: string;
  const log = createRootLogger('riak-switch-test', { level: 'warn' });

  beforeAll(async () => {
    // dev keeps no old stack; a rollback needs the one it switched from.
    envDir = tempDir('switchyard-riak-envs-').path;
    writeFileSync(
      join(envDir, 'dev.yaml'),
      readFileSync(join(environmentsDir, 'dev.yaml'), 'utf8').replace(/^keepStacks: 0$/m, 'keepStacks: 1'),
    );
    env = await loadEnvironment('dev', envDir);
    expect(env.keepStacks).toBe(1);
    riak = await spawnRiakEmulator();
    t = await startTestEnvironment(200, { store: `riak:${riak.url}?export_grace_ms=1000`, environmentsDir: envDir });
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    await riak?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
    expect(left?.leftoverStacks ?? []).toEqual([]);
  });

  it('switches dev to green with no failed request and no lost write, then rolls back carrying a write made on green', async () => {
    const ports = createPorts(env, log, t.localEnvironment.state);
    const seeded = (await ports.dns.current(env.recordName))!.stack;
    const run = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      load: { users: 4, writesPerSecond: 10 },
      log,
    });
    expect(run.report.outcome, run.report.reason).toBe('switched');
    expect(run.report.from).toEqual({ stack: seeded, colour: 'blue' });
    expect(run.report.backup?.items).toBeGreaterThanOrEqual(200);
    expect(run.clients.writesAcknowledged).toBeGreaterThan(0);
    expect(run.clients.failedRequests).toBe(0);
    expect(run.clients.writesLost).toBe(0);
    expect(run.clients.missedEvents).toBe(0);

    const green = (await ports.stacks.describe(run.report.to!.stack))!.outputs!;
    const auth = {
      authorization: `Bearer ${await signToken(resolveSecret(env.jwtSecret), 'rollback-user')}`,
      'content-type': 'application/json',
    };
    const put = await fetch(`${green.endpoint}/v1/items/made-on-green`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ type: 'trip', data: { on: 'green' } }),
    });
    expect(put.status).toBe(201);

    const report = (await t.client.workflow.execute('rollback', {
      workflowId: rollbackWorkflowId(env.name),
      taskQueue: TASK_QUEUE,
      args: [{ env: env.name, by: 'riak-test' }],
    })) as RollbackReport;
    expect(report).toMatchObject({ outcome: 'rolled-back', from: run.report.to!.stack, to: seeded });
    expect((await ports.dns.current(env.recordName))!.stack).toBe(seeded);
    const blue = (await ports.stacks.describe(seeded))!.outputs!;
    const carried = await fetch(`${blue.endpoint}/v1/items/made-on-green`, { headers: auth });
    expect(carried.status).toBe(200);
    expect(await carried.json()).toMatchObject({ data: { on: 'green' } });
  }, 300_000);
});
