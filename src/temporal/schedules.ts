/**
 * The nightly refresh of an environment (README.md): a Temporal Schedule `nightly-refresh-<env>`
 * that starts a `nightlyRefresh` workflow, which starts the switch as `switch-<env>` with trigger
 * `schedule` (workflows/nightly-refresh.ts). The schedule skips a night while the last one still
 * runs; the night itself skips its switch while any switch of the environment runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  ServiceError,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleOptionsStartWorkflowAction,
  type WorkflowHandle,
} from '@temporalio/client';
import { ConfigError } from '../config/environment.ts';
import {
  TASK_QUEUE,
  scheduleId,
  searchAttributes,
  switchWorkflowId,
  type NightlyRefreshInput,
} from '../switch/contract.ts';
import type { nightlyRefresh } from '../../workflows/nightly-refresh.ts';

/** 03:00 UTC: after the nightly backups, before anyone in Europe starts work. */
export const DEFAULT_CRON = '0 3 * * *';
const TIMEZONE = 'UTC';
/** A night missed while Temporal was down is made up only if that is at most this late. */
const CATCHUP_WINDOW = '1 hour';
const INVALID_ARGUMENT = 3;

export interface NightlyRefresh {
  env: string;
  cron?: string;
  /** Application version each night's switch rolls out. */
  version: string;
  backup?: string;
  /** Where the switch's workers poll (default `switchyard`). */
  taskQueue?: string;
  /** Each night rehearses the switch (`switch --rehearse`) instead of switching. */
  rehearse?: boolean;
}

export interface NightlyScheduleView {
  scheduleId: string;
  cron: string;
  timezone: string;
  paused: boolean;
  note?: string;
  version: string;
  /** The nights rehearse instead of switching. */
  rehearse: boolean;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; workflowId: string; runId: string }>;
  running: string[];
}

/** The cron travels in the action's memo: the server keeps only the calendar it compiles from it. */
interface ActionMemo {
  nightlyCron: string;
}

function action(refresh: NightlyRefresh, cron: string): ScheduleOptionsStartWorkflowAction<typeof nightlyRefresh> {
  const input: NightlyRefreshInput = {
    env: refresh.env,
    backup: refresh.backup ?? 'latest',
    version: refresh.version,
    ...(refresh.rehearse ? { rehearse: true } : {}),
  };
  const memo: ActionMemo = { nightlyCron: cron };
  const what = refresh.rehearse ? 'rehearsal of a switch' : 'switch';
  return {
    type: 'startWorkflow',
    workflowType: 'nightlyRefresh',
    // The server appends the scheduled time to this id, so nights never collide with each other.
    workflowId: scheduleId(refresh.env),
    taskQueue: refresh.taskQueue ?? TASK_QUEUE,
    args: [input],
    memo: { ...memo },
    typedSearchAttributes: [{ key: searchAttributes.env, value: refresh.env }],
    staticSummary: `nightly refresh of ${refresh.env}: ${what} to version ${input.version}`,
    staticDetails:
      `Starts \`${switchWorkflowId(refresh.env)}\` (a ${what}, trigger schedule) at '${cron}' UTC, restoring backup ${input.backup}, and waits for it; ` +
      `skips the night when a switch of ${refresh.env} is already running.`,
  };
}

/** The SDK turns the server's "invalid schedule spec" into a TypeError; either way it is the cron's fault. */
function rethrowInvalid(err: unknown, cron: string): never {
  if (err instanceof TypeError)
    throw new ConfigError(`cron expression '${cron}' is not valid: ${err.message}`, { cause: err });
  if (err instanceof ServiceError && (err.cause as { code?: number } | undefined)?.code === INVALID_ARGUMENT) {
    const details = (err.cause as { details?: string }).details ?? err.message;
    throw new ConfigError(`cron expression '${cron}' was refused by Temporal: ${details}`, { cause: err });
  }
  throw err;
}

/** Creates the schedule, or updates its time and action in place (keeping paused state and history). */
export async function setNightlySchedule(client: Client, refresh: NightlyRefresh): Promise<'created' | 'updated'> {
  const cron = refresh.cron ?? DEFAULT_CRON;
  const spec = { cronExpressions: [cron], timezone: TIMEZONE };
  const id = scheduleId(refresh.env);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec,
      action: action(refresh, cron),
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW, pauseOnFailure: false },
      state: { note: `nightly refresh of ${refresh.env}, set by switchyard` },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) rethrowInvalid(err, cron);
  }
  try {
    await client.schedule.getHandle(id).update((previous) => ({
      ...previous,
      spec,
      action: action(refresh, cron),
      policies: { ...previous.policies, overlap: ScheduleOverlapPolicy.SKIP },
      state: { paused: previous.state.paused, note: previous.state.note },
    }));
  } catch (err) {
    rethrowInvalid(err, cron);
  }
  return 'updated';
}

async function describe(
  client: Client,
  env: string,
): Promise<{ handle: ScheduleHandle; description: ScheduleDescription } | undefined> {
  const handle = client.schedule.getHandle(scheduleId(env));
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

async function existing(
  client: Client,
  env: string,
): Promise<{ handle: ScheduleHandle; description: ScheduleDescription }> {
  const found = await describe(client, env);
  if (!found)
    throw new ConfigError(
      `environment ${env} has no nightly schedule (${scheduleId(env)}): create it with \`switchyard schedule set --env ${env}\``,
    );
  return found;
}

export async function showNightlySchedule(client: Client, env: string): Promise<NightlyScheduleView | undefined> {
  const found = await describe(client, env);
  if (!found) return undefined;
  const { description } = found;
  const startAction = description.action.type === 'startWorkflow' ? description.action : undefined;
  const input = startAction?.args?.[0] as NightlyRefreshInput | undefined;
  return {
    scheduleId: description.scheduleId,
    cron: (startAction?.memo as ActionMemo | undefined)?.nightlyCron ?? '(not set by switchyard)',
    timezone: description.spec.timezone ?? TIMEZONE,
    paused: description.state.paused,
    ...(description.state.note ? { note: description.state.note } : {}),
    version: input?.version ?? '(unknown)',
    rehearse: input?.rehearse === true,
    nextRuns: description.info.nextActionTimes.map((time) => time.toISOString()),
    recentRuns: description.info.recentActions.map((run) => ({
      scheduledAt: run.scheduledAt.toISOString(),
      workflowId: run.action.workflow.workflowId,
      runId: run.action.workflow.firstExecutionRunId,
    })),
    running: description.info.runningActions.map((run) => run.workflow.workflowId),
  };
}

export async function pauseNightlySchedule(client: Client, env: string, note: string): Promise<void> {
  await (await existing(client, env)).handle.pause(note);
}

export async function unpauseNightlySchedule(client: Client, env: string, note: string): Promise<void> {
  await (await existing(client, env)).handle.unpause(note);
}

/** What triggering the schedule led to. */
export type TriggeredNight =
  /** The night's run started the switch. */
  | { outcome: 'started'; nightly: string; switch: { workflowId: string; runId: string } }
  /** The night's run found a switch of the environment running and started none. */
  | { outcome: 'skipped'; nightly: string; running: string; reason: string }
  /** The schedule started no night: its last one still runs (overlap: skip). */
  | { outcome: 'overlap' }
  /** The night's run started, but no worker ran it within the wait. */
  | { outcome: 'pending'; nightly: string };

/**
 * Runs the nightly refresh now, under the schedule's overlap policy, and follows the night's run
 * (for at most `waitMs`) until it has started the switch or skipped it.
 */
export async function triggerNightlySchedule(client: Client, env: string, waitMs = 10_000): Promise<TriggeredNight> {
  const { handle, description } = await existing(client, env);
  const before = new Set(description.info.recentActions.map((run) => run.action.workflow.firstExecutionRunId));
  const skippedBefore = description.info.numActionsSkippedOverlap;
  // The SDK's default for a manual trigger is ALLOW_ALL, which would start a second night alongside.
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + waitMs;
  let night: WorkflowHandle<typeof nightlyRefresh> | undefined;
  while (Date.now() < deadline) {
    if (!night) {
      const now = await handle.describe();
      const started = now.info.recentActions.find((run) => !before.has(run.action.workflow.firstExecutionRunId));
      if (started)
        night = client.workflow.getHandle(
          started.action.workflow.workflowId,
          started.action.workflow.firstExecutionRunId,
        );
      else if (now.info.numActionsSkippedOverlap > skippedBefore) return { outcome: 'overlap' };
    }
    const answer = night && (await whatTheNightDid(night));
    if (answer) return answer;
    await sleep(200);
  }
  return night ? { outcome: 'pending', nightly: night.workflowId } : { outcome: 'overlap' };
}

/** The switch a night's run started (seen as its pending child or in its result), its skip, or nothing yet. */
async function whatTheNightDid(night: WorkflowHandle<typeof nightlyRefresh>): Promise<TriggeredNight | undefined> {
  const description = await night.describe();
  const child = description.raw.pendingChildren?.find((pending) => pending.workflowId && pending.runId);
  if (child)
    return {
      outcome: 'started',
      nightly: night.workflowId,
      switch: { workflowId: child.workflowId!, runId: child.runId! },
    };
  if (description.status.name === 'RUNNING') return undefined;
  const result = await night.result();
  if (result.outcome === 'skipped') {
    return { outcome: 'skipped', nightly: night.workflowId, running: result.running, reason: result.reason };
  }
  return { outcome: 'started', nightly: night.workflowId, switch: result.switch };
}

export async function deleteNightlySchedule(client: Client, env: string): Promise<void> {
  await (await existing(client, env)).handle.delete();
}
