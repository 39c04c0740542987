/** Two runs for terminated-runs.test.ts: one that waits on a timer, one that waits on a step. */
import { proxyActivities, sleep } from '@temporalio/workflow';

const { waitForRelease } = proxyActivities<{ waitForRelease(): Promise<void> }>({ startToCloseTimeout: '1 hour' });

export async function waitsOnTimer(): Promise<void> {
  await sleep('1 day');
}

export async function waitsOnStep(): Promise<void> {
  await waitForRelease();
}
