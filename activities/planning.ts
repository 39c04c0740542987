import type { Environment } from '../src/config/environment.ts';
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
  };
}

export function planningActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** The environment's settings and the stack DNS sends clients to now, if any. */
    async planSwitch(envName: string): Promise<Plan> {
      const { env, ports } = await context(envName);
      const record = await ports.dns.current(env.recordName);
      if (!record) return { settings: settingsOf(env) };
      const stack = await ports.stacks.describe(record.stack);
      return { settings: settingsOf(env), live: { record, stack } };
    },
  };
}
