import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  InvalidChangeBatch,
  ListResourceRecordSetsCommand,
  Route53Client,
  TestDNSAnswerCommand,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import { DnsConflictError } from '../../src/cloud/errors.ts';
import type { DnsRecordState } from '../../src/cloud/ports.ts';
import { testLogger } from '../support/logger.ts';

const route53 = mockClient(Route53Client);
const zone = 'Z0123456789ABCDEFGHIJ';
const name = 'sync.navcloud.example.com';

function router(options: Partial<ConstructorParameters<typeof Route53DnsRouter>[0]> = {}) {
  return new Route53DnsRouter({
    logger: testLogger,
    route53: new Route53Client({ region: 'us-east-1' }),
    hostedZoneId: zone,
    minIntervalMs: 0,
    poll: { initialMs: 1, maxMs: 2, timeoutMs: 5_000 },
    ...options,
  });
}

const blueAlias: ResourceRecordSet = {
  Name: `${name}.`,
  Type: 'A',
  AliasTarget: {
    DNSName: 'blue-nlb-1.elb.eu-west-1.amazonaws.com.',
    HostedZoneId: 'Z2IFOLAFXWLO4F',
    EvaluateTargetHealth: true,
  },
};
const blueOwner: ResourceRecordSet = {
  Name: `_switchyard.${name}.`,
  Type: 'TXT',
  TTL: 60,
  ResourceRecords: [{ Value: '"stack=navcloud-prod-blue-1"' }],
};
const blueState: DnsRecordState = {
  recordName: name,
  ttl: 60,
  stack: 'navcloud-prod-blue-1',
  target: { kind: 'alias', dnsName: 'blue-nlb-1.elb.eu-west-1.amazonaws.com.', hostedZoneId: 'Z2IFOLAFXWLO4F' },
};
const green = {
  kind: 'alias' as const,
  dnsName: 'green-nlb-2.elb.eu-west-1.amazonaws.com',
  hostedZoneId: 'Z2IFOLAFXWLO4F',
};

/** Route53 lists from StartRecordName/Type/Identifier onwards, in its order; this zone answers one record set per page. */
function zoneOf(records: ResourceRecordSet[]) {
  const order = (n?: string, t?: string, id?: string) =>
    `${(n ?? '').split('.').reverse().join('.')} ${t ?? ''} ${id ?? ''}`;
  const key = (r: ResourceRecordSet) => order(r.Name, r.Type, r.SetIdentifier);
  route53
    .on(ListResourceRecordSetsCommand)
    .callsFake((input: { StartRecordName?: string; StartRecordType?: string; StartRecordIdentifier?: string }) => {
      const sorted = [...records].sort((a, b) => key(a).localeCompare(key(b)));
      const rest = sorted.filter(
        (r) => key(r) >= order(input.StartRecordName, input.StartRecordType, input.StartRecordIdentifier),
      );
      const next = rest[1];
      return {
        ResourceRecordSets: rest.slice(0, 1),
        IsTruncated: Boolean(next),
        MaxItems: 1,
        NextRecordName: next?.Name,
        NextRecordType: next?.Type,
        NextRecordIdentifier: next?.SetIdentifier,
      };
    });
}

beforeEach(() => route53.reset());

describe('Route53DnsRouter (aws-sdk-client-mock)', () => {
  // moto pages only when asked for MaxItems; this zone answers one record set per page, so the
  // router's paging requests themselves are checked.
  it('reads the record and its owner, one ListResourceRecordSets call each when the next page is not theirs', async () => {
    zoneOf([
      { Name: `${name}.`, Type: 'AAAA', TTL: 60, ResourceRecords: [{ Value: '::1' }] },
      blueAlias,
      blueOwner,
      { Name: `a.${name}.`, Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.0.1' }] },
    ]);
    expect(await router().current(name)).toEqual(blueState);
    const pages = route53
      .commandCalls(ListResourceRecordSetsCommand)
      .map((c) => [c.args[0].input.StartRecordName, c.args[0].input.StartRecordType]);
    expect(pages).toEqual([
      [`${name}.`, 'A'],
      [`_switchyard.${name}.`, 'TXT'],
    ]);
  });

  // Weighted records on several pages: moto ignores StartRecordIdentifier.
  it('follows ListResourceRecordSets pages while they hold the record, and refuses a record with a routing policy', async () => {
    const weighted = (id: string, ip: string): ResourceRecordSet => ({
      Name: `${name}.`,
      Type: 'A',
      SetIdentifier: id,
      Weight: 50,
      TTL: 60,
      ResourceRecords: [{ Value: ip }],
    });
    zoneOf([weighted('one', '10.0.0.1'), weighted('two', '10.0.0.2'), blueOwner]);
    await expect(router().current(name)).rejects.toMatchObject({
      code: 'Validation',
      message: expect.stringContaining('2 A record sets'),
    });
    const pages = route53.commandCalls(ListResourceRecordSetsCommand).map((c) => c.args[0].input);
    expect(pages.map((p) => [p.StartRecordName, p.StartRecordType, p.StartRecordIdentifier])).toEqual([
      [`${name}.`, 'A', undefined],
      [`${name}.`, 'A', 'two'],
    ]);
  });

  // moto accepts looser batches than Route53, so the exact batch sent is the thing checked.
  it('switches with one batch: DELETE of the exact current records, CREATE of the new, alias evaluating target health', async () => {
    zoneOf([blueAlias, blueOwner]);
    route53
      .on(ChangeResourceRecordSetsCommand)
      .resolves({ ChangeInfo: { Id: '/change/C123', Status: 'PENDING', SubmittedAt: new Date() } });
    const id = await router().switch({
      recordName: name,
      ttl: 60,
      expected: blueState,
      stack: 'navcloud-prod-green-2',
      target: green,
    });
    expect(id).toBe('/change/C123');
    const batches = route53.commandCalls(ChangeResourceRecordSetsCommand);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.args[0].input.HostedZoneId).toBe(zone);
    expect(batches[0]!.args[0].input.ChangeBatch?.Changes).toEqual([
      { Action: 'DELETE', ResourceRecordSet: blueAlias },
      { Action: 'DELETE', ResourceRecordSet: blueOwner },
      {
        Action: 'CREATE',
        ResourceRecordSet: {
          Name: `${name}.`,
          Type: 'A',
          AliasTarget: { DNSName: green.dnsName, HostedZoneId: green.hostedZoneId, EvaluateTargetHealth: true },
        },
      },
      {
        Action: 'CREATE',
        ResourceRecordSet: {
          Name: `_switchyard.${name}.`,
          Type: 'TXT',
          TTL: 60,
          ResourceRecords: [{ Value: '"stack=navcloud-prod-green-2"' }],
        },
      },
    ]);
  });

  // moto applies batches without checking DELETEs against the zone: the compare-and-swap refusal
  // that Route53 gives when the record changed between our read and our batch is mocked here.
  it('maps Route53 refusing the batch (record changed under us) to DnsConflictError', async () => {
    zoneOf([blueAlias, blueOwner]);
    route53.on(ChangeResourceRecordSetsCommand).rejects(
      new InvalidChangeBatch({
        message: `[Tried to delete resource record set [name='${name}.', type='A'] but the values provided do not match the current values]`,
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const error = await router()
      .switch({ recordName: name, ttl: 60, expected: blueState, stack: 'navcloud-prod-green-2', target: green })
      .catch((e) => e);
    expect(error).toBeInstanceOf(DnsConflictError);
    expect(error).toMatchObject({ retryable: false, resource: name, code: 'DnsConflict' });
    expect(error.message).toContain('do not match the current values');
  });

  // On moto the refusal is visible (dns-router.moto.test.ts); here: nothing at all was sent.
  it('refuses a stale expectation before sending anything', async () => {
    zoneOf([blueAlias, blueOwner]);
    const stale = {
      ...blueState,
      stack: 'navcloud-prod-green-0',
      target: { kind: 'alias' as const, dnsName: 'old.elb.amazonaws.com', hostedZoneId: 'Z2IFOLAFXWLO4F' },
    };
    await expect(
      router().switch({ recordName: name, ttl: 60, expected: stale, stack: 'navcloud-prod-green-2', target: green }),
    ).rejects.toThrow(
      /expected alias old\.elb\.amazonaws\.com \(stack navcloud-prod-green-0, ttl 60\), found alias blue-nlb-1/,
    );
    expect(route53.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  // moto does not check alias targets.
  it('keeps a batch refused for invalid content a validation error, not a conflict', async () => {
    zoneOf([]);
    route53.on(ChangeResourceRecordSetsCommand).rejects(
      new InvalidChangeBatch({
        message:
          '[Tried to create an alias that targets green-nlb-2.elb.eu-west-1.amazonaws.com., type ' +
          'A in zone Z2IFOLAFXWLO4F, but the alias target name does not lie within the target zone]',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const error = await router()
      .switch({ recordName: name, ttl: 60, expected: undefined, stack: 'navcloud-prod-green-2', target: green })
      .catch((e) => e);
    expect(error).not.toBeInstanceOf(DnsConflictError);
    expect(error).toMatchObject({ code: 'Validation', retryable: false, resource: name });
  });

  // moto answers INSYNC at once.
  it('polls GetChange until INSYNC, calling back on every poll', async () => {
    route53
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: 'C123', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: 'C123', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolves({ ChangeInfo: { Id: 'C123', Status: 'INSYNC', SubmittedAt: new Date() } });
    let polls = 0;
    await router().waitInSync('/change/C123', () => {
      polls += 1;
    });
    expect(polls).toBe(3);
    expect(route53.commandCalls(GetChangeCommand).map((c) => c.args[0].input.Id)).toEqual(['C123', 'C123', 'C123']);
  });

  // moto answers INSYNC at once.
  it('gives up waiting for INSYNC retryably once its time is up', async () => {
    route53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: 'C123', Status: 'PENDING', SubmittedAt: new Date() } });
    await expect(router({ poll: { initialMs: 5, maxMs: 5, timeoutMs: 30 } }).waitInSync('C123')).rejects.toMatchObject({
      code: 'Timeout',
      retryable: true,
    });
  });

  // moto has no TestDNSAnswer.
  it('verifies A records with TestDNSAnswer', async () => {
    route53
      .on(TestDNSAnswerCommand)
      .resolvesOnce({
        ResponseCode: 'NOERROR',
        RecordData: ['10.0.0.2', '10.0.0.1'],
        Nameserver: 'ns',
        RecordName: name,
        RecordType: 'A',
        Protocol: 'UDP',
      })
      .resolvesOnce({
        ResponseCode: 'NOERROR',
        RecordData: ['10.0.0.9'],
        Nameserver: 'ns',
        RecordName: name,
        RecordType: 'A',
        Protocol: 'UDP',
      })
      .resolves({
        ResponseCode: 'NXDOMAIN',
        RecordData: [],
        Nameserver: 'ns',
        RecordName: name,
        RecordType: 'A',
        Protocol: 'UDP',
      });
    const dns = router();
    expect(await dns.verify(name, { kind: 'a', addresses: ['10.0.0.1', '10.0.0.2'] })).toBe(true);
    expect(await dns.verify(name, { kind: 'a', addresses: ['10.0.0.1', '10.0.0.2'] })).toBe(false);
    expect(await dns.verify(name, { kind: 'a', addresses: ['10.0.0.1'] })).toBe(false);
    expect(route53.commandCalls(TestDNSAnswerCommand)[0]!.args[0].input).toEqual({
      HostedZoneId: zone,
      RecordName: `${name}.`,
      RecordType: 'A',
    });
  });
});
