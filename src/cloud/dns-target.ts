/**
 * Comparing DNS targets and records the way Route53 spells them. Pure: the Route53 adapter, the
 * planning activity and workflow code all compare here.
 */
import type { DnsRecordState, DnsTarget } from './ports.ts';

export function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** Route53 answers names with a trailing dot and escapes some characters as octal (e.g. `\052` for `*`). */
export function sameName(a: string, b: string): boolean {
  const norm = (n: string) =>
    fqdn(n)
      .toLowerCase()
      .replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return norm(a) === norm(b);
}

/** Zone ids come bare from stack outputs and as `/hostedzone/ID` from some Route53 answers. */
const zoneId = (id: string) => id.replace(/^\/?hostedzone\//i, '');

/** Whether two targets send clients to the same place, however Route53 spells them. */
export function sameTarget(a: DnsTarget, b: DnsTarget): boolean {
  if (a.kind === 'alias' && b.kind === 'alias')
    return sameName(a.dnsName, b.dnsName) && zoneId(a.hostedZoneId) === zoneId(b.hostedZoneId);
  if (a.kind === 'a' && b.kind === 'a') return [...a.addresses].sort().join(',') === [...b.addresses].sort().join(',');
  return false;
}

export function sameState(a: DnsRecordState | undefined, b: DnsRecordState | undefined): boolean {
  if (!a || !b) return a === b;
  // An alias has no TTL of its own; ours lives on the ownership record and is compared there.
  return a.stack === b.stack && a.ttl === b.ttl && sameTarget(a.target, b.target);
}

/** Whether the record sends clients to this stack: by its ownership record, or by its target when that is missing. */
export function pointsTo(
  record: DnsRecordState | undefined | null,
  stack: { name: string; dnsTarget: DnsTarget },
): boolean {
  if (!record) return false;
  return record.stack ? record.stack === stack.name : sameTarget(record.target, stack.dnsTarget);
}
