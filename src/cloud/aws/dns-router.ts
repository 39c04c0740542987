import { resolve4 } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  TestDNSAnswerCommand,
  type Change,
  type ResourceRecordSet,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import type { DnsRecordState, DnsRouter, DnsSwitchRequest, DnsTarget } from '../ports.ts';
import { CloudError, DnsConflictError } from '../errors.ts';
import { fqdn, sameName, sameState, sameTarget } from '../dns-target.ts';
import type { Logger } from '../../logging.ts';
import { awsCall, causeName } from './classify.ts';
import { pollUntil, type PollOptions } from './poll.ts';

/** Checks that resolvers answer `recordName` with `target`. */
export type AnswerCheck = (recordName: string, target: DnsTarget) => Promise<boolean>;

export interface Route53DnsRouterOptions {
  route53: Route53Client;
  hostedZoneId: string;
  /** Replaces TestDNSAnswer (moto has none; the local profile asks its own DNS responder). */
  answerCheck?: AnswerCheck;
  poll?: Partial<PollOptions>;
  /** Spacing of this router's Route53 calls: the API allows 5 requests per second per account. */
  minIntervalMs?: number;
  logger: Logger;
}

/** The ownership record written in the same batch as the record: `_switchyard.<record>` TXT "stack=<name>". */
export function ownerName(recordName: string): string {
  return `_switchyard.${fqdn(recordName)}`;
}

export function describeState(state: DnsRecordState | undefined): string {
  if (!state) return 'no record';
  const target =
    state.target.kind === 'alias' ? `alias ${state.target.dnsName}` : `A ${state.target.addresses.join(',')}`;
  return `${target} (stack ${state.stack || 'unknown'}, ttl ${state.ttl})`;
}

function recordSets(state: DnsRecordState): ResourceRecordSet[] {
  const name = fqdn(state.recordName);
  const record: ResourceRecordSet =
    state.target.kind === 'alias'
      ? {
          Name: name,
          Type: 'A',
          AliasTarget: {
            DNSName: state.target.dnsName,
            HostedZoneId: state.target.hostedZoneId,
            EvaluateTargetHealth: true,
          },
        }
      : { Name: name, Type: 'A', TTL: state.ttl, ResourceRecords: state.target.addresses.map((Value) => ({ Value })) };
  const sets = [record];
  if (state.stack)
    sets.push({
      Name: ownerName(name),
      Type: 'TXT',
      TTL: state.ttl,
      ResourceRecords: [{ Value: `"stack=${state.stack}"` }],
    });
  return sets;
}

// Route53's words when a DELETE does not match the record any more, or a CREATE finds one.
const CONFLICT = /not found|do not match|already exists/i;

/**
 * The public name on Route53. A switch is one change batch that DELETEs exactly the records it
 * expects and CREATEs the new ones, so Route53 itself refuses it if anyone changed the record
 * in between. The router also compares before sending, because emulators apply batches loosely.
 */
export class Route53DnsRouter implements DnsRouter {
  private readonly route53: Route53Client;
  private readonly zone: string;
  private readonly poll: PollOptions;
  private readonly minIntervalMs: number;
  private readonly log: Logger;
  private nextCallAt = 0;

  constructor(private readonly options: Route53DnsRouterOptions) {
    this.route53 = options.route53;
    this.zone = options.hostedZoneId;
    this.poll = { initialMs: 2_000, maxMs: 10_000, timeoutMs: 15 * 60_000, ...options.poll };
    this.minIntervalMs = options.minIntervalMs ?? 200;
    this.log = options.logger.child({ component: 'route53-dns' });
  }

  async current(recordName: string): Promise<DnsRecordState | undefined> {
    const records = await this.recordSetsNamed(recordName, fqdn(recordName), 'A');
    if (records.length === 0) return undefined;
    if (records.length > 1 || records[0]!.SetIdentifier) {
      throw new CloudError(
        `${recordName} has ${records.length} A record sets with a routing policy; Switchyard manages a simple record only`,
        false,
        'Validation',
        recordName,
      );
    }
    const record = records[0]!;
    const owner = (await this.recordSetsNamed(recordName, ownerName(recordName), 'TXT'))[0];
    const stack = owner?.ResourceRecords?.map((r) => /^"stack=(.*)"$/.exec(r.Value ?? '')?.[1]).find(Boolean) ?? '';
    const target: DnsTarget = record.AliasTarget
      ? {
          kind: 'alias',
          dnsName: record.AliasTarget.DNSName ?? '',
          hostedZoneId: record.AliasTarget.HostedZoneId ?? '',
        }
      : { kind: 'a', addresses: (record.ResourceRecords ?? []).map((r) => r.Value ?? '') };
    const ttl = record.TTL ?? owner?.TTL ?? 60;
    return { recordName, ttl, target, stack };
  }

  async switch(request: DnsSwitchRequest): Promise<string> {
    const wanted: DnsRecordState = {
      recordName: request.recordName,
      ttl: request.ttl,
      target: request.target,
      stack: request.stack,
    };
    const found = await this.current(request.recordName);
    if (sameState(found, wanted) && !sameState(found, request.expected)) {
      // A retry after the batch applied but its answer was lost. Re-writing the ownership record
      // unchanged gives a fresh change id: once it is INSYNC, so is every earlier change to the zone.
      this.log.info(
        { recordName: request.recordName, stack: request.stack },
        'record already switched; re-asserting ownership',
      );
      const owner = recordSets(wanted).filter((r) => r.Type === 'TXT');
      return this.apply(
        request.recordName,
        owner.map((r): Change => ({ Action: 'UPSERT', ResourceRecordSet: r })),
        `switch ${request.recordName} to ${request.stack} (repeat)`,
      );
    }
    if (!sameState(found, request.expected)) {
      throw new DnsConflictError(
        request.recordName,
        `expected ${describeState(request.expected)}, found ${describeState(found)}`,
      );
    }
    const changeId = await this.replace(request.expected, wanted, `switch ${request.recordName} to ${request.stack}`);
    this.log.info(
      { recordName: request.recordName, from: describeState(request.expected), to: describeState(wanted), changeId },
      'record switched',
    );
    return changeId;
  }

  async waitInSync(changeId: string, onPoll?: () => void, signal?: AbortSignal): Promise<void> {
    const id = changeId.replace(/^\/change\//, '');
    await pollUntil(
      'Route53 change propagation',
      id,
      this.poll,
      async () => {
        const out = await this.call('route53:GetChange', id, () => this.route53.send(new GetChangeCommand({ Id: id })));
        onPoll?.();
        return out.ChangeInfo?.Status === 'INSYNC' ? true : undefined;
      },
      signal,
    );
  }

  async verify(recordName: string, target: DnsTarget): Promise<boolean> {
    if (this.options.answerCheck) return this.options.answerCheck(recordName, target);
    const out = await this.call('route53:TestDNSAnswer', recordName, () =>
      this.route53.send(
        new TestDNSAnswerCommand({
          HostedZoneId: this.zone,
          RecordName: fqdn(recordName),
          RecordType: 'A',
        }),
      ),
    );
    const answered = out.RecordData ?? [];
    if (out.ResponseCode !== 'NOERROR' || answered.length === 0) return false;
    if (target.kind === 'a') return sameTarget(target, { kind: 'a', addresses: answered });
    // Route53 answers an alias with the load balancer's addresses: they must all be the target's.
    const expected = new Set(await resolve4(target.dnsName.replace(/\.$/, '')).catch(() => [] as string[]));
    return answered.every((address) => expected.has(address));
  }

  /** One batch: DELETE exactly `from` (nothing when undefined), CREATE `to`. */
  private async replace(from: DnsRecordState | undefined, to: DnsRecordState, comment: string): Promise<string> {
    const batch = (create: 'CREATE' | 'UPSERT'): Change[] => [
      ...(from ? recordSets(from).map((r): Change => ({ Action: 'DELETE', ResourceRecordSet: r })) : []),
      ...recordSets(to).map((r): Change => ({ Action: create, ResourceRecordSet: r })),
    ];
    try {
      return await this.apply(to.recordName, batch('CREATE'), comment);
    } catch (err) {
      if (!(err instanceof DnsConflictError) || !/already exists/i.test(err.message)) throw err;
      if (!sameState(await this.current(to.recordName), from)) throw err;
      // moto refuses a CREATE identical to any it has ever applied, even after that record was
      // deleted (Route53 checks the zone itself and never gets here). The record is still exactly
      // as expected, so the DELETEs keep the batch conditional and UPSERT stands in for CREATE.
      this.log.warn(
        { recordName: to.recordName },
        'CREATE refused although the record is as expected; retrying with UPSERT',
      );
      return this.apply(to.recordName, batch('UPSERT'), comment);
    }
  }

  private async apply(recordName: string, changes: Change[], comment: string): Promise<string> {
    try {
      const out = await this.call('route53:ChangeResourceRecordSets', recordName, () =>
        this.route53.send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: this.zone,
            ChangeBatch: { Comment: comment.slice(0, 256), Changes: changes },
          }),
        ),
      );
      return out.ChangeInfo?.Id ?? '';
    } catch (err) {
      if (
        err instanceof CloudError &&
        causeName(err) === 'InvalidChangeBatch' &&
        CONFLICT.test((err.cause as Error).message)
      ) {
        throw new DnsConflictError(recordName, `Route53 refused the change batch: ${(err.cause as Error).message}`);
      }
      throw err;
    }
  }

  /** Record sets with exactly this name and type, read across ListResourceRecordSets pages. */
  private async recordSetsNamed(recordName: string, name: string, type: RRType): Promise<ResourceRecordSet[]> {
    const found: ResourceRecordSet[] = [];
    let start: { name?: string; type?: RRType; id?: string } = { name, type };
    for (;;) {
      const page = await this.call('route53:ListResourceRecordSets', recordName, () =>
        this.route53.send(
          new ListResourceRecordSetsCommand({
            HostedZoneId: this.zone,
            StartRecordName: start.name,
            StartRecordType: start.type,
            StartRecordIdentifier: start.id,
          }),
        ),
      );
      for (const set of page.ResourceRecordSets ?? []) {
        // Route53 lists in order from the start name: the first other name or type ends our records.
        if (!sameName(set.Name ?? '', name) || set.Type !== type) return found;
        found.push(set);
      }
      // The next page starts with someone else's records: no need to ask for it.
      if (!page.IsTruncated || !sameName(page.NextRecordName ?? '', name) || page.NextRecordType !== type) return found;
      start = { name: page.NextRecordName, type: page.NextRecordType, id: page.NextRecordIdentifier };
    }
  }

  /** Spaces calls to stay under Route53's per-account rate, then classifies failures. */
  private async call<T>(operation: string, resource: string, send: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const wait = this.nextCallAt - now;
    this.nextCallAt = Math.max(now, this.nextCallAt) + this.minIntervalMs;
    if (wait > 0) await sleep(wait);
    // The zone goes into the operation so that the message names it; the resource stays the record.
    return awsCall(`${operation} (zone ${this.zone})`, resource, send);
  }
}
