import { ActivityFailure, ApplicationFailure, isCancellation } from '@temporalio/workflow';

/** One sentence for the report: the innermost message of an activity failure, else the error's own. */
export function reasonOf(err: unknown): string {
  if (isCancellation(err)) return 'cancelled';
  if (err instanceof ActivityFailure) {
    const cause = err.cause?.message ?? err.message;
    return `${err.activityType}: ${cause}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A decision of the workflow itself that ends the switch (not an activity failure). */
export function stop(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}
