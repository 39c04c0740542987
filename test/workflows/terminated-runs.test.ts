/**
 * What a terminated run leaves held on the time-skipping server, and that the explorer's release
 * (releaseTimeHeldByClosedRuns) counts it: nothing where the terminate found the run on a timer,
 * one lock where it found a step running. The explorer's terminate schedules land on either.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect, it, vi } from 'vitest';
import { DefaultLogger, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { releaseTimeHeldByClosedRuns } from './harness.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';
import { waitsOnStep, waitsOnTimer } from './terminated-runs.workflows.ts';

const testEnv = useTimeSkippingEnvironment();

function timerStarted(handle: WorkflowHandle): Promise<void> {
  return vi.waitFor(
    async () => {
      const { events } = await handle.fetchHistory();
      if (!events?.some((event) => event.timerStartedEventAttributes))
        throw new Error(`${handle.workflowId} has not started its timer`);
    },
    { timeout: 10_000, interval: 50 },
  );
}

it('releases no lock of a run terminated on a timer, and the one of a run terminated during a step', async () => {
  const env = testEnv();
  let stepStarted!: () => void;
  const stepRunning = new Promise<void>((started) => (stepStarted = started));
  let releaseStep!: () => void;
  const stepReleased = new Promise<void>((release) => (releaseStep = release));
  const taskQueue = `terminated-runs-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./terminated-runs.workflows.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    }),
    activities: {
      async waitForRelease() {
        stepStarted();
        await stepReleased;
      },
    },
  });
  await worker.runUntil(async () => {
    const onTimer = await env.client.workflow.start(waitsOnTimer, { taskQueue, workflowId: `timer-${randomUUID()}` });
    await timerStarted(onTimer);
    await onTimer.terminate('test');
    expect(await releaseTimeHeldByClosedRuns(env)).toBe(0);

    const onStep = await env.client.workflow.start(waitsOnStep, { taskQueue, workflowId: `step-${randomUUID()}` });
    await stepRunning;
    await onStep.terminate('test');
    releaseStep();
    expect(await releaseTimeHeldByClosedRuns(env)).toBe(1);
    // Released exactly: the next probe finds time skipping, with nothing to release.
    expect(await releaseTimeHeldByClosedRuns(env)).toBe(0);
  });
}, 60_000);
