/**
 * The activities every Switchyard workflow calls, built from injected dependencies.
 */
import { environmentContexts, type ActivityDeps } from './deps.ts';
import { withFailureConversion } from './failures.ts';
import { planningActivities } from './planning.ts';
import { stackActivities } from './stacks.ts';
import { restoreActivities } from './restore.ts';
import { smokeActivities } from './smoke.ts';
import { catchUpActivities } from './catch-up.ts';
import { fenceActivities } from './fence.ts';
import { legacyFenceActivities } from './fence-legacy.ts';
import { dnsActivities } from './dns.ts';
import { drainActivities } from './drain.ts';
import { verifyActivities } from './verify.ts';
import { backupActivities } from './backups.ts';
import { reportActivities } from './report.ts';
import { notifyActivities } from './notify.ts';
import { compareActivities } from './compare.ts';
import { createNotifier } from '../src/notify/factory.ts';

export type { ActivityDeps, SmokeRunner } from './deps.ts';

export function createActivities(deps: ActivityDeps) {
  const context = environmentContexts(deps);
  const batchLines = deps.importBatchLines ?? 500;
  return withFailureConversion({
    ...planningActivities(context),
    ...stackActivities(context),
    ...restoreActivities(context, batchLines),
    ...smokeActivities(context, deps.runSmokeChecks),
    ...catchUpActivities(context, batchLines),
    ...fenceActivities(context, batchLines),
    ...legacyFenceActivities(context),
    ...dnsActivities(context, deps.pollMs ?? 2_000),
    ...drainActivities(context),
    ...verifyActivities(context),
    ...backupActivities(context),
    ...reportActivities(context, deps.reportsDir, deps.metrics),
    ...notifyActivities(context, deps.notifier ?? createNotifier),
    ...compareActivities(context),
  });
}

export type SwitchyardActivities = ReturnType<typeof createActivities>;
