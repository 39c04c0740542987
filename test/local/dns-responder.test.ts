import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand } from '@aws-sdk/client-route-53';
import { startMoto, motoCredentials, motoRegion, type Moto } from '../support/moto.ts';
import { testLogger } from '../support/logger.ts';
import { route53Client } from '../../src/cloud/aws/clients.ts';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import { startDnsResponder, type DnsResponder } from '../../src/cloud/local/dns-responder.ts';
import { responderAnswerCheck } from '../../src/cloud/local/answer-check.ts';
import { dnsQuery, type PlainAnswer } from './dns-client.ts';

const RECORD = 'sync.dns-test.navcloud.test';

describe('local DNS responder over the Route53 zone in moto', () => {
  let moto: Moto;
  let responder: DnsResponder;
  let router: Route53DnsRouter;

  beforeAll(async () => {
    moto = await startMoto();
    const route53 = route53Client({ region: motoRegion, endpoint: moto.endpoint, credentials: motoCredentials });
    const zone = await route53.send(
      new CreateHostedZoneCommand({ Name: 'dns-test.navcloud.test', CallerReference: `dns-${Date.now()}` }),
    );
    const zoneId = zone.HostedZone!.Id!.replace('/hostedzone/', '');
    await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        ChangeBatch: {
          Changes: [
            {
              Action: 'CREATE',
              ResourceRecordSet: {
                Name: 'mail.dns-test.navcloud.test',
                Type: 'TXT',
                TTL: 30,
                ResourceRecords: [{ Value: '"v=spf1 -all"' }],
              },
            },
          ],
        },
      }),
    );
    router = new Route53DnsRouter({
      logger: testLogger,
      route53,
      hostedZoneId: zoneId,
      poll: { initialMs: 50, maxMs: 200 },
      minIntervalMs: 0,
    });
    const change = await router.switch({
      recordName: RECORD,
      ttl: 7,
      expected: undefined,
      stack: 'stack-a',
      target: { kind: 'a', addresses: ['127.31.0.1', '127.31.0.2'] },
    });
    await router.waitInSync(change);
    responder = await startDnsResponder({ route53, port: 0, cacheMs: 100, logger: testLogger });
  });

  afterAll(async () => {
    await responder?.close();
    await moto?.stop();
  });

  it.each(['udp', 'tcp'] as const)(
    'answers A records over %s, authoritatively, with the record TTL',
    async (transport) => {
      const reply = await dnsQuery(responder.host, responder.port, RECORD, 'A', transport);
      expect(reply.rcode).toBe('NOERROR');
      expect(reply.flag_aa).toBe(true);
      expect(reply.flag_rd).toBe(true);
      expect((reply.answers as PlainAnswer[]).map((a) => [a.type, a.name, a.ttl, a.data])).toEqual(
        expect.arrayContaining([
          ['A', RECORD, 7, '127.31.0.1'],
          ['A', RECORD, 7, '127.31.0.2'],
        ]),
      );
      expect(reply.answers).toHaveLength(2);
    },
  );

  it('answers the ownership TXT record the router writes beside the A record', async () => {
    const reply = await dnsQuery(responder.host, responder.port, `_switchyard.${RECORD}`, 'TXT', 'udp');
    expect((reply.answers as PlainAnswer[]).map((a) => (a.data as Buffer[]).map(String))).toEqual([['stack=stack-a']]);
  });

  it('says NXDOMAIN for an unknown name and NOERROR with no data for a missing type, with the zone SOA', async () => {
    const missing = await dnsQuery(responder.host, responder.port, `nope.dns-test.navcloud.test`, 'A', 'udp');
    expect(missing.rcode).toBe('NXDOMAIN');
    expect(missing.answers).toEqual([]);
    expect(missing.authorities!.map((a) => a.type)).toEqual(['SOA']);

    const noData = await dnsQuery(responder.host, responder.port, RECORD, 'AAAA', 'tcp');
    expect(noData.rcode).toBe('NOERROR');
    expect(noData.answers).toEqual([]);
    expect(noData.authorities!.map((a) => a.type)).toEqual(['SOA']);
  });

  it('refuses names outside every hosted zone', async () => {
    const reply = await dnsQuery(responder.host, responder.port, 'example.org', 'A', 'udp');
    expect(reply.rcode).toBe('REFUSED');
  });

  it('is usable by a stock resolver, which sees the TTL', async () => {
    const resolver = new Resolver({ timeout: 1_000, tries: 1 });
    resolver.setServers([responder.address]);
    expect((await resolver.resolve4(RECORD, { ttl: true })).map((a) => [a.address, a.ttl]).sort()).toEqual([
      ['127.31.0.1', 7],
      ['127.31.0.2', 7],
    ]);
    expect(await resolver.resolveTxt('mail.dns-test.navcloud.test')).toEqual([['v=spf1 -all']]);
  });

  it('follows a Route53 switch, and the answer check tells old from new', async () => {
    const check = responderAnswerCheck(responder.address);
    const before = { kind: 'a' as const, addresses: ['127.31.0.1', '127.31.0.2'] };
    const after = { kind: 'a' as const, addresses: ['127.32.0.1'] };
    expect(await check(RECORD, before)).toBe(true);
    expect(await check(RECORD, after)).toBe(false);

    const expected = await router.current(RECORD);
    await router.waitInSync(
      await router.switch({ recordName: RECORD, ttl: 7, expected, stack: 'stack-b', target: after }),
    );
    // Bounded wait for the responder's short cache; the behaviour asserted is that it follows.
    let answered: string[] = [];
    for (let i = 0; i < 50 && answered.join() !== '127.32.0.1'; i++) {
      const reply = await dnsQuery(responder.host, responder.port, RECORD, 'A', 'udp');
      answered = (reply.answers as PlainAnswer[]).map((a) => String(a.data));
      await sleep(50);
    }
    expect(answered).toEqual(['127.32.0.1']);
    expect(await check(RECORD, after)).toBe(true);
    expect(await check(RECORD, before)).toBe(false);
    expect(await check(`nope.dns-test.navcloud.test`, after)).toBe(false);
  });

  it('answers FORMERR to a malformed query and stays up', async () => {
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    const reply = await new Promise<Buffer>((res) => {
      socket.once('message', (msg) => res(msg));
      socket.send(Buffer.from([0x12, 0x34, 0xff]), responder.port, responder.host);
    });
    socket.close();
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2) & 0xf).toBe(1);
    expect((await dnsQuery(responder.host, responder.port, RECORD, 'A', 'udp')).rcode).toBe('NOERROR');
  });
});
