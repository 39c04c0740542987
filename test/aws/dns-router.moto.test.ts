import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ListResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { Route53DnsRouter, ownerName, type AnswerCheck } from '../../src/cloud/aws/dns-router.ts';
import { DnsConflictError } from '../../src/cloud/errors.ts';
import type { DnsTarget } from '../../src/cloud/ports.ts';
import { startMoto, type Moto } from '../support/moto.ts';
import { createZone, motoClients } from './moto-helpers.ts';
import { testLogger } from '../support/logger.ts';

const recordName = 'api.switchyard.test';
let moto: Moto;
let zoneId: string;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  zoneId = await createZone(moto, 'switchyard.test');
});

// moto has no TestDNSAnswer: the check is the pluggable one the local profile also uses.
function router(answerCheck: AnswerCheck = async () => true) {
  return new Route53DnsRouter({
    logger: testLogger,
    route53: motoClients(moto).route53,
    hostedZoneId: zoneId,
    answerCheck,
    minIntervalMs: 0,
    poll: { initialMs: 10, maxMs: 50, timeoutMs: 5_000 },
  });
}

const alias = (n: number): DnsTarget => ({
  kind: 'alias',
  dnsName: `nlb-${n}.elb.us-east-1.amazonaws.com.`,
  hostedZoneId: 'Z26RNL4JYFTOTI',
});
const a = (...addresses: string[]): DnsTarget => ({ kind: 'a', addresses });

async function zoneRecords() {
  const out = await motoClients(moto).route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
  return (out.ResourceRecordSets ?? []).filter((r) => r.Type === 'A' || r.Type === 'TXT');
}

describe('Route53DnsRouter on moto', () => {
  it('switches twice in a row, then refuses a third switch with a stale expectation and leaves the record alone', async () => {
    const dns = router();
    expect(await dns.current(recordName)).toBeUndefined();

    const first = await dns.switch({
      recordName,
      ttl: 60,
      expected: undefined,
      stack: 'navcloud-dev-blue-1',
      target: alias(1),
    });
    await dns.waitInSync(first);
    const afterFirst = await dns.current(recordName);
    expect(afterFirst).toMatchObject({
      stack: 'navcloud-dev-blue-1',
      target: { kind: 'alias', hostedZoneId: 'Z26RNL4JYFTOTI' },
    });

    const second = await dns.switch({
      recordName,
      ttl: 60,
      expected: afterFirst,
      stack: 'navcloud-dev-green-2',
      target: alias(2),
    });
    await dns.waitInSync(second);
    const afterSecond = await dns.current(recordName);
    expect(afterSecond?.stack).toBe('navcloud-dev-green-2');
    expect(afterSecond?.target).toMatchObject({ kind: 'alias', dnsName: 'nlb-2.elb.us-east-1.amazonaws.com.' });

    const before = await zoneRecords();
    const stale = dns.switch({
      recordName,
      ttl: 60,
      expected: afterFirst,
      stack: 'navcloud-dev-blue-3',
      target: alias(3),
    });
    await expect(stale).rejects.toBeInstanceOf(DnsConflictError);
    await expect(stale).rejects.toMatchObject({ retryable: false, resource: recordName });
    expect(await dns.current(recordName)).toEqual(afterSecond);
    expect(await zoneRecords()).toEqual(before);
  });

  it('writes the ownership TXT record with the A record and removes the old one', async () => {
    const dns = router();
    await dns.switch({ recordName, ttl: 30, expected: undefined, stack: 'blue-1', target: a('127.0.0.11') });
    const first = await dns.current(recordName);
    await dns.switch({ recordName, ttl: 30, expected: first, stack: 'green-2', target: a('127.0.0.12', '127.0.0.13') });
    const records = await zoneRecords();
    expect(records.map((r) => [r.Name, r.Type, r.ResourceRecords?.map((v) => v.Value).sort()])).toEqual([
      [`${recordName}.`, 'A', ['127.0.0.12', '127.0.0.13']],
      [ownerName(recordName), 'TXT', ['"stack=green-2"']],
    ]);
  });

  it('switches back to a target it pointed at before (moto refuses a repeated CREATE; the router proves the record unchanged and retries)', async () => {
    const dns = router();
    await dns.switch({ recordName, ttl: 30, expected: undefined, stack: 'blue-1', target: a('127.0.0.11') });
    const one = await dns.current(recordName);
    await dns.switch({ recordName, ttl: 30, expected: one, stack: 'green-2', target: a('127.0.0.12') });
    const two = await dns.current(recordName);
    await dns.switch({ recordName, ttl: 30, expected: two, stack: 'blue-1', target: a('127.0.0.11') });
    expect(await dns.current(recordName)).toEqual(one);
  });

  it('treats a repeated switch (answer lost, activity retried) as done and returns a change to wait for', async () => {
    const dns = router();
    await dns.switch({ recordName, ttl: 30, expected: undefined, stack: 'blue-1', target: a('127.0.0.11') });
    const one = await dns.current(recordName);
    const request = { recordName, ttl: 30, expected: one, stack: 'green-2', target: a('127.0.0.12') };
    await dns.switch(request);
    const again = await dns.switch(request);
    await dns.waitInSync(again);
    expect((await dns.current(recordName))?.stack).toBe('green-2');
  });

  it('refuses a first switch when a record already exists', async () => {
    const dns = router();
    await dns.switch({ recordName, ttl: 30, expected: undefined, stack: 'blue-1', target: a('127.0.0.11') });
    await expect(
      dns.switch({ recordName, ttl: 30, expected: undefined, stack: 'green-2', target: a('127.0.0.12') }),
    ).rejects.toBeInstanceOf(DnsConflictError);
    expect((await dns.current(recordName))?.stack).toBe('blue-1');
  });

  it('names the zone when it does not exist', async () => {
    const dns = new Route53DnsRouter({
      logger: testLogger,
      route53: motoClients(moto).route53,
      hostedZoneId: 'Z0000000000NOSUCHZONE',
      minIntervalMs: 0,
    });
    await expect(dns.current(recordName)).rejects.toMatchObject({
      code: 'NotFound',
      retryable: false,
      resource: recordName,
      message: expect.stringContaining('Z0000000000NOSUCHZONE'),
    });
  });

  it('verifies through the pluggable answer check', async () => {
    const asked: string[] = [];
    const dns = router(async (name, target) => {
      asked.push(name);
      return target.kind === 'a' && target.addresses[0] === '127.0.0.11';
    });
    expect(await dns.verify(recordName, a('127.0.0.11'))).toBe(true);
    expect(await dns.verify(recordName, a('127.0.0.99'))).toBe(false);
    expect(asked).toEqual([recordName, recordName]);
  });
});
