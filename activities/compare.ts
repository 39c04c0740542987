import { Context } from '@temporalio/activity';
import type { StackAdmin } from '../src/navcloud/admin-client.ts';
import { compareStacks, type StackComparison } from '../src/navcloud/compare.ts';
import { decodeCursor } from '../src/navcloud/cursor.ts';
import type { EnvironmentContext } from './deps.ts';

export interface CompareStacksInput {
  env: string;
  /** The old (frozen: fenced or forwarding) stack's admin URL. */
  fromAdminUrl: string;
  /** The new stack's admin URL. */
  toAdminUrl: string;
  /** How many differing items to name (default 20). */
  firstN?: number;
  /**
   * Where the copy under the old stack's fence ended: its fence held until the commit, so it
   * acknowledged nothing past this. Items past it are writes the fence caught (stored on Riak,
   * answered as refused), and are not compared. Absent in runs before fencing tokens.
   */
  oldThrough?: string;
}

export function compareActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /**
     * Every item of the old stack against the new one (src/navcloud/compare.ts), both listings
     * streamed once. Differences are returned, not thrown: the workflow decides to roll back.
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
        const old = admin(input.fromAdminUrl);
        return await compareStacks(
          input.oldThrough ? acknowledgedOnly(old, input.oldThrough) : old,
          admin(input.toAdminUrl),
          {
            firstN: input.firstN,
            itemsPerSecond: env.verifyItemsPerSecond,
            signal: activity.cancellationSignal,
            onProgress: (itemsCompared) => {
              compared = itemsCompared;
            },
          },
        );
      } finally {
        clearInterval(timer);
      }
    },
  };
}

/** The stack's listing of items numbered up to `through` only. */
function acknowledgedOnly(stack: StackAdmin, through: string): StackAdmin {
  const last = decodeCursor(through) ?? 0;
  return {
    ...stack,
    async *revisionsById(signal) {
      let items = 0;
      for await (const line of stack.revisionsById(signal)) {
        if (line.kind === 'end') {
          yield { kind: 'end', cursor: through, items };
          return;
        }
        if ((decodeCursor(line.cursor) ?? 0) > last) continue;
        items += 1;
        yield line;
      }
    },
  };
}
