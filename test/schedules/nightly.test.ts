/**
 * The nightly-refresh schedule on the shared dev server, with a worker over a fake world whose
 * switches wait for approval: a night's switch keeps running for as long as a test needs it to.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { ConfigError } from '../../src/config/environment.ts';
import {
  scheduleId,
  switchStartAttributes,
  switchWorkflowId,
  type SwitchInput,
  abortUpdate,
  type NightlyRefreshResult,
} from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import {
  deleteNightlySchedule,
  pauseNightlySchedule,
  setNightlySchedule,
  showNightlySchedule,
  triggerNightlySchedule,
  unpauseNightlySchedule,
  type TriggeredNight,
} from '../../src/temporal/schedules.ts';
import { FakeWorld, seedWorld } from '../support/fake-ports.ts';
import { quietRuntime, workerFor } from '../workflows/harness.ts';
import { environmentsDir, environmentYaml, runCli } from '../cli/run-cli.ts';

const env = `sched-${randomBytes(3).toString('hex')}`;
const envs = environmentsDir({ [env]: environmentYaml(env) });
let client: Client;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;

/** Visibility is eventually consistent: ask again for a bounded time. */
async function listIds(query: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ids: string[] = [];
    for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
    if (ids.length || Date.now() > deadline) return ids;
    await sleep(200);
  }
}

/** What the UI shows as the workflow's current details (the SDK's built-in metadata query). */
async function currentDetails(workflowId: string): Promise<string> {
  return (await client.workflow.getHandle(workflowId).query<{ currentDetails: string }>('__temporal_workflow_metadata'))
    .currentDetails;
}

beforeAll(async () => {
  client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
  quietRuntime();
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const world = new FakeWorld();
  seedWorld(world, env);
  ({ worker, taskQueue } = await workerFor(connection, world, { approval: 'manual', approvalTimeoutSeconds: 600 }));
  running = worker.run();
}, 60_000);

afterAll(async () => {
  for await (const execution of client.workflow.list({
    query: `SwitchEnv = '${env}' AND ExecutionStatus = 'Running'`,
  })) {
    await client.workflow.getHandle(execution.workflowId, execution.runId).terminate('test cleanup');
  }
  await deleteNightlySchedule(client, env).catch(() => undefined);
  worker?.shutdown();
  await running;
  await connection?.close();
  await client.connection.close();
  envs.remove();
});

describe.sequential('nightly-refresh schedule', () => {
  it('is created at 03:00 UTC by default and shows the version it rolls out', async () => {
    expect(await showNightlySchedule(client, env)).toBeUndefined();
    expect(await setNightlySchedule(client, { env, taskQueue, version: '1.0.0' })).toBe('created');
    const view = await showNightlySchedule(client, env);
    expect(view).toMatchObject({
      scheduleId: `nightly-refresh-${env}`,
      cron: '0 3 * * *',
      timezone: 'UTC',
      paused: false,
      version: '1.0.0',
    });
    expect(view?.nextRuns.length).toBeGreaterThan(0);
    for (const run of view?.nextRuns ?? []) expect(run).toMatch(/T03:00:00\.000Z$/);
  });

  it('is seen in the schedule list', async () => {
    const ids: string[] = [];
    const deadline = Date.now() + 10_000;
    while (!ids.includes(scheduleId(env)) && Date.now() < deadline) {
      ids.length = 0;
      for await (const schedule of client.schedule.list()) ids.push(schedule.scheduleId);
      if (!ids.includes(scheduleId(env))) await sleep(200);
    }
    expect(ids).toContain(scheduleId(env));
  });

  it('is updated in place by a second set, keeping its paused state', async () => {
    await pauseNightlySchedule(client, env, 'release freeze');
    expect(await setNightlySchedule(client, { env, taskQueue, cron: '15 4 * * 1-5', version: '1.1.0' })).toBe(
      'updated',
    );
    const view = await showNightlySchedule(client, env);
    expect(view).toMatchObject({ cron: '15 4 * * 1-5', version: '1.1.0', paused: true, note: 'release freeze' });
    for (const run of view?.nextRuns ?? []) {
      expect(run).toMatch(/T04:15:00\.000Z$/);
      expect([1, 2, 3, 4, 5]).toContain(new Date(run).getUTCDay());
    }
  });

  it('rehearses each night when set with rehearse, and switches again when set without', async () => {
    expect(
      await setNightlySchedule(client, { env, taskQueue, cron: '15 4 * * 1-5', version: '1.1.0', rehearse: true }),
    ).toBe('updated');
    expect(await showNightlySchedule(client, env)).toMatchObject({ version: '1.1.0', rehearse: true, paused: true });
    const action = (await client.schedule.getHandle(scheduleId(env)).describe()).action;
    expect(action.type === 'startWorkflow' && action.args).toEqual([
      { env, backup: 'latest', version: '1.1.0', rehearse: true },
    ]);
    expect(await setNightlySchedule(client, { env, taskQueue, cron: '15 4 * * 1-5', version: '1.1.0' })).toBe(
      'updated',
    );
    expect(await showNightlySchedule(client, env)).toMatchObject({ version: '1.1.0', rehearse: false });
  });

  it('is unpaused with a note', async () => {
    await unpauseNightlySchedule(client, env, 'freeze over');
    expect(await showNightlySchedule(client, env)).toMatchObject({ paused: false, note: 'freeze over' });
  });

  let night: TriggeredNight;

  it('starts a night that starts switch-<env> with trigger schedule when triggered, seen in the workflow list', async () => {
    const triggered = await runCli(['schedule', 'trigger', '--env', env, '--environments', envs.dir], {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
    });
    expect(triggered.code).toBe(0);
    const said = new RegExp(
      `^triggered nightly-refresh-${env}: (nightly-refresh-${env}-\\S+) started switch-${env} \\(run (\\S+)\\); ` +
        `watch it with \`switchyard status --env ${env}\`$`,
    ).exec(triggered.stdout.trim());
    expect(said, triggered.stdout + triggered.stderr).not.toBeNull();
    night = { outcome: 'started', nightly: said![1]!, switch: { workflowId: switchWorkflowId(env), runId: said![2]! } };
    expect(await listIds(`TemporalScheduledById = '${scheduleId(env)}'`)).toEqual([night.nightly]);
    const tagged = await listIds(
      `WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}' AND SwitchTrigger = 'schedule'`,
    );
    expect(tagged).toEqual([switchWorkflowId(env)]);
    const description = await client.workflow.getHandle(switchWorkflowId(env)).describe();
    expect(description).toMatchObject({
      runId: night.switch.runId,
      taskQueue,
      parentExecution: { workflowId: night.nightly },
    });
    expect(description.searchAttributes).toMatchObject({
      SwitchEnv: [env],
      SwitchTrigger: ['schedule'],
      SwitchVersion: ['1.1.0'],
    });
    // What the Web UI shows for the night and for its switch.
    expect(await description.staticSummary()).toBe(`switch ${env} to version 1.1.0 (trigger schedule)`);
    expect(await (await client.workflow.getHandle(night.nightly).describe()).staticSummary()).toBe(
      `nightly refresh of ${env}: switch to version 1.1.0`,
    );
    expect(await currentDetails(night.nightly)).toContain(`started switch-${env} (run ${night.switch.runId})`);
    const view = await showNightlySchedule(client, env);
    expect(view?.recentRuns.map((run) => run.workflowId)).toEqual([night.nightly]);
    // The schedule learns that its run is still going a moment after starting it.
    const deadline = Date.now() + 10_000;
    let runs = view?.running ?? [];
    while (runs.length === 0 && Date.now() < deadline) {
      await sleep(200);
      runs = (await showNightlySchedule(client, env))?.running ?? [];
    }
    expect(runs).toEqual([night.nightly]);
  });

  it('skips a trigger while the last night still runs (overlap: skip)', async () => {
    expect(await triggerNightlySchedule(client, env, 5_000)).toEqual({ outcome: 'overlap' });
    expect((await showNightlySchedule(client, env))?.recentRuns).toHaveLength(1);
  });

  it('ends the night with the outcome of its switch', async () => {
    if (night.outcome !== 'started') throw new Error('the first trigger started no switch');
    await client.workflow
      .getHandle(switchWorkflowId(env))
      .executeUpdate(abortUpdate, { args: [{ by: 'tester', comment: 'next test' }] });
    const result = (await client.workflow.getHandle(night.nightly).result()) as NightlyRefreshResult;
    expect(result).toMatchObject({
      env,
      outcome: 'aborted',
      switch: night.switch,
      report: { trigger: 'schedule', workflowId: switchWorkflowId(env) },
    });
  });

  it('starts no second switch when triggered while switch-<env> runs, and says which one ran', async () => {
    // A switch CI started, on a task queue nobody polls: it stays running.
    const input: SwitchInput = { env, backup: 'latest', trigger: 'ci', version: '2.0.0' };
    const ci = await client.workflow.start('stackSwitch', {
      workflowId: switchWorkflowId(env),
      taskQueue: `nobody-${randomBytes(4).toString('hex')}`,
      args: [input],
      typedSearchAttributes: switchStartAttributes(input),
    });
    const skipped = await triggerNightlySchedule(client, env);
    if (skipped.outcome !== 'skipped')
      throw new Error(`expected the night to skip its switch, got ${JSON.stringify(skipped)}`);
    expect(skipped).toMatchObject({
      running: switchWorkflowId(env),
      reason: expect.stringContaining(`switch-${env} was already running`),
    });
    const result = (await client.workflow.getHandle(skipped.nightly).result()) as NightlyRefreshResult;
    expect(result).toEqual({ env, outcome: 'skipped', running: switchWorkflowId(env), reason: skipped.reason });
    expect(await currentDetails(skipped.nightly)).toContain(`**skipped** — switch-${env} was already running`);
    // The one running switch is still CI's, and the night started none besides it.
    const description = await client.workflow.getHandle(switchWorkflowId(env)).describe();
    expect(description.runId).toBe(ci.firstExecutionRunId);
    expect(description.status.name).toBe('RUNNING');
    expect(
      await listIds(`WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}' AND ExecutionStatus = 'Running'`),
    ).toEqual([switchWorkflowId(env)]);
    expect(
      await listIds(`WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}' AND SwitchTrigger = 'schedule'`),
    ).toHaveLength(1);
    await ci.terminate('test finished');
  });

  it('refuses a cron expression that is not one, naming it', async () => {
    await expect(setNightlySchedule(client, { env, taskQueue, cron: '61 3 * * *', version: '1.1.0' })).rejects.toThrow(
      ConfigError,
    );
    await expect(setNightlySchedule(client, { env, taskQueue, cron: 'nightly', version: '1.1.0' })).rejects.toThrow(
      /cron expression 'nightly' is not valid/,
    );
    expect((await showNightlySchedule(client, env))?.cron).toBe('15 4 * * 1-5');
  });

  it('tells how to create it when it does not exist', async () => {
    await expect(pauseNightlySchedule(client, 'sched-none', 'x')).rejects.toThrow(
      /no nightly schedule \(nightly-refresh-sched-none\): create it with `switchyard schedule set --env sched-none`/,
    );
  });
});
