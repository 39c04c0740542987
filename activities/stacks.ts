import { Context } from '@temporalio/activity';
import type { StackDescription } from '../src/cloud/ports.ts';
import type { EnvironmentContext } from './deps.ts';
import { refuse } from './failures.ts';
import type { CreateStackInput } from './types.ts';

export function stackActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** Starts creating the stack; the provisioner treats a repeat for the same workflow as a no-op. */
    async createStack(input: CreateStackInput): Promise<void> {
      const { env, ports } = await context(input.env);
      await ports.stacks.create({
        name: input.name,
        env: input.env,
        colour: input.colour,
        workflowId: input.workflowId,
        template: env.template,
        parameters: { ...env.parameters, Version: input.version },
      });
    },

    async waitForStack(input: { env: string; name: string }): Promise<StackDescription> {
      const { ports } = await context(input.env);
      const activity = Context.current();
      activity.heartbeat();
      const stack = await ports.stacks.waitUntilReady(
        input.name,
        (progress) => activity.heartbeat(progress),
        activity.cancellationSignal,
      );
      if (!stack.outputs) throw refuse('StackWithoutOutputs', `stack ${input.name} is ready but has no outputs`);
      return stack;
    },

    async listStacks(envName: string): Promise<StackDescription[]> {
      const { ports } = await context(envName);
      return ports.stacks.list(envName);
    },

    /**
     * Deletes a stack and waits until it is gone. DNS is read again right before the delete:
     * the stack clients are sent to is never deleted, whatever the caller believed.
     */
    async deleteStack(input: { env: string; name: string }): Promise<void> {
      const { env, ports } = await context(input.env);
      const activity = Context.current();
      const record = await ports.dns.current(env.recordName);
      if (record?.stack === input.name) {
        throw refuse(
          'LiveStackProtected',
          `refusing to delete stack ${input.name}: DNS record ${env.recordName} points to it`,
        );
      }
      activity.heartbeat();
      await ports.stacks.delete(input.name);
      await ports.stacks.waitUntilDeleted(
        input.name,
        (progress) => activity.heartbeat(progress),
        activity.cancellationSignal,
      );
    },
  };
}
