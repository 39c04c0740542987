import { Context } from '@temporalio/activity';
import { compareStacks, type StackComparison } from '../src/navcloud/compare.ts';
import type { EnvironmentContext } from './deps.ts';

export interface CompareStacksInput {
  env: string;
  /** The old (frozen: fenced or forwarding) stack's admin URL. */
  fromAdminUrl: string;
  /** The new stack's admin URL. */
  toAdminUrl: string;
  /** How many differing items to name (default 20). */
  firstN?: number;
}

export function compareActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /**
     * Every item of the old stack against the new one (same id, revision equal or newer), both
     * exports streamed once. Differences are returned, not thrown: the workflow decides to roll back.
     * Idempotent: the old stack is frozen, so a retry compares the same items again.
     */
    async compareStacks(input: CompareStacksInput): Promise<StackComparison> {
      const { admin, env } = await context(input.env);
      const activity = Context.current();
      activity.heartbeat({ itemsCompared: 0 });
      // Heartbeat on a timer too: a slow export can go longer than a heartbeat timeout between progress calls.
      let compared = 0;
      const timer = setInterval(() => activity.heartbeat({ itemsCompared: compared }), 1_000);
      try {
        return await compareStacks(admin(input.fromAdminUrl), admin(input.toAdminUrl), {
          firstN: input.firstN,
          itemsPerSecond: env.verifyItemsPerSecond,
          signal: activity.cancellationSignal,
          onProgress: (itemsCompared) => {
            compared = itemsCompared;
          },
        });
      } finally {
        clearInterval(timer);
      }
    },
  };
}
