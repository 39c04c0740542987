/**
 * A switch reset past provisioning (on the shared dev server: the time-skipping server has no
 * reset) finds the stack its first run created, because the name comes from firstExecutionRunId.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { SwitchReport } from '../../src/switch/contract.ts';
import { stackSwitch } from '../../workflows/index.ts';
import { quietRuntime, seededWorld, workerFor } from './harness.ts';
import { untilPhase } from '../support/phase.ts';

let connection: Connection;
let native: NativeConnection;
let client: Client;
beforeAll(async () => {
  quietRuntime();
  connection = await Connection.connect({ address: inject('temporalAddress') });
  native = await NativeConnection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
});
afterAll(async () => {
  await native?.close();
  await connection?.close();
});

it('survives a reset past provisioning: the reset run finds the stack the first run created', async () => {
  const world = seededWorld().fail('stacks.waitUntilReady', { message: 'hang' });
  const env = { verifySeconds: 0, drainSeconds: 0, ttl: 1 };
  const { worker, taskQueue } = await workerFor(native, world, env);
  const report: SwitchReport = await worker.runUntil(async () => {
    const handle = await client.workflow.start(stackSwitch, {
      taskQueue,
      workflowId: `switch-reset-${randomUUID()}`,
      args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2' }],
    });
    await untilPhase(handle, 'provisioning');
    const history = await handle.fetchHistory();
    const firstTask = history.events?.find((e) => e.workflowTaskCompletedEventAttributes)?.eventId;
    world.fail('stacks.waitUntilReady', { times: 0 });
    const reset = await client.workflowService.resetWorkflowExecution({
      namespace: 'default',
      workflowExecution: { workflowId: handle.workflowId, runId: handle.firstExecutionRunId },
      workflowTaskFinishEventId: firstTask,
      reason: 'test: reset past provisioning',
      requestId: randomUUID(),
    });
    expect(reset.runId).not.toBe(handle.firstExecutionRunId);
    return client.workflow.getHandle(handle.workflowId, reset.runId ?? undefined).result();
  });
  expect(report.outcome).toBe('switched');
  const created = world.state.calls.filter((c) => c.startsWith('create ')).map((c) => c.split(' ')[1]);
  expect(new Set(created)).toEqual(new Set([report.to?.stack]));
});
