import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { ListCommandsCommand } from '@aws-sdk/client-ssm';
import { AwsStackProvisioner } from '../../src/cloud/aws/stack-provisioner.ts';
import type { StackDescription } from '../../src/cloud/ports.ts';
import { AwsFleetPlatform, logGroupOf } from '../../src/operations/fleet/aws.ts';
import { mergeByTime } from '../../src/operations/fleet/lines.ts';
import { createBucket, createZone, motoClients } from '../aws/moto-helpers.ts';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import { Fleet, FleetInputError } from '../../src/operations/fleet/fleet.ts';
import { startMoto, motoRegion, type Moto } from '../support/moto.ts';
import { testLogger } from '../support/logger.ts';

const stackName = 'navcloud-prod-blue-c0ffee';
let moto: Moto;
let stack: StackDescription;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  await createBucket(moto, 'templates');
  const clients = motoClients(moto);
  const provisioner = new AwsStackProvisioner({
    logger: testLogger,
    ...clients,
    region: motoRegion,
    templateBucket: 'templates',
    templateDir: resolve(import.meta.dirname, '../aws/fixtures'),
    poll: { initialMs: 10, maxMs: 100, timeoutMs: 30_000 },
  });
  await provisioner.create({
    name: stackName,
    env: 'prod',
    colour: 'blue',
    workflowId: 'switch-prod',
    template: 'api-group-stack.yaml',
    parameters: { ApiNodeCount: '2' },
  });
  stack = await provisioner.waitUntilReady(stackName);
});

function platform() {
  return new AwsFleetPlatform({ ...motoClients(moto), pollMs: 10 });
}

/** The instance ids of the stack's Auto Scaling groups, API group first. */
async function groups(): Promise<{ api: string[]; other: string[] }> {
  const all =
    (await motoClients(moto).autoScaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? [];
  const ids = (g: (typeof all)[number] | undefined) => (g?.Instances ?? []).map((i) => i.InstanceId!).sort();
  return {
    api: ids(all.find((g) => g.Instances?.length === 2)),
    other: ids(all.find((g) => g.Instances?.length === 1)),
  };
}

describe('fleet on the aws profile, against moto', () => {
  it('finds the API instances of the stack (CloudFormation -> Auto Scaling -> EC2), not its other groups', async () => {
    const { api, other } = await groups();
    const nodes = await platform().nodes([stack]);
    expect(nodes.map((n) => n.id)).toEqual(api);
    expect(nodes.map((n) => n.id)).not.toContain(other[0]);
    const described = await motoClients(moto).ec2.send(new DescribeInstancesCommand({ InstanceIds: api }));
    const address = new Map(
      described.Reservations!.flatMap((r) => r.Instances!).map((i) => [i.InstanceId!, i.PrivateIpAddress!]),
    );
    for (const node of nodes) {
      expect(node).toMatchObject({
        stack: stackName,
        address: address.get(node.id),
        url: `http://${address.get(node.id)}:8080`,
        state: 'running',
      });
    }
    expect(stack.outputs?.nodes).toEqual(nodes.map((n) => n.url));
  });

  it("runs a command through SSM Run Command targeted by the API instances' tag, and one node by its instance id", async () => {
    const { api, other } = await groups();
    const fleet = platform();
    const nodes = await fleet.nodes([stack]);
    const results = await fleet.exec(nodes, { script: 'uptime', parallel: 2, timeoutSeconds: 30 });
    // moto runs nothing: every invocation succeeds with empty output.
    expect(results).toEqual(api.map((id) => ({ node: id, exitCode: 0, stdout: '', stderr: '', timedOut: false })));
    const sent = (await motoClients(moto).ssm.send(new ListCommandsCommand({}))).Commands ?? [];
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      MaxConcurrency: '2',
      Parameters: { commands: ['uptime'], executionTimeout: ['30'] },
      Targets: [{ Key: 'tag:navcloud:api-node-of', Values: [stackName] }],
    });
    // The tag reaches the API instances only.
    expect([...(sent[0]!.InstanceIds ?? [])].sort()).toEqual(api);
    expect(sent[0]!.InstanceIds).not.toContain(other[0]);

    const one = await fleet.exec([nodes[1]!], { script: 'hostname', parallel: 1, timeoutSeconds: 10 });
    expect(one.map((r) => r.node)).toEqual([nodes[1]!.id]);
    const second = (await motoClients(moto).ssm.send(new ListCommandsCommand({}))).Commands!.find(
      (c) => c.Parameters?.commands?.[0] === 'hostname',
    );
    // moto adds every instance of the account to a command sent without Targets (it filters EC2
    // with no filter), so only "sent by instance id, no tag target" can be checked here.
    expect(second?.InstanceIds).toContain(nodes[1]!.id);
    expect(second?.Targets ?? []).toEqual([]);
  });

  it("reads each instance's log stream from the stack's CloudWatch Logs group, from --since on", async () => {
    const fleet = platform();
    const nodes = await fleet.nodes([stack]);
    const { logs } = motoClients(moto);
    await logs.send(new CreateLogGroupCommand({ logGroupName: logGroupOf(stackName) }));
    const t0 = Date.now() - 60_000;
    for (const [n, node] of nodes.entries()) {
      await logs.send(new CreateLogStreamCommand({ logGroupName: logGroupOf(stackName), logStreamName: node.id }));
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: logGroupOf(stackName),
          logStreamName: node.id,
          logEvents: [0, 2, 4].map((k) => ({
            timestamp: t0 + (k + n) * 1000,
            message: JSON.stringify({ level: 30, time: t0 + (k + n) * 1000, msg: `line ${k + n}` }),
          })),
        }),
      );
    }
    const { lines: all, mark } = await fleet.logs(nodes, {});
    expect(mark.at).toBeGreaterThan(t0);
    const merged = mergeByTime(all);
    expect(merged.map((l) => JSON.parse(l.text).msg)).toEqual([
      'line 0',
      'line 1',
      'line 2',
      'line 3',
      'line 4',
      'line 5',
    ]);
    expect(merged.map((l) => l.node)).toEqual([0, 1, 0, 1, 0, 1].map((i) => nodes[i]!.id));
    const { lines: since } = await fleet.logs(nodes, { since: t0 + 3_000 });
    expect(mergeByTime(since).map((l) => JSON.parse(l.text).msg)).toEqual(['line 3', 'line 4', 'line 5']);
    expect((await fleet.logs([nodes[0]!], {})).lines).toHaveLength(3);

    // What is written after the history read is what following shows, each line once.
    const later = Math.max(Date.now(), mark.at);
    await logs.send(
      new PutLogEventsCommand({
        logGroupName: logGroupOf(stackName),
        logStreamName: nodes[1]!.id,
        logEvents: [{ timestamp: later, message: 'after the history' }],
      }),
    );
    const followed: string[] = [];
    const stop = new AbortController();
    await fleet.follow(
      nodes,
      mark,
      (lines) => {
        followed.push(...lines.map((l) => `${l.node} ${l.text}`));
        stop.abort();
      },
      stop.signal,
    );
    expect(followed).toEqual([`${nodes[1]!.id} after the history`]);
  });

  it('drives a whole fleet on aws: the live stack by DNS, its instances, Run Command, restart; unknown names refused', async () => {
    const clients = motoClients(moto);
    const provisioner = new AwsStackProvisioner({
      logger: testLogger,
      ...clients,
      region: motoRegion,
      templateBucket: 'templates',
      templateDir: resolve(import.meta.dirname, '../aws/fixtures'),
    });
    const zone = await createZone(moto, 'navcloud.test');
    const dns = new Route53DnsRouter({
      logger: testLogger,
      route53: clients.route53,
      hostedZoneId: zone,
      minIntervalMs: 0,
    });
    await dns.switch({
      recordName: 'sync.prod.navcloud.test',
      ttl: 60,
      expected: undefined,
      stack: stackName,
      target: stack.outputs!.dnsTarget,
    });
    const fleet = new Fleet({
      env: 'prod',
      recordName: 'sync.prod.navcloud.test',
      stacks: provisioner,
      dns,
      platform: platform(),
      drainSeconds: 0,
    });
    const { api } = await groups();
    const rows = await fleet.list({});
    // Each node is asked for its stats by Run Command; moto's invocations print nothing, so none has any.
    expect(rows.map((r) => [r.id, r.live, r.colour, r.status])).toEqual(
      api.map((id) => [id, true, 'blue', 'unreachable']),
    );
    const asked = (await clients.ssm.send(new ListCommandsCommand({}))).Commands!.find((c) =>
      c.Parameters?.commands?.[0]?.includes('navcloud-admin.js GET /admin/stats'),
    );
    expect(asked?.Targets).toEqual([{ Key: 'tag:navcloud:api-node-of', Values: [stackName] }]);
    const { results } = await fleet.exec({ node: api[1] }, 'uptime', { parallel: 1, timeoutSeconds: 5 });
    expect(results.map((r) => [r.node, r.exitCode])).toEqual([[api[1], 0]]);
    await platform().restart(rows[0]!);
    const restart = (await clients.ssm.send(new ListCommandsCommand({}))).Commands!.find(
      (c) => c.Parameters?.commands?.[0] === 'systemctl restart navcloud-sync',
    );
    expect(restart?.InstanceIds).toContain(api[0]);
    await expect(fleet.list({ node: 'i-nope' })).rejects.toThrow(
      new FleetInputError(`no node i-nope in ${stackName} (its nodes: ${api.join(', ')})`),
    );
    await expect(fleet.list({ stack: 'navcloud-prod-green-0' })).rejects.toThrow(FleetInputError);
  });
});
