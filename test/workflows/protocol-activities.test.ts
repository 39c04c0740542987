/**
 * The activities the switch protocol rests on, each against the real thing where one exists:
 * forward (the commit) and the hand-over back against real sync nodes' fence leases, the DNS compare-and-swap through
 * the Route53 adapter, and heartbeats that keep coming while one slow batch is imported.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { mockClient } from 'aws-sdk-client-mock';
import { ChangeResourceRecordSetsCommand, ListResourceRecordSetsCommand, Route53Client, type ResourceRecordSet } from '@aws-sdk/client-route-53';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import type { DnsRecordState } from '../../src/cloud/ports.ts';
import type { FenceResult } from '../../src/navcloud/protocol.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { createActivities } from '../../activities/index.ts';
import type { DnsSwitchResult, RestoreResult } from '../../activities/types.ts';
import { fakeEnvironment, FakeWorld } from '../support/fake-ports.ts';
import { call, SECRET, startTestNode, type TestNode } from '../server/helpers.ts';
import { tempDir } from '../support/temp-dir.ts';
import { testLogger } from '../support/logger.ts';

function activitiesFor(world: FakeWorld, overrides: Partial<Parameters<typeof createActivities>[0]> = {}) {
  return createActivities({
    ...world.deps(tempDir('reports-').path),
    admin: (env, adminUrl) => createAdminClient({ adminUrl, jwtSecret: env.jwtSecret }),
    loadEnvironment: async (name) => fakeEnvironment(name, { jwtSecret: SECRET }),
    ...overrides,
  });
}

describe('forwardStack: the commit of a flip, against a real sync node', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ nodeId: 'old' });
  });
  afterAll(async () => {
    await node?.stop();
  });

  const write = async (id: string) => call(node, 'PUT', `/v1/items/${id}`, { token: await node.token('user-1'), body: { type: 'trip', data: {} } });

  it('refuses to forward a stack whose lease lapsed and took writes after the last copy; the stack stays writable', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: node.url, leaseSeconds: 1 });
    await sleep(1_200);
    expect((await write('slipped-in')).status).toBe(201);
    const refusal = await new MockActivityEnvironment().run(activities.forwardStack, {
      env: 'test', adminUrl: node.url, to: 'http://127.0.0.1:9', cursor: fenced.cursor, leaseSeconds: 1,
    }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ApplicationFailure);
    expect(refusal).toMatchObject({ type: 'FenceLapsed', nonRetryable: true });
    const stats = await createAdminClient({ adminUrl: node.url, jwtSecret: SECRET }).stats(node.url);
    expect(stats.fence.mode).not.toBe('forwarding');
    await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url });
  });

  it('forwards a stack whose fence held since the last copy, and a repeat (answer lost) finds it done', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: node.url, leaseSeconds: 60 });
    const input = { env: 'test', adminUrl: node.url, to: 'http://127.0.0.1:9', cursor: fenced.cursor, leaseSeconds: 60 };
    const forwarded = await new MockActivityEnvironment().run(activities.forwardStack, input);
    expect(forwarded).toMatchObject({ mode: 'forwarding', forwardTo: 'http://127.0.0.1:9' });
    expect(await new MockActivityEnvironment().run(activities.forwardStack, input)).toMatchObject({ mode: 'forwarding' });
    await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url });
  });
});

describe('handOver: the writer moves back in one call, against two real sync nodes', () => {
  let from: TestNode;
  let to: TestNode;
  beforeAll(async () => {
    [from, to] = await Promise.all([startTestNode({ nodeId: 'from' }), startTestNode({ nodeId: 'to' })]);
  });
  afterAll(async () => {
    await Promise.all([from?.stop(), to?.stop()]);
  });
  const modeOf = async (node: TestNode) => (await createAdminClient({ adminUrl: node.url, jwtSecret: SECRET }).stats(node.url)).fence.mode;

  it('refuses for good when the stack it leaves took writes since the copy, and leaves the one it returns to fenced', async () => {
    const activities = activitiesFor(new FakeWorld());
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: from.url, leaseSeconds: 1 });
    await sleep(1_200);
    expect((await call(from, 'PUT', '/v1/items/slipped-in', { token: await from.token('user-1'), body: { type: 'trip', data: {} } })).status).toBe(201);
    const refusal = await new MockActivityEnvironment().run(activities.handOver, {
      env: 'test', from: from.url, to: to.url, toEndpoint: to.url, cursor: fenced.cursor, leaseSeconds: 1,
    }).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ type: 'FenceLapsed', nonRetryable: true });
    expect(await modeOf(to)).toBe('fenced');
    expect(await modeOf(from)).not.toBe('forwarding');
    await Promise.all([from, to].map((node) => new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url })));
  });

  it('unfences the stack it returns to and makes the other forward to it; a repeat (answer lost) finds it done', async () => {
    const activities = activitiesFor(new FakeWorld());
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: from.url, leaseSeconds: 60 });
    const input = { env: 'test', from: from.url, to: to.url, toEndpoint: to.url, cursor: fenced.cursor, leaseSeconds: 60 };
    expect(await new MockActivityEnvironment().run(activities.handOver, input)).toMatchObject({ mode: 'forwarding', forwardTo: to.url });
    expect([await modeOf(from), await modeOf(to)]).toEqual(['forwarding', 'open']);
    // An attempt that died after the forward, with `to` fenced again meanwhile, still ends with `to` open.
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    expect(await new MockActivityEnvironment().run(activities.handOver, input)).toMatchObject({ mode: 'forwarding', forwardTo: to.url });
    expect([await modeOf(from), await modeOf(to)]).toEqual(['forwarding', 'open']);
    await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: from.url });
  });
});

describe('switchDns: one compare-and-swap, in the Route53 adapter', () => {
  const route53 = mockClient(Route53Client);
  beforeEach(() => route53.reset());
  const name = 'sync.test.navcloud.test';
  const blue: DnsRecordState = {
    recordName: name, ttl: 30, stack: 'navcloud-test-blue-1',
    target: { kind: 'alias', dnsName: 'blue-alb.us-east-1.elb.amazonaws.com.', hostedZoneId: 'Z35SXDOTRQ7X7K' },
  };
  // As Route53 answers after the switch was applied: the alias name with its trailing dot.
  const greenAlias: ResourceRecordSet = {
    Name: `${name}.`, Type: 'A', AliasTarget: { DNSName: 'green-alb.us-east-1.elb.amazonaws.com.', HostedZoneId: 'Z35SXDOTRQ7X7K', EvaluateTargetHealth: true },
  };
  const greenOwner: ResourceRecordSet = { Name: `_switchyard.${name}.`, Type: 'TXT', TTL: 30, ResourceRecords: [{ Value: '"stack=navcloud-test-green-2"' }] };

  it('succeeds on a retry whose first attempt applied the change but lost the answer', async () => {
    route53.on(ListResourceRecordSetsCommand).callsFake((input: { StartRecordName?: string }) => ({
      ResourceRecordSets: input.StartRecordName?.startsWith('_switchyard') ? [greenOwner] : [greenAlias], IsTruncated: false,
    }));
    route53.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C2', Status: 'PENDING', SubmittedAt: new Date() } });
    const dns = new Route53DnsRouter({ logger: testLogger, route53: new Route53Client({ region: 'us-east-1' }), hostedZoneId: 'Z1', minIntervalMs: 0 });
    const world = new FakeWorld();
    const activities = activitiesFor(world, { ports: () => ({ ...world.ports(), dns }) });
    const result: DnsSwitchResult = await new MockActivityEnvironment().run(activities.switchDns, {
      env: 'test', expected: blue, stack: 'navcloud-test-green-2',
      // Stack outputs name the load balancer without the trailing dot.
      target: { kind: 'alias' as const, dnsName: 'green-alb.us-east-1.elb.amazonaws.com', hostedZoneId: 'Z35SXDOTRQ7X7K' },
    });
    expect(result.changeId).toBe('/change/C2');
    // Only the ownership record is re-asserted, for a change id to wait on; the record itself is left alone.
    const changes = route53.commandCalls(ChangeResourceRecordSetsCommand).flatMap((c) => c.args[0].input.ChangeBatch?.Changes ?? []);
    expect(changes.map((c) => `${c.Action} ${c.ResourceRecordSet?.Type}`)).toEqual(['UPSERT TXT']);
  });
});

describe('heartbeats while a batch runs', () => {
  it('keep coming from a timer while one slow import is in flight, with the last checkpoint', async () => {
    const world = new FakeWorld({ importDelayMs: 2_500 });
    world.addStack('navcloud-test-blue-src', 'blue', { items: 4 });
    world.addBackup('navcloud-test-blue-src', 'backups/slow.json');
    world.addStack('navcloud-test-green-dst', 'green');
    const heartbeats: unknown[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    const restored: RestoreResult = await env.run(createActivities(world.deps(tempDir('reports-').path)).restoreBackup, {
      env: 'test', backupKey: 'backups/slow.json', adminUrl: 'fake://navcloud-test-green-dst',
    });
    expect(restored.items).toBe(4);
    // One batch (4 lines, batches of 10) taking 2.5 s: the timer beats at least twice during it.
    const during = heartbeats.filter((d) => (d as { linesDone: number }).linesDone === 0);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(heartbeats.at(-1)).toEqual({ linesDone: 4, total: 4 });
  });
});
