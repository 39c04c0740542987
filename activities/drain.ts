import { Context } from '@temporalio/activity';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import type { StackActivity } from './types.ts';

/**
 * Drain, undrain and their evidence are per node: through the load balancer they would reach one
 * node at random. A stack whose outputs list no nodes cannot be drained, and says so.
 */
function nodesOf(input: { adminUrl: string; nodes: string[] }): string[] {
  if (input.nodes.length === 0)
    throw refuse(
      'NoNodes',
      `the outputs of the stack at ${input.adminUrl} list no nodes: drain and its evidence are per node`,
    );
  return input.nodes;
}

export function drainActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** POST /admin/drain on every node: their streams get `reconnect` and close. */
    async drainStack(input: { env: string; adminUrl: string; nodes: string[] }): Promise<void> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      await Promise.all(nodesOf(input).map((node) => client.drain(node, signal)));
    },

    /**
     * POST /admin/undrain on every node: ready and taking streams again, as before a switch drained
     * them. A node that is not draining answers the same, so a retry is harmless.
     */
    async undrainStack(input: { env: string; adminUrl: string; nodes: string[] }): Promise<void> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      await Promise.all(nodesOf(input).map((node) => client.undrain(node, signal)));
    },

    /** Open streams, request rate and the flip's counts summed over the nodes: the evidence the drain wait needs. */
    async stackActivity(input: { env: string; adminUrl: string; nodes: string[] }): Promise<StackActivity> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      const answers = await Promise.allSettled(nodesOf(input).map((node) => client.stats(node, signal)));
      const flip = { requestsHeld: 0, holdsTimedOut: 0, requestsForwarded: 0 };
      const total: StackActivity = { openStreams: 0, requestRate: 0, unreachable: 0, flip };
      for (const answer of answers) {
        if (answer.status === 'rejected') total.unreachable += 1;
        else {
          total.openStreams += answer.value.openStreams;
          total.requestRate += answer.value.requestRate;
          flip.requestsHeld += answer.value.flip?.requestsHeld ?? 0;
          flip.holdsTimedOut += answer.value.flip?.holdsTimedOut ?? 0;
          flip.requestsForwarded += answer.value.flip?.requestsForwarded ?? 0;
        }
      }
      return total;
    },
  };
}
