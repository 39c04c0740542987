import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { DnsConflictError } from '../src/cloud/errors.ts';
import type { DnsTarget } from '../src/cloud/ports.ts';
import type { EnvironmentContext } from './deps.ts';
import type { DnsSwitchResult } from './types.ts';

const sameTarget = (a: DnsTarget, b: DnsTarget) => JSON.stringify(a) === JSON.stringify(b);

export function dnsActivities(context: (env: string) => Promise<EnvironmentContext>, pollMs: number) {
  return {
    /**
     * Points the record at `stack` only if it still belongs to `expectedStack` (null: no record).
     * The adapter's change batch is itself a compare-and-swap on what was just read. A record that
     * already points at `stack` means an earlier attempt applied the change: nothing to do.
     */
    async switchDns(input: { env: string; expectedStack: string | null; stack: string; target: DnsTarget }): Promise<DnsSwitchResult> {
      const { env, ports } = await context(input.env);
      const current = await ports.dns.current(env.recordName);
      if (current && current.stack === input.stack && sameTarget(current.target, input.target)) {
        return { changeId: null, record: current };
      }
      if ((current?.stack ?? null) !== input.expectedStack) {
        throw new DnsConflictError(env.recordName,
          `expected it to belong to ${input.expectedStack ?? 'no stack'} but it belongs to ${current?.stack ?? 'no stack'}`);
      }
      const changeId = await ports.dns.switch({
        recordName: env.recordName, ttl: env.ttl, expected: current, stack: input.stack, target: input.target,
      });
      return { changeId, record: { recordName: env.recordName, ttl: env.ttl, target: input.target, stack: input.stack } };
    },

    async waitDnsInSync(input: { env: string; changeId: string }): Promise<void> {
      const { ports } = await context(input.env);
      const activity = Context.current();
      activity.heartbeat();
      await ports.dns.waitInSync(input.changeId, () => activity.heartbeat(), activity.cancellationSignal);
    },

    /** Asks until resolvers answer with the target, for at most `withinSeconds`. */
    async verifyDns(input: { env: string; target: DnsTarget; withinSeconds: number }): Promise<boolean> {
      const { env, ports } = await context(input.env);
      const activity = Context.current();
      const deadline = Date.now() + input.withinSeconds * 1000;
      for (;;) {
        activity.heartbeat();
        if (await ports.dns.verify(env.recordName, input.target)) return true;
        if (Date.now() >= deadline) return false;
        await sleep(pollMs, undefined, { signal: activity.cancellationSignal });
      }
    },
  };
}
