/**
 * Activity stubs with options per kind of work. Long activities heartbeat, so a dead worker is
 * noticed within their heartbeat timeout and the retry resumes elsewhere.
 */
import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { SwitchyardActivities } from '../activities/index.ts';

// Cancelling (abort) waits for the activity to stop, so compensation never races the step it undoes.
const base: ActivityOptions = { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };

/** Reads and single calls: quick, retried a few times. */
export const quick = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/** Compensation: must happen, so it is retried for a long time. */
export const persistent = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 30 },
});

/** Creating and deleting stacks: slow, progress in heartbeats. */
export const provisioning = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

/** Moving data (restore, catch-up, export): heartbeat per batch, resumed after a crash. */
export const streaming = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
});

/** Smoke checks judge the stack: a crash is retried once, a failed check is an answer. */
export const smoke = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2s', maximumAttempts: 2 },
});

/** Waiting for DNS to be in sync and answered. */
export const dnsWait = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/** Notifications: the activity retries each target under its own deadline; a second attempt covers a lost worker. */
export const notifying = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', maximumAttempts: 2 },
});

/**
 * Changes of a fence (activities/fence.ts): short attempts whose admin requests end with them,
 * heartbeats so a cancelled or terminated run stops them, retried for a while: until the stack
 * handed over to opens, writes wait, so the hand-over is not given up quickly.
 */
export const fencing = proxyActivities<SwitchyardActivities>({
  ...base,
  startToCloseTimeout: '20 seconds',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 30 },
});

const HAND_OVER_ATTEMPT_MS = 15_000;

/**
 * Handing the writer over in runs started before fencing tokens (`handOver`): the fence it renews
 * must outlive any attempt and the wait for the next, so an attempt takes at most a quarter of the
 * lease (and never over 15 s) and is retried a few times, one second apart.
 */
export function handingOver(leaseSeconds: number) {
  return proxyActivities<SwitchyardActivities>({
    ...base,
    startToCloseTimeout: Math.min(HAND_OVER_ATTEMPT_MS, (leaseSeconds * 1000) / 4),
    retry: { initialInterval: '1s', backoffCoefficient: 1, maximumAttempts: 5 },
  });
}
