/**
 * The one place where errors become Temporal failures: a CloudError that says a retry cannot
 * help, and a configuration error, fail the activity for good; everything else is retried.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { CloudError } from '../src/cloud/errors.ts';
import { ConfigError } from '../src/config/environment.ts';

export function toFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof CloudError && !err.retryable) {
    return ApplicationFailure.create({ message: err.message, type: err.code, nonRetryable: true, cause: err });
  }
  if (err instanceof ConfigError) {
    return ApplicationFailure.create({ message: err.message, type: 'ConfigError', nonRetryable: true });
  }
  return err;
}

/** A non-retryable failure this codebase raises itself (type names the refusal). */
export function refuse(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true });
}

export function withFailureConversion<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: T,
): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        // An adapter interrupted by cancellation throws its own AbortError: report the cancellation itself.
        const { cancellationSignal } = Context.current();
        if (cancellationSignal.aborted) throw cancellationSignal.reason;
        throw toFailure(err);
      }
    };
  }
  return wrapped as T;
}
