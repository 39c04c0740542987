/**
 * `switch --rehearse` end to end against the shared dev server: it holds the environment's one
 * lock, as a switch does (with nobody polling the task queue, the run that got there first keeps
 * running and the other is refused with exit 3), and with the test worker over a file-backed fake
 * world it exits 0 when a switch would have gone ahead and 1 when not.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { switchWorkflowId, type SwitchReport } from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import { FakeWorld, seedStackName } from '../support/fake-ports.ts';
import { startTestWorker } from '../support/test-worker-process.ts';
import { environmentsDir, environmentYaml, runCli } from './run-cli.ts';
import { tempDir } from '../support/temp-dir.ts';

const env = `reh-${randomBytes(3).toString('hex')}`;
const envs = environmentsDir({ [env]: environmentYaml(env) });
let client: Client;
const cliEnv = () => ({
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  SWITCHYARD_TASK_QUEUE: `nobody-${randomBytes(4).toString('hex')}`,
});
const cli = (...args: string[]) => runCli([...args, '--environments', envs.dir], cliEnv());
const busy = new RegExp(
  `^switchyard: a switch of ${env} is already running \\(switch-${env}, started [^)]+\\); watch it with \`switchyard status --env ${env}\`$`,
);

beforeAll(async () => {
  client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
});
afterAll(async () => {
  await client?.connection.close();
  envs.remove();
});

async function terminateRunning(): Promise<void> {
  await client.workflow.getHandle(switchWorkflowId(env)).terminate('test over');
}

it('refuses a rehearsal while a switch runs (exit 3), and a switch while a rehearsal runs', async () => {
  const started = await cli('switch', '--env', env, '--json');
  expect(started.code).toBe(0);
  const refused = await cli('switch', '--env', env, '--rehearse', '--wait', '--json');
  expect(refused.code).toBe(3);
  expect(refused.stderr.trim()).toMatch(busy);
  expect(refused.stdout).toBe('');
  expect((await client.workflow.getHandle(switchWorkflowId(env)).describe()).type).toBe('stackSwitch');
  await terminateRunning();

  const rehearsing = await cli('switch', '--env', env, '--rehearse');
  expect(rehearsing.code).toBe(0);
  const description = await client.workflow.getHandle(switchWorkflowId(env)).describe();
  expect(description.type).toBe('rehearsal');
  expect(await description.staticSummary()).toMatch(
    new RegExp(`^rehearse switching ${env} to version \\S+ \\(trigger manual\\): no fence, DNS untouched$`),
  );
  const second = await cli('switch', '--env', env);
  expect(second.code).toBe(3);
  expect(second.stderr.trim()).toMatch(busy);
  await terminateRunning();
}, 120_000);

it('exits 0 with outcome rehearsed when a switch would have gone ahead, 1 when a smoke check fails', async () => {
  const worked = `rehw-${randomBytes(3).toString('hex')}`;
  const taskQueue = `rehearse-${randomBytes(4).toString('hex')}`;
  const stateDir = tempDir('switchyard-rehearse-').path;
  const dir = environmentsDir({ [worked]: environmentYaml(worked) });
  let worker: ChildProcess | undefined;
  try {
    worker = await startTestWorker({
      SWITCHYARD_TASK_QUEUE: taskQueue,
      SWITCHYARD_TEST_STATE_DIR: stateDir,
      SWITCHYARD_TEST_SEED_ENV: worked,
      // The first rehearsal passes its smoke checks, the second does not.
      SWITCHYARD_TEST_FAIL: JSON.stringify({ smoke: { after: 1, message: 'stream check saw no heartbeat' } }),
    });
    const run = (...args: string[]) =>
      runCli([...args, '--environments', dir.dir], {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        SWITCHYARD_TASK_QUEUE: taskQueue,
      });

    const passed = await run('switch', '--env', worked, '--rehearse', '--wait', '--json');
    expect(passed.code).toBe(0);
    const report = JSON.parse(passed.stdout) as SwitchReport;
    expect(report).toMatchObject({
      env: worked,
      workflowId: switchWorkflowId(worked),
      outcome: 'rehearsed',
      rehearsal: { wouldSwitch: true },
    });
    expect(report.rehearsal?.lastDelta).toMatchObject({ items: expect.any(Number), durationMs: expect.any(Number) });
    const world = new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload();
    expect(world.dns?.stack).toBe(seedStackName(worked));
    expect(world.stacks[report.to!.stack]!.description.status).toBe('deleted');

    const failed = await run('switch', '--env', worked, '--rehearse', '--wait');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`# Rehearsal of a switch of ${worked}: failed`);
    expect(failed.stdout).toContain('| Would have switched | no |');
    expect(failed.stdout).toContain('stream check saw no heartbeat');
  } finally {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker!.once('exit', resolve));
      worker.kill('SIGTERM');
      setTimeout(() => worker?.kill('SIGKILL'), 15_000).unref();
      await exited;
    }
    dir.remove();
  }
}, 180_000);
