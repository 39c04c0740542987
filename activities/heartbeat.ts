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
