import { Context } from '@temporalio/activity';
import type { DnsTarget } from '../src/cloud/ports.ts';
import type { EnvironmentContext } from './deps.ts';
import type { ProbeResult } from './types.ts';

export function verifyActivities(context: (env: string) => Promise<EnvironmentContext>) {
  return {
    /** One look at the new stack as clients see it: the public name answers with it and it is healthy. */
    async probeStack(input: {
      env: string;
      endpoint: string;
      adminUrl: string;
      target: DnsTarget;
    }): Promise<ProbeResult> {
      const { env, ports, admin } = await context(input.env);
      const signal = Context.current().cancellationSignal;
      if (!(await ports.dns.verify(env.recordName, input.target))) {
        return { ok: false, detail: `${env.recordName} no longer answers with the new stack` };
      }
      if (!(await admin(input.adminUrl).healthy(input.endpoint, signal))) {
        return { ok: false, detail: `${input.endpoint}/healthz did not answer 200` };
      }
      return { ok: true, detail: 'healthy' };
    },
  };
}
