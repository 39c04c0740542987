import { Context } from '@temporalio/activity';
import type { EnvironmentContext } from './deps.ts';
import type { StackActivity } from './types.ts';

export function drainActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** POST /admin/drain on every node: their streams get `reconnect` and close. */
    async drainStack(input: { env: string; adminUrl: string; nodes: string[] }): Promise<void> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      await Promise.all(input.nodes.map((node) => client.drain(node, signal)));
    },

    /**
     * POST /admin/undrain on every node: ready and taking streams again, as before a switch drained
     * them. A node that is not draining answers the same, so a retry is harmless.
     */
    async undrainStack(input: { env: string; adminUrl: string; nodes: string[] }): Promise<void> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      await Promise.all(input.nodes.map((node) => client.undrain(node, signal)));
    },

    /** Open streams and request rate summed over the nodes: the evidence the drain wait needs. */
    async stackActivity(input: { env: string; adminUrl: string; nodes: string[] }): Promise<StackActivity> {
      const { admin } = await context(input.env);
      const client = admin(input.adminUrl);
      const signal = Context.current().cancellationSignal;
      const answers = await Promise.allSettled(input.nodes.map((node) => client.stats(node, signal)));
      const total: StackActivity = { openStreams: 0, requestRate: 0, unreachable: 0 };
      for (const answer of answers) {
        if (answer.status === 'rejected') total.unreachable += 1;
        else {
          total.openStreams += answer.value.openStreams;
          total.requestRate += answer.value.requestRate;
        }
      }
      return total;
    },
  };
}
