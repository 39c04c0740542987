import { Context } from '@temporalio/activity';
import type { Environment } from '../src/config/environment.ts';
import { sameTarget } from '../src/cloud/dns-target.ts';
import type { EnvironmentContext } from './deps.ts';
import type { Plan, SwitchSettings } from './types.ts';

/** Forwards followed from the stack DNS names to the one that takes the writes. */
const MAX_FORWARD_HOPS = 3;

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
     * The environment's settings and the stack DNS sends clients to now, if any. That stack is found
     * by the ownership record and, when the ownership record is missing or names no stack with
     * outputs, by the record's target: a stack that serves is caught up from and fenced whatever its
     * CloudFormation status says. When that stack forwards (a run died between its commit and
     * DNS), the stack it forwards to is the one that takes the writes: the live one.
     */
    async planSwitch(envName: string): Promise<Plan> {
      const { env, ports, admin } = await context(envName);
      const record = await ports.dns.current(env.recordName);
      if (!record) return { settings: settingsOf(env) };
      const stacks = await ports.stacks.list(envName);
      const named = record.stack ? await ports.stacks.describe(record.stack) : undefined;
      const serving = named?.outputs ? named : stacks.find((s) => s.outputs && sameTarget(s.outputs.dnsTarget, record.target)) ?? named;
      // A run that died between forward and DNS left the named stack forwarding: the writer is where it forwards.
      let writer = serving;
      const seen = new Set<string>();
      for (let hop = 0; hop < MAX_FORWARD_HOPS && writer?.outputs; hop += 1) {
        seen.add(writer.name);
        const { fence } = await admin(writer.outputs.adminUrl).stats(writer.outputs.adminUrl, Context.current().cancellationSignal);
        const next = fence.mode === 'forwarding' ? stacks.find((s) => s.outputs?.endpoint === fence.forwardTo) : undefined;
        // Two stacks forwarding to each other are a hand-over half done: the named one committed to the other, which opens next.
        if (!next || seen.has(next.name)) break;
        writer = next;
      }
      return {
        settings: settingsOf(env),
        live: { record, stack: writer, ...(writer && serving && writer.name !== serving.name ? { forwardedBy: serving.name } : {}) },
      };
    },
  };
}
