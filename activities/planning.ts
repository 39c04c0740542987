import { Context } from '@temporalio/activity';
import type { Environment } from '../src/config/environment.ts';
import { observeStacks } from '../src/switch/observe.ts';
import { stackRoles } from '../src/switch/roles.ts';
import type { EnvironmentContext } from './deps.ts';
import type { Plan, SwitchSettings } from './types.ts';

export function settingsOf(env: Environment): SwitchSettings {
  return {
    profile: env.profile,
    recordName: env.recordName,
    ttl: env.ttl,
    approval: env.approval,
    approvalTimeoutSeconds: env.approvalTimeoutSeconds,
    verifySeconds: env.verifySeconds,
    drainSeconds: env.drainSeconds,
    keepStacks: env.keepStacks,
    catchUpFenceBelow: env.catchUpFenceBelow,
    fenceLeaseSeconds: env.fenceLeaseSeconds,
    maxWritePauseSeconds: env.maxWritePauseSeconds,
  };
}

export function planningActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /**
     * The environment's settings, one look at its stacks, and the stack DNS sends clients to now,
     * by the roles of src/switch/roles.ts: the stack that takes the writes (a stack that serves is
     * caught up from and fenced whatever its CloudFormation status says), and the stack DNS names
     * when that one forwards to it (a run died between its commit and DNS).
     */
    async planSwitch(envName: string): Promise<Plan> {
      const { env, ports, admin } = await context(envName);
      const observed = await observeStacks({
        env: envName,
        recordName: env.recordName,
        ports,
        admin,
        signal: Context.current().cancellationSignal,
      });
      const { record } = observed;
      if (!record) return { settings: settingsOf(env), observed };
      const { live, writer } = stackRoles(observed);
      const silent = writer && observed.silent?.[writer.name];
      // Whether it forwards decides which stack is fenced: never guessed.
      if (silent) throw new Error(`stack ${writer.name}, which DNS leads to, did not answer its admin API: ${silent}`);
      return {
        settings: settingsOf(env),
        observed,
        live: {
          record,
          stack: writer,
          ...(writer && live && writer.name !== live.name ? { forwardedBy: live.name } : {}),
        },
      };
    },
  };
}
