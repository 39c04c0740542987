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

/** An activity refused for good with this type of failure (`refuse` in activities/failures.ts). */
export function refusedWith(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

/** A decision of the workflow itself that ends the switch (not an activity failure). */
export function stop(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}
