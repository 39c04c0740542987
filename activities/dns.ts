import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { DnsConflictError } from '../src/cloud/errors.ts';
import type { DnsRecordState, DnsTarget } from '../src/cloud/ports.ts';
import type { EnvironmentContext } from './deps.ts';
import type { DnsSwitchInput, DnsSwitchResult } from './types.ts';

export function dnsActivities(context: (env: string) => Promise<EnvironmentContext>, pollMs: number) {
  return {
    /** The record as it is now (null: there is none). */
    async readDns(envName: string): Promise<DnsRecordState | null> {
      const { env, ports } = await context(envName);
      return (await ports.dns.current(env.recordName)) ?? null;
    },

    /**
     * Points the record at `stack` only if it is still `expected`: one compare-and-swap, the
     * adapter's change batch. A retry whose earlier attempt applied the change (its answer lost)
     * finds the record already switched and succeeds with a fresh change id to wait on.
     */
    async switchDns(input: DnsSwitchInput): Promise<DnsSwitchResult> {
      const { env, ports } = await context(input.env);
      const expected = input.expected !== undefined ? (input.expected ?? undefined) : await legacyExpectation(input);
      const changeId = await ports.dns.switch({
        recordName: env.recordName,
        ttl: env.ttl,
        expected,
        stack: input.stack,
        target: input.target,
      });
      return {
        changeId,
        record: { recordName: env.recordName, ttl: env.ttl, target: input.target, stack: input.stack },
      };

      async function legacyExpectation(legacy: DnsSwitchInput): Promise<DnsRecordState | undefined> {
        const current = await ports.dns.current(env.recordName);
        // Already switched: the adapter recognises it from the wanted record, whatever is expected.
        if (current?.stack === legacy.stack) return current;
        if ((current?.stack ?? null) !== (legacy.expectedStack ?? null)) {
          throw new DnsConflictError(
            env.recordName,
            `expected it to belong to ${legacy.expectedStack ?? 'no stack'} but it belongs to ${current?.stack ?? 'no stack'}`,
          );
        }
        return current;
      }
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
