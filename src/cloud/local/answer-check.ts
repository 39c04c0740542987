import { Resolver } from 'node:dns/promises';
import type { AnswerCheck } from '../aws/dns-router.ts';

/**
 * The local profile's stand-in for Route53's TestDNSAnswer (moto has none): ask the DNS
 * responder itself, over real DNS, whether it answers the record with exactly the target's
 * addresses. `server` is `host:port`.
 */
export function responderAnswerCheck(server: string): AnswerCheck {
  return async (recordName, target) => {
    if (target.kind !== 'a') return false;
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([server]);
    try {
      const answered = await resolver.resolve4(recordName.replace(/\.$/, ''));
      return [...answered].sort().join(',') === [...target.addresses].sort().join(',');
    } catch (err) {
      // No such name or no A record yet: not answered with the target, which is what a check reports.
      if (['ENOTFOUND', 'ENODATA'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
      throw err;
    }
  };
}
