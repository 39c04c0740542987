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

  constructor(private details: T, everyMs = 1_000) {
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
