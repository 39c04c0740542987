/**
 * stackSwitch on the shared dev server: one switch per environment, and a worker killed with
 * SIGKILL in the middle of restoring — the switch still completes and the restore resumes from
 * its heartbeat checkpoint.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import {
  switchWorkflowId,
  type SwitchInput,
  type SwitchReport,
  type SwitchStatus,
  statusQuery,
} from '../../src/switch/contract.ts';
import { FakeWorld, seedStackName, seedWorld } from '../support/fake-ports.ts';
import { startTestWorker as startWorkerProcess } from '../support/test-worker-process.ts';
import { tempDir } from '../support/temp-dir.ts';

let connection: Connection;
let client: Client;
const workers = new Set<ChildProcess>();

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});
afterAll(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  await connection?.close();
});

/** Items in the backup: at 5 per import batch and 100 ms per batch, the restore takes about 12 s. */
const ITEMS = 600;

const input = (env: string): SwitchInput => ({ env, backup: 'latest', trigger: 'ci', version: '2.0.0' });

/** A test worker process, killed after the file's tests. */
async function startTestWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = await startWorkerProcess(env, 60_000);
  workers.add(child);
  child.once('exit', () => workers.delete(child));
  return child;
}

it('refuses a second switch of the same environment while one runs', async () => {
  const env = `busy-${randomUUID().slice(0, 8)}`;
  // No worker polls this queue: the first switch simply stays running.
  const taskQueue = `nobody-${randomUUID()}`;
  const first = await client.workflow.start('stackSwitch', {
    taskQueue,
    workflowId: switchWorkflowId(env),
    args: [input(env)],
  });
  try {
    await expect(
      client.workflow.start('stackSwitch', { taskQueue, workflowId: switchWorkflowId(env), args: [input(env)] }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  } finally {
    await first.terminate('test finished');
  }
});

it('finishes a switch whose worker was killed mid-restore, resuming the restore from its checkpoint', async () => {
  const env = `kill-${randomUUID().slice(0, 8)}`;
  const taskQueue = `switch-kill-${randomUUID()}`;
  const stateDir = tempDir('switch-kill-').path;
  const stateFile = join(stateDir, 'world.json');
  const world = new FakeWorld({ stateFile });
  seedWorld(world, env, ITEMS);
  const backupIds = new Set(
    world.state.backups[0]!.lines.map((l) => (JSON.parse(l) as { id?: string }).id).filter(Boolean),
  );
  const workerEnv = {
    SWITCHYARD_TASK_QUEUE: taskQueue,
    SWITCHYARD_TEST_STATE_DIR: stateDir,
    SWITCHYARD_TEST_IMPORT_DELAY_MS: '100',
    SWITCHYARD_TEST_BATCH_LINES: '5',
    SWITCHYARD_TEST_ENV: JSON.stringify({ verifySeconds: 0, drainSeconds: 0, ttl: 1 }),
  };

  const first = await startTestWorker(workerEnv);
  const handle = await client.workflow.start('stackSwitch', {
    taskQueue,
    workflowId: switchWorkflowId(env),
    args: [input(env)],
  });
  const seed = seedStackName(env);
  // Kill once the status query shows restore progress (read from the new stack's own count).
  let progress: SwitchStatus['restore'];
  for (let i = 0; i < 600 && !(progress && progress.items > 0); i += 1) {
    await sleep(100);
    progress = (await handle.query(statusQuery)).restore;
  }
  expect(progress?.total).toBe(ITEMS);
  expect(progress?.items).toBeGreaterThan(0);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const newStack = Object.keys(world.reload().imported).find((name) => name !== seed);
  const importedBeforeKill = world.state.imported[newStack!]!.length;
  expect(importedBeforeKill).toBeLessThan(ITEMS);

  await startTestWorker(workerEnv);
  const report = (await handle.result()) as SwitchReport;
  expect(report.outcome).toBe('switched');
  const state = world.reload();
  expect(state.dns?.stack).toBe(newStack);
  const restoreImports = state.imported[newStack!]!.filter((id) => backupIds.has(id));
  // Every backed-up item arrived; the first batch only once, so the retry did not start over.
  expect(new Set(restoreImports)).toEqual(backupIds);
  const [firstId] = backupIds;
  expect(restoreImports.filter((id) => id === firstId)).toHaveLength(1);
  expect(restoreImports.length).toBeLessThan(ITEMS + importedBeforeKill);
  expect(world.itemIds(newStack!)).toEqual(world.itemIds(seed));
  expect(state.violations).toEqual([]);
  const { searchAttributes } = await handle.describe();
  expect(searchAttributes).toMatchObject({
    SwitchEnv: [env],
    SwitchPhase: ['done'],
    SwitchColor: ['green'],
    SwitchStack: [newStack],
    SwitchVersion: ['2.0.0'],
    SwitchTrigger: ['ci'],
  });
}, 180_000);

it('names the new stack of each switch differently, even for switches started within the same minute', async () => {
  // The dev server's run ids are UUIDv7: two runs started seconds apart share their leading digits.
  const env = `names-${randomUUID().slice(0, 8)}`;
  const taskQueue = `switch-names-${randomUUID()}`;
  const stateDir = tempDir('switch-names-').path;
  const world = new FakeWorld({ stateFile: join(stateDir, 'world.json') });
  seedWorld(world, env);
  // Smoke tests fail, so both switches go for the same colour: only the run can tell their stacks apart.
  await startTestWorker({
    SWITCHYARD_TASK_QUEUE: taskQueue,
    SWITCHYARD_TEST_STATE_DIR: stateDir,
    SWITCHYARD_TEST_FAIL: JSON.stringify({ smoke: { retryable: false, message: 'no heartbeat' } }),
  });
  const reports: SwitchReport[] = [];
  for (let i = 0; i < 2; i += 1) {
    reports.push(
      (await client.workflow.execute('stackSwitch', {
        taskQueue,
        workflowId: switchWorkflowId(env),
        args: [input(env)],
      })) as SwitchReport,
    );
  }
  const [first, second] = reports as [SwitchReport, SwitchReport];
  expect(first.outcome).toBe('failed');
  expect(second.outcome).toBe('failed');
  expect(first.to?.colour).toBe('green');
  expect(second.to?.colour).toBe('green');
  expect(second.to?.stack).not.toBe(first.to?.stack);
  const created = world
    .reload()
    .calls.filter((call) => call.startsWith('create '))
    .map((call) => call.split(' ')[1]);
  expect(created).toEqual([first.to?.stack, second.to?.stack]);
  expect(world.state.violations).toEqual([]);
}, 120_000);

it('stops the worker gracefully on SIGTERM', async () => {
  const worker = await startTestWorker({
    SWITCHYARD_TASK_QUEUE: `idle-${randomUUID()}`,
    SWITCHYARD_TEST_STATE_DIR: tempDir('switch-term-').path,
  });
  const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
  worker.kill('SIGTERM');
  expect(await exited).toBe(0);
}, 90_000);
