/**
 * The activities the switch protocol rests on, each against the real thing where one exists:
 * the fence, the copy under it, the commit and the hand-over against real sync nodes (with fencing
 * tokens, and as runs started before them do), the DNS compare-and-swap through
 * the Route53 adapter, and heartbeats that keep coming while one slow batch is imported.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ChangeResourceRecordSetsCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import type { DnsRecordState } from '../../src/cloud/ports.ts';
import type { FenceResult } from '../../src/navcloud/protocol.ts';
import { createAdminClient, type StackAdmin } from '../../src/navcloud/admin-client.ts';
import { createActivities } from '../../activities/index.ts';
import type { DnsSwitchResult, FencedCopyResult, RestoreResult } from '../../activities/types.ts';
import { fakeEnvironment, FakeWorld } from '../support/fake-ports.ts';
import { forwardAsIs } from '../support/fence.ts';
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

  const write = async (id: string) =>
    call(node, 'PUT', `/v1/items/${id}`, { token: await node.token('user-1'), body: { type: 'trip', data: {} } });

  it('refuses to forward a stack whose lease lapsed and took writes after the last copy; the stack stays writable', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, {
      env: 'test',
      adminUrl: node.url,
      leaseSeconds: 1,
    });
    await sleep(1_200);
    expect((await write('slipped-in')).status).toBe(201);
    const refusal = await new MockActivityEnvironment()
      .run(activities.forwardStack, {
        env: 'test',
        adminUrl: node.url,
        to: 'http://127.0.0.1:9',
        cursor: fenced.cursor,
        leaseSeconds: 1,
      })
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ApplicationFailure);
    expect(refusal).toMatchObject({ type: 'FenceLapsed', nonRetryable: true });
    const stats = await createAdminClient({ adminUrl: node.url, jwtSecret: SECRET }).stats(node.url);
    expect(stats.fence.mode).not.toBe('forwarding');
    await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url });
  });

  it('forwards a stack whose fence held since the last copy, and a repeat (answer lost) finds it done', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, {
      env: 'test',
      adminUrl: node.url,
      leaseSeconds: 60,
    });
    const input = {
      env: 'test',
      adminUrl: node.url,
      to: 'http://127.0.0.1:9',
      cursor: fenced.cursor,
      leaseSeconds: 60,
    };
    const forwarded = await new MockActivityEnvironment().run(activities.forwardStack, input);
    expect(forwarded).toMatchObject({ mode: 'forwarding', forwardTo: 'http://127.0.0.1:9' });
    expect(await new MockActivityEnvironment().run(activities.forwardStack, input)).toMatchObject({
      mode: 'forwarding',
    });
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
  const modeOf = async (node: TestNode) =>
    (await createAdminClient({ adminUrl: node.url, jwtSecret: SECRET }).stats(node.url)).fence.mode;

  it('refuses for good when the stack it leaves took writes since the copy, and leaves the one it returns to fenced', async () => {
    const activities = activitiesFor(new FakeWorld());
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds: 1,
    });
    await sleep(1_200);
    expect(
      (
        await call(from, 'PUT', '/v1/items/slipped-in', {
          token: await from.token('user-1'),
          body: { type: 'trip', data: {} },
        })
      ).status,
    ).toBe(201);
    const refusal = await new MockActivityEnvironment()
      .run(activities.handOver, {
        env: 'test',
        from: from.url,
        to: to.url,
        toEndpoint: to.url,
        cursor: fenced.cursor,
        leaseSeconds: 1,
      })
      .catch((e: unknown) => e);
    expect(refusal).toMatchObject({ type: 'FenceLapsed', nonRetryable: true });
    expect(await modeOf(to)).toBe('fenced');
    expect(await modeOf(from)).not.toBe('forwarding');
    await Promise.all(
      [from, to].map((node) =>
        new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url }),
      ),
    );
  });

  it('unfences the stack it returns to and makes the other forward to it; a repeat (answer lost) finds it done', async () => {
    const activities = activitiesFor(new FakeWorld());
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    const fenced: FenceResult = await new MockActivityEnvironment().run(activities.fenceStack, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds: 60,
    });
    const input = {
      env: 'test',
      from: from.url,
      to: to.url,
      toEndpoint: to.url,
      cursor: fenced.cursor,
      leaseSeconds: 60,
    };
    expect(await new MockActivityEnvironment().run(activities.handOver, input)).toMatchObject({
      mode: 'forwarding',
      forwardTo: to.url,
    });
    expect([await modeOf(from), await modeOf(to)]).toEqual(['forwarding', 'open']);
    // An attempt that died after the forward, with `to` fenced again meanwhile, still ends with `to` open.
    await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: to.url, leaseSeconds: 60 });
    expect(await new MockActivityEnvironment().run(activities.handOver, input)).toMatchObject({
      mode: 'forwarding',
      forwardTo: to.url,
    });
    expect([await modeOf(from), await modeOf(to)]).toEqual(['forwarding', 'open']);
    await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: from.url });
  });
});

/** One step of one run: every attempt of a step has its activity id (a retry is the same step). */
const step = (activityId: string, info: Partial<ConstructorParameters<typeof MockActivityEnvironment>[0]> = {}) =>
  new MockActivityEnvironment({ activityId, startToCloseTimeoutMs: 20_000, ...info });

describe('fencing tokens: the fence, the commit and the hand-over, against real sync nodes', () => {
  let from: TestNode;
  let to: TestNode;
  beforeEach(async () => {
    // Writes refused at once while fenced, not held, so a test sees the refusal.
    [from, to] = await Promise.all([
      startTestNode({ nodeId: 'from', holdMs: 0 }),
      startTestNode({ nodeId: 'to', holdMs: 0 }),
    ]);
  });
  afterEach(async () => {
    await Promise.all([from?.stop(), to?.stop()]);
  });
  const adminOf = (node: TestNode) => createAdminClient({ adminUrl: node.url, jwtSecret: SECRET });
  const write = async (node: TestNode, id: string) =>
    call(node, 'PUT', `/v1/items/${id}`, { token: await node.token('user-1'), body: { type: 'trip', data: {} } });
  /** `from` fenced (step `fence`), then copied into `to` from `since` under that fence (step `copy`). */
  const fenceAndCopy = async (
    activities: ReturnType<typeof activitiesFor>,
    since: string,
    { leaseSeconds = 60, fromNodes }: { leaseSeconds?: number; fromNodes?: string[] } = {},
  ) => {
    const fence: FenceResult = await step('fence').run(activities.takeFence, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds,
    });
    const copy: FencedCopyResult = await step('copy').run(activities.copyUnderFence, {
      env: 'test',
      fromAdminUrl: from.url,
      toAdminUrl: to.url,
      since,
      fence: { epoch: fence.epoch },
      leaseSeconds,
      writePauseLeftMs: 30_000,
      ...(fromNodes ? { fromNodes } : {}),
    });
    return { fence, copy };
  };

  it('commits a flip from the fence it holds, answers a retry as done, and refuses a stack whose lease lapsed and took a write', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fence: FenceResult = await step('fence').run(activities.takeFence, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds: 60,
    });
    expect((await write(from, 'held-out')).status).toBe(503);
    const input = {
      env: 'test',
      adminUrl: from.url,
      to: to.url,
      fence: { epoch: fence.epoch },
      cursor: fence.cursor,
      leaseSeconds: 60,
    };
    const committed: FenceResult = await step('commit').run(activities.commitForward, input);
    expect(committed).toMatchObject({ mode: 'forwarding', forwardTo: to.url, epoch: fence.epoch + 2 });
    // The answer was lost: the retry (same step) finds its own commit.
    expect(await step('commit', { attempt: 2 }).run(activities.commitForward, input)).toEqual(committed);
    // A late fence of the run, expecting the stack as it was, changes nothing.
    const late = await adminOf(from)
      .fence({ expected: { epoch: fence.epoch, mode: 'fenced' }, by: 'test/late', leaseSeconds: 60 })
      .catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'Http409', current: { mode: 'forwarding', epoch: committed.epoch } });

    const lapsing: FenceResult = await step('fence-2').run(activities.takeFence, {
      env: 'test',
      adminUrl: to.url,
      leaseSeconds: 1,
    });
    await sleep(1_200);
    expect((await write(to, 'slipped-in')).status).toBe(201);
    const refusal = await step('commit-2')
      .run(activities.commitForward, {
        env: 'test',
        adminUrl: to.url,
        to: 'http://127.0.0.1:9',
        fence: { epoch: lapsing.epoch },
        cursor: lapsing.cursor,
        leaseSeconds: 1,
      })
      .catch((e: unknown) => e);
    expect(refusal).toMatchObject({ type: 'FenceLapsed', nonRetryable: true });
    expect(await adminOf(to).fenceState()).toMatchObject({ mode: 'open', by: 'lapse' });
  });

  it('commits from a fence a late attempt of its own takeFence renewed meanwhile, never from one another run changed', async () => {
    const activities = activitiesFor(new FakeWorld());
    const take = (on: TestNode) =>
      step('fence').run(activities.takeFence, {
        env: 'test',
        adminUrl: on.url,
        leaseSeconds: 60,
      }) as Promise<FenceResult>;
    const commit = (on: TestNode, fence: FenceResult) =>
      step('commit').run(activities.commitForward, {
        env: 'test',
        adminUrl: on.url,
        to: 'http://127.0.0.1:9',
        fence: { epoch: fence.epoch },
        cursor: fence.cursor,
        leaseSeconds: 60,
      });
    // A worker that froze with its polls outstanding is handed a second attempt of the fence step; both
    // run once it thaws, and the one whose answer the run did not take renews the fence over the other.
    const held = await take(from);
    const late: FenceResult = await step('fence', { attempt: 2 }).run(activities.takeFence, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds: 60,
    });
    expect(late.epoch).toBe(held.epoch + 1);
    expect(await commit(from, held)).toMatchObject({ mode: 'forwarding', forwardTo: 'http://127.0.0.1:9' });

    const mine = await take(to);
    await adminOf(to).fence({
      expected: { epoch: mine.epoch, mode: 'fenced' },
      by: 'switch-other/run-2/10',
      leaseSeconds: 60,
    });
    expect(await commit(to, mine).catch((e: unknown) => e)).toMatchObject({ type: 'FenceLost', nonRetryable: true });
    expect((await adminOf(to).fenceState()).mode).toBe('fenced');
  });

  it('hands the writer over by committing on the stack being left first: until the other opens, neither takes writes', async () => {
    const activities = activitiesFor(new FakeWorld());
    // `to` is the stack a switch left: it forwards to `from`, the writer.
    await forwardAsIs(adminOf(to), from.url);
    const since = (await adminOf(from).fenceState()).cursor;
    expect((await write(from, 'on-from')).status).toBe(201);
    const { copy } = await fenceAndCopy(activities, since);
    const input = {
      env: 'test',
      from: from.url,
      fromEndpoint: from.url,
      to: 'http://127.0.0.1:9',
      toEndpoint: to.url,
      fence: copy.fence,
      cursor: copy.cursor,
      leaseSeconds: 60,
    };
    // The stack handed over to does not answer: the commit is made, `to` stays closed, and a write reaches no writer.
    const unreachable = await step('hand-over')
      .run(activities.handOverWriter, input)
      .catch((e: unknown) => e);
    expect(unreachable).toMatchObject({ retryable: true });
    expect(await adminOf(from).fenceState()).toMatchObject({ mode: 'forwarding', forwardTo: to.url });
    expect(await adminOf(to).fenceState()).toMatchObject({ mode: 'forwarding', forwardTo: from.url });
    expect((await write(from, 'waits')).status).toBe(503);
    // The retry (same step) finds its commit made and opens `to`.
    expect(
      await step('hand-over', { attempt: 2 }).run(activities.handOverWriter, { ...input, to: to.url }),
    ).toMatchObject({ mode: 'open' });
    expect((await adminOf(to).fenceState()).mode).toBe('open');
    // Nodes read the fence through a cache at most 25 ms old: a request sent after that sees `to` open.
    await sleep(100);
    expect((await write(from, 'through-from')).status).toBe(201);
    expect((await call(to, 'GET', '/v1/items/on-from', { token: await to.token('user-1') })).status).toBe(200);
  });

  it('asks every node of the fenced stack to settle its caught writes before the copy, and copies even when one never answers', async () => {
    const activities = activitiesFor(new FakeWorld());
    const since = (await adminOf(from).fenceState()).cursor;
    expect((await write(from, 'before-fence')).status).toBe(201);
    // A node that takes the request and never answers: frozen, or behind a network that holds requests.
    const asked: string[] = [];
    const frozen = createServer((request) => asked.push(`${request.method} ${request.url}`));
    await new Promise<void>((ready) => frozen.listen(0, '127.0.0.1', ready));
    try {
      const { copy } = await fenceAndCopy(activities, since, {
        fromNodes: [from.url, `http://127.0.0.1:${(frozen.address() as AddressInfo).port}`],
      });
      expect(copy.copied).toBe(1);
      expect(asked).toEqual(['GET /admin/settled?within_ms=5000']);
    } finally {
      frozen.closeAllConnections();
      await new Promise((done) => frozen.close(done));
    }
  });

  it('renews the fence while a slow copy runs, every renewal done before the copy answers, and stops at the write-pause ceiling', async () => {
    const world = new FakeWorld();
    const real = (url: string) => createAdminClient({ adminUrl: url, jwtSecret: SECRET });
    // Imports into `to` take 1.5 s each: a copy of two batches outlasts a 3 s lease.
    const slowTo = (url: string) => ({
      ...real(url),
      importLines: async (...args: Parameters<StackAdmin['importLines']>) => {
        await sleep(1_500);
        return real(url).importLines(...args);
      },
    });
    const activities = activitiesFor(world, {
      importBatchLines: 2,
      admin: (_env, url) => (url === to.url ? slowTo(url) : real(url)),
    });
    const since = (await adminOf(from).fenceState()).cursor;
    for (const id of ['a', 'b', 'c']) expect((await write(from, id)).status).toBe(201);
    const { fence, copy } = await fenceAndCopy(activities, since, { leaseSeconds: 3 });
    expect(copy.copied).toBe(3);
    expect(copy.fence.epoch).toBeGreaterThanOrEqual(fence.epoch + 2);
    // A renewal that outlived the copy would land within one renewal period (1 s).
    await sleep(1_100);
    // No renewal outlived the copy: the fence is as the copy left it, lease running down.
    expect(await adminOf(from).fenceState()).toMatchObject({ mode: 'fenced', epoch: copy.fence.epoch });
    const ceiling = await step('copy-2')
      .run(activities.copyUnderFence, {
        env: 'test',
        fromAdminUrl: from.url,
        toAdminUrl: to.url,
        since,
        fence: copy.fence,
        leaseSeconds: 3,
        writePauseLeftMs: 1_000,
      })
      .catch((e: unknown) => e);
    expect(ceiling).toMatchObject({ type: 'WritePauseExceeded', nonRetryable: true });
  });

  it('releases a fence this run renewed since, never a commit it does not expect', async () => {
    const activities = activitiesFor(new FakeWorld());
    const fence: FenceResult = await step('fence').run(activities.takeFence, {
      env: 'test',
      adminUrl: from.url,
      leaseSeconds: 60,
    });
    await adminOf(from).fence({
      expected: { epoch: fence.epoch, mode: 'fenced' },
      by: 'test/00000000-0000-0000-0000-000000000000/copy',
      leaseSeconds: 60,
    });
    expect(
      await step('undo').run(activities.releaseFence, {
        env: 'test',
        adminUrl: from.url,
        expected: { epoch: fence.epoch, mode: 'fenced' as const },
      }),
    ).toMatchObject({ mode: 'open' });
    await forwardAsIs(adminOf(to), from.url, 'other-run/x/1');
    const refused = await step('undo-2')
      .run(activities.releaseFence, { env: 'test', adminUrl: to.url, expected: { epoch: 0, mode: 'fenced' as const } })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ type: 'FenceMoved', nonRetryable: true });
    expect((await adminOf(to).fenceState()).mode).toBe('forwarding');
  });
});

describe('admin requests of a fence step end with its attempt', () => {
  let silent: Server;
  let url = '';
  const arrived: string[] = [];
  const closed: string[] = [];
  beforeAll(async () => {
    // Takes every request and never answers: a stack whose node froze, or a network that holds requests.
    silent = createServer((request) => {
      arrived.push(`${request.method} ${request.url}`);
      request.socket.on('close', () => closed.push(`${request.method} ${request.url}`));
    });
    await new Promise<void>((ready) => silent.listen(0, '127.0.0.1', ready));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise((done) => silent.close(done));
  });

  it("gives up a request a second before the attempt times out, not after the client's own 30 s", async () => {
    const activities = activitiesFor(new FakeWorld());
    const startedAt = performance.now();
    const failed = await step('fence', { startToCloseTimeoutMs: 3_000 })
      .run(activities.takeFence, { env: 'test', adminUrl: url, leaseSeconds: 60 })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(performance.now() - startedAt).toBeLessThan(3_000);
    await expect.poll(() => closed).toContain('GET /admin/fence');
  });

  it('stops its requests when the attempt is cancelled (a heartbeat tells of a cancelled or terminated run)', async () => {
    const activities = activitiesFor(new FakeWorld());
    const attempt = step('release', { startToCloseTimeoutMs: 60_000 });
    const releasing = attempt
      .run(activities.releaseFence, { env: 'test', adminUrl: url, expected: { epoch: 1, mode: 'fenced' as const } })
      .catch((e: unknown) => e);
    await expect.poll(() => arrived).toContain('POST /admin/unfence');
    attempt.cancel();
    await releasing;
    await expect.poll(() => closed).toContain('POST /admin/unfence');
  });
});

describe('the fence activities of runs started before fencing tokens', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ nodeId: 'v1' });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('give a workflows/v1 fence, which named no lease, the longest lease the admin API grants, and unfence whatever they find', async () => {
    const activities = activitiesFor(new FakeWorld());
    expect(
      await new MockActivityEnvironment().run(activities.fenceStack, { env: 'test', adminUrl: node.url }),
    ).toMatchObject({ mode: 'fenced', leaseSeconds: 3_600 });
    expect(
      await new MockActivityEnvironment().run(activities.unfenceStack, { env: 'test', adminUrl: node.url }),
    ).toMatchObject({ mode: 'open' });
  });
});

describe('switchDns: one compare-and-swap, in the Route53 adapter', () => {
  const route53 = mockClient(Route53Client);
  beforeEach(() => route53.reset());
  const name = 'sync.test.navcloud.test';
  const blue: DnsRecordState = {
    recordName: name,
    ttl: 30,
    stack: 'navcloud-test-blue-1',
    target: { kind: 'alias', dnsName: 'blue-alb.us-east-1.elb.amazonaws.com.', hostedZoneId: 'Z35SXDOTRQ7X7K' },
  };
  // As Route53 answers after the switch was applied: the alias name with its trailing dot.
  const greenAlias: ResourceRecordSet = {
    Name: `${name}.`,
    Type: 'A',
    AliasTarget: {
      DNSName: 'green-alb.us-east-1.elb.amazonaws.com.',
      HostedZoneId: 'Z35SXDOTRQ7X7K',
      EvaluateTargetHealth: true,
    },
  };
  const greenOwner: ResourceRecordSet = {
    Name: `_switchyard.${name}.`,
    Type: 'TXT',
    TTL: 30,
    ResourceRecords: [{ Value: '"stack=navcloud-test-green-2"' }],
  };

  it('succeeds on a retry whose first attempt applied the change but lost the answer', async () => {
    route53.on(ListResourceRecordSetsCommand).callsFake((input: { StartRecordName?: string }) => ({
      ResourceRecordSets: input.StartRecordName?.startsWith('_switchyard') ? [greenOwner] : [greenAlias],
      IsTruncated: false,
    }));
    route53
      .on(ChangeResourceRecordSetsCommand)
      .resolves({ ChangeInfo: { Id: '/change/C2', Status: 'PENDING', SubmittedAt: new Date() } });
    const dns = new Route53DnsRouter({
      logger: testLogger,
      route53: new Route53Client({ region: 'us-east-1' }),
      hostedZoneId: 'Z1',
      minIntervalMs: 0,
    });
    const world = new FakeWorld();
    const activities = activitiesFor(world, { ports: () => ({ ...world.ports(), dns }) });
    const result: DnsSwitchResult = await new MockActivityEnvironment().run(activities.switchDns, {
      env: 'test',
      expected: blue,
      stack: 'navcloud-test-green-2',
      // Stack outputs name the load balancer without the trailing dot.
      target: {
        kind: 'alias' as const,
        dnsName: 'green-alb.us-east-1.elb.amazonaws.com',
        hostedZoneId: 'Z35SXDOTRQ7X7K',
      },
    });
    expect(result.changeId).toBe('/change/C2');
    // Only the ownership record is re-asserted, for a change id to wait on; the record itself is left alone.
    const changes = route53
      .commandCalls(ChangeResourceRecordSetsCommand)
      .flatMap((c) => c.args[0].input.ChangeBatch?.Changes ?? []);
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
    const restored: RestoreResult = await env.run(
      createActivities(world.deps(tempDir('reports-').path)).restoreBackup,
      {
        env: 'test',
        backupKey: 'backups/slow.json',
        adminUrl: 'fake://navcloud-test-green-dst',
      },
    );
    expect(restored.items).toBe(4);
    // One batch (4 lines, batches of 10) taking 2.5 s: the timer beats at least twice during it.
    const during = heartbeats.filter((d) => (d as { linesDone: number }).linesDone === 0);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(heartbeats.at(-1)).toEqual({ linesDone: 4, total: 4 });
  });
});
