import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { ConfigError } from '../../src/config/environment.ts';
import { scheduleId } from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import {
  deleteNightlySchedule, pauseNightlySchedule, setNightlySchedule, showNightlySchedule, triggerNightlySchedule,
  unpauseNightlySchedule,
} from '../../src/temporal/schedules.ts';

// No worker polls this task queue: a triggered switch stays running, which is what the overlap check needs.
const env = `sched-${randomBytes(3).toString('hex')}`;
const taskQueue = `schedules-${randomBytes(4).toString('hex')}`;
let client: Client;

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

beforeAll(async () => {
  client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
});

afterAll(async () => {
  for await (const execution of client.workflow.list({ query: `SwitchEnv = '${env}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(execution.workflowId, execution.runId).terminate('test cleanup');
  }
  await deleteNightlySchedule(client, env).catch(() => undefined);
  await client.connection.close();
});

describe.sequential('nightly-refresh schedule', () => {
  it('is created at 03:00 UTC by default and shows the version it rolls out', async () => {
    expect(await showNightlySchedule(client, env)).toBeUndefined();
    expect(await setNightlySchedule(client, { env, taskQueue, version: '1.0.0' })).toBe('created');
    const view = await showNightlySchedule(client, env);
    expect(view).toMatchObject({ scheduleId: `nightly-refresh-${env}`, cron: '0 3 * * *', timezone: 'UTC', paused: false, version: '1.0.0' });
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
    expect(await setNightlySchedule(client, { env, taskQueue, cron: '15 4 * * 1-5', version: '1.1.0' })).toBe('updated');
    const view = await showNightlySchedule(client, env);
    expect(view).toMatchObject({ cron: '15 4 * * 1-5', version: '1.1.0', paused: true, note: 'release freeze' });
    for (const run of view?.nextRuns ?? []) {
      expect(run).toMatch(/T04:15:00\.000Z$/);
      expect([1, 2, 3, 4, 5]).toContain(new Date(run).getUTCDay());
    }
  });

  it('is unpaused with a note', async () => {
    await unpauseNightlySchedule(client, env, 'freeze over');
    expect(await showNightlySchedule(client, env)).toMatchObject({ paused: false, note: 'freeze over' });
  });

  it('starts a stackSwitch with trigger schedule when triggered, seen in the workflow list', async () => {
    const workflowId = await triggerNightlySchedule(client, env);
    expect(workflowId).toMatch(new RegExp(`^switch-${env}-`));
    const scheduled = await listIds(`TemporalScheduledById = '${scheduleId(env)}'`);
    expect(scheduled).toEqual([workflowId]);
    const tagged = await listIds(`WorkflowType = 'stackSwitch' AND SwitchEnv = '${env}' AND SwitchTrigger = 'schedule'`);
    expect(tagged).toEqual([workflowId]);
    const description = await client.workflow.getHandle(workflowId!).describe();
    expect(description.taskQueue).toBe(taskQueue);
    const view = await showNightlySchedule(client, env);
    expect(view?.recentRuns.map((run) => run.workflowId)).toEqual([workflowId]);
    // The schedule learns that its run is still going a moment after starting it.
    const deadline = Date.now() + 10_000;
    let running = view?.running ?? [];
    while (running.length === 0 && Date.now() < deadline) {
      await sleep(200);
      running = (await showNightlySchedule(client, env))?.running ?? [];
    }
    expect(running).toEqual([workflowId]);
  });

  it('skips a trigger while the last night still runs (overlap: skip)', async () => {
    expect(await triggerNightlySchedule(client, env, 2_000)).toBeUndefined();
    expect((await showNightlySchedule(client, env))?.recentRuns).toHaveLength(1);
  });

  it('refuses a cron expression that is not one, naming it', async () => {
    await expect(setNightlySchedule(client, { env, taskQueue, cron: '61 3 * * *', version: '1.1.0' })).rejects.toThrow(ConfigError);
    await expect(setNightlySchedule(client, { env, taskQueue, cron: 'nightly', version: '1.1.0' })).rejects.toThrow(/cron expression 'nightly' is not valid/);
    expect((await showNightlySchedule(client, env))?.cron).toBe('15 4 * * 1-5');
  });

  it('tells how to create it when it does not exist', async () => {
    await expect(pauseNightlySchedule(client, 'sched-none', 'x')).rejects.toThrow(/no nightly schedule \(nightly-refresh-sched-none\): create it with `switchyard schedule set --env sched-none`/);
  });
});
