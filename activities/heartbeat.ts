import { Context } from '@temporalio/activity';

/** Heartbeats on a timer while `work` runs, for calls that report no progress of their own. */
export async function withHeartbeats<T>(work: (signal: AbortSignal) => Promise<T>, everyMs = 1_000): Promise<T> {
  const context = Context.current();
  context.heartbeat();
  const timer = setInterval(() => context.heartbeat(), everyMs);
  try {
    return await work(context.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Heartbeats the latest progress on a timer for as long as an activity runs, not once per batch:
 * one slow batch (large items, a store that imports line by line) must not outlast the heartbeat
 * timeout and fail every retry on the same batch. `progress` records what a retry resumes from.
 */
export class ProgressHeartbeat<T> {
  private readonly context = Context.current();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private details: T,
    everyMs = 1_000,
  ) {
    this.context.heartbeat(details);
    this.timer = setInterval(() => this.context.heartbeat(this.details), everyMs);
  }

  progress(details: T): void {
    this.details = details;
    this.context.heartbeat(details);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Ends an attempt's own work this long before the server would time the attempt out. */
const ATTEMPT_MARGIN_MS = 1_000;

/**
 * Runs `work` so that nothing it sends outlives the attempt: its signal aborts when the attempt is
 * cancelled (a heartbeat's answer tells of a cancelled or terminated run) or a margin before the
 * attempt's start-to-close timeout, measured on this worker's monotonic clock from now.
 */
export async function withinAttempt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const { startToCloseTimeoutMs } = Context.current().info;
  const deadline = AbortSignal.timeout(Math.max(1, startToCloseTimeoutMs - ATTEMPT_MARGIN_MS));
  return withHeartbeats((cancelled) => work(AbortSignal.any([cancelled, deadline])));
}

/** Who sends a change of the fence: this step of this run, the same for every attempt of it. */
export function changedBy(): string {
  const { workflowExecution, activityId } = Context.current().info;
  return `${workflowExecution?.workflowId ?? 'standalone'}/${workflowExecution?.runId ?? '-'}/${activityId}`;
}
