/**
 * The nightly refresh of an environment (DESIGN §5): a Temporal Schedule `nightly-refresh-<env>`
 * that starts a stackSwitch with trigger `schedule`, skipping a night while the last one still runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, ServiceError,
  type Client, type ScheduleDescription, type ScheduleHandle, type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { ConfigError } from '../config/environment.ts';
import { TASK_QUEUE, scheduleId, switchWorkflowId, type SwitchInput } from '../switch/contract.ts';
import { switchStartAttributes } from './switch-attributes.ts';

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
}

export interface NightlyScheduleView {
  scheduleId: string;
  cron: string;
  timezone: string;
  paused: boolean;
  note?: string;
  version: string;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; workflowId: string; runId: string }>;
  running: string[];
}

/** The cron travels in the action's memo: the server keeps only the calendar it compiles from it. */
interface ActionMemo {
  nightlyCron: string;
}

function action(refresh: NightlyRefresh, cron: string): ScheduleOptionsStartWorkflowAction<(input: SwitchInput) => Promise<unknown>> {
  const input: SwitchInput = { env: refresh.env, backup: refresh.backup ?? 'latest', trigger: 'schedule', version: refresh.version };
  const memo: ActionMemo = { nightlyCron: cron };
  return {
    type: 'startWorkflow',
    workflowType: 'stackSwitch',
    // The server appends the scheduled time to this id, so nights never collide with each other.
    workflowId: switchWorkflowId(refresh.env),
    taskQueue: refresh.taskQueue ?? TASK_QUEUE,
    args: [input],
    memo: { ...memo },
    typedSearchAttributes: switchStartAttributes(input),
  };
}

/** The SDK turns the server's "invalid schedule spec" into a TypeError; either way it is the cron's fault. */
function rethrowInvalid(err: unknown, cron: string): never {
  if (err instanceof TypeError) throw new ConfigError(`cron expression '${cron}' is not valid: ${err.message}`, { cause: err });
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

async function describe(client: Client, env: string): Promise<{ handle: ScheduleHandle; description: ScheduleDescription } | undefined> {
  const handle = client.schedule.getHandle(scheduleId(env));
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

async function existing(client: Client, env: string): Promise<{ handle: ScheduleHandle; description: ScheduleDescription }> {
  const found = await describe(client, env);
  if (!found) throw new ConfigError(`environment ${env} has no nightly schedule (${scheduleId(env)}): create it with \`switchyard schedule set --env ${env}\``);
  return found;
}

export async function showNightlySchedule(client: Client, env: string): Promise<NightlyScheduleView | undefined> {
  const found = await describe(client, env);
  if (!found) return undefined;
  const { description } = found;
  const startAction = description.action.type === 'startWorkflow' ? description.action : undefined;
  const input = startAction?.args?.[0] as SwitchInput | undefined;
  return {
    scheduleId: description.scheduleId,
    cron: (startAction?.memo as ActionMemo | undefined)?.nightlyCron ?? '(not set by switchyard)',
    timezone: description.spec.timezone ?? TIMEZONE,
    paused: description.state.paused,
    ...(description.state.note ? { note: description.state.note } : {}),
    version: input?.version ?? '(unknown)',
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

/**
 * Runs the nightly switch now, under the schedule's overlap policy, and returns the workflow it
 * started — or undefined when none started within `waitMs` (skipped: the last night still runs).
 */
export async function triggerNightlySchedule(client: Client, env: string, waitMs = 5_000): Promise<string | undefined> {
  const { handle, description } = await existing(client, env);
  const before = new Set(description.info.recentActions.map((run) => run.action.workflow.firstExecutionRunId));
  // The SDK's default for a manual trigger is ALLOW_ALL, which would start a second switch.
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const now = await handle.describe();
    const started = now.info.recentActions.find((run) => !before.has(run.action.workflow.firstExecutionRunId));
    if (started) return started.action.workflow.workflowId;
    await sleep(200);
  }
  return undefined;
}

export async function deleteNightlySchedule(client: Client, env: string): Promise<void> {
  await (await existing(client, env)).handle.delete();
}
