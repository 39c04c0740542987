import type { Environment } from '../src/config/environment.ts';
import { sameTarget } from '../src/cloud/dns-target.ts';
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
  };
}

export function planningActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /**
     * The environment's settings and the stack DNS sends clients to now, if any. That stack is found
     * by the ownership record and, when the ownership record is missing or names no stack with
     * outputs, by the record's target: a stack that serves is caught up from and fenced whatever its
     * CloudFormation status says.
     */
    async planSwitch(envName: string): Promise<Plan> {
      const { env, ports } = await context(envName);
      const record = await ports.dns.current(env.recordName);
      if (!record) return { settings: settingsOf(env) };
      const named = record.stack ? await ports.stacks.describe(record.stack) : undefined;
      if (named?.outputs) return { settings: settingsOf(env), live: { record, stack: named } };
      const serving = (await ports.stacks.list(envName)).find((s) => s.outputs && sameTarget(s.outputs.dnsTarget, record.target));
      return { settings: settingsOf(env), live: { record, stack: serving ?? named } };
    },
  };
}
