import { setTimeout as sleep } from 'node:timers/promises';
import { CloudError } from '../errors.ts';

export interface PollOptions {
  /** First pause between two polls. */
  initialMs: number;
  /** Pauses grow by half each poll up to this. */
  maxMs: number;
  /** Give up (retryably: the thing may still finish) after this long. */
  timeoutMs: number;
}

/**
 * Calls `check` until it returns a value, pausing with backoff in between; bounded by
 * `timeoutMs` so no wait outlives its activity, and cut short by `signal`.
 */
export async function pollUntil<T>(
  what: string,
  resource: string,
  options: PollOptions,
  check: () => Promise<T | undefined>,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let pause = options.initialMs;
  for (;;) {
    signal?.throwIfAborted();
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() + pause > deadline) {
      throw new CloudError(
        `${what} for ${resource} did not finish within ${options.timeoutMs} ms`,
        true,
        'Timeout',
        resource,
      );
    }
    await sleep(pause, undefined, signal ? { signal } : undefined);
    pause = Math.min(options.maxMs, Math.ceil(pause * 1.5));
  }
}
