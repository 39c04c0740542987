import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient, DescribeStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AwsFleetPlatform } from '../../src/operations/fleet/aws.ts';
import { parseOsStats } from '../../src/operations/fleet/os-stats.ts';
import type { FleetNode, LogLine } from '../../src/operations/fleet/port.ts';

// What moto cannot produce: throttling, a command that never finishes on one instance, real output.
const ssm = mockClient(SSMClient);
const logs = mockClient(CloudWatchLogsClient);
const cfn = mockClient(CloudFormationClient);
const asg = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);
const region = { region: 'eu-west-1' };
const stack = 'navcloud-prod-green-a1b2c3';
const nodes: FleetNode[] = ['i-0aaa', 'i-0bbb', 'i-0ccc'].map((id, n) => ({
  stack,
  id,
  address: `10.0.1.${n + 1}`,
  url: `http://10.0.1.${n + 1}:8080`,
  state: 'running',
}));

function platform() {
  return new AwsFleetPlatform({
    ssm: new SSMClient(region),
    logs: new CloudWatchLogsClient(region),
    cloudFormation: new CloudFormationClient(region),
    autoScaling: new AutoScalingClient(region),
    ec2: new EC2Client(region),
    pollMs: 1,
    deliverySeconds: 1,
  });
}

const throttled = () =>
  Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });

beforeEach(() => {
  for (const mock of [ssm, logs, cfn, asg, ec2]) mock.reset();
  cfn.on(DescribeStackResourcesCommand).resolves({
    StackResources: [
      {
        LogicalResourceId: 'ApiGroup',
        PhysicalResourceId: 'api-group',
        ResourceType: 'AWS::AutoScaling::AutoScalingGroup',
        ResourceStatus: 'CREATE_COMPLETE',
        Timestamp: new Date(),
      },
    ],
  });
  asg.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      { AutoScalingGroupName: 'api-group', Instances: nodes.map((n) => ({ InstanceId: n.id })) } as never,
    ],
  });
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: nodes.map((n) => ({ InstanceId: n.id, PrivateIpAddress: n.address, State: { Name: 'running' } })),
      },
    ],
  } as never);
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
});

describe('fleet on the aws profile: the paths moto cannot produce', () => {
  it("keeps polling through throttling and the not-yet-existing invocation, and reports each instance's outcome", async () => {
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: 'i-0aaa' })
      .rejectsOnce(
        Object.assign(new Error('invocation does not exist'), {
          name: 'InvocationDoesNotExist',
          $metadata: { httpStatusCode: 400 },
        }),
      )
      .rejectsOnce(throttled())
      .resolvesOnce({ Status: 'InProgress' })
      .resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'up 3 days\n' });
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: 'i-0bbb' })
      .resolves({ Status: 'Failed', ResponseCode: 2, StandardErrorContent: 'no such file\n', StatusDetails: 'Failed' });
    // The command's own executionTimeout ran out on this one.
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: 'i-0ccc' })
      .resolves({ Status: 'TimedOut', ResponseCode: -1, StatusDetails: 'ExecutionTimedOut' });
    const results = await platform().exec(nodes, { script: 'uptime', parallel: 2, timeoutSeconds: 5 });
    expect(results).toEqual([
      { node: 'i-0aaa', exitCode: 0, stdout: 'up 3 days\n', stderr: '', timedOut: false },
      { node: 'i-0bbb', exitCode: 2, stdout: '', stderr: 'no such file\n', timedOut: false },
      { node: 'i-0ccc', exitCode: 124, stdout: '', stderr: 'ExecutionTimedOut\n', timedOut: true },
    ]);
    const sent = ssm.commandCalls(SendCommandCommand)[0]!.args[0].input;
    expect(sent).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      MaxConcurrency: '2',
      Targets: [{ Key: 'tag:navcloud:api-node-of', Values: [stack] }],
    });
  });

  it('gives up on an instance that never answers, as timed out, without failing the others', async () => {
    ssm.on(GetCommandInvocationCommand, { InstanceId: 'i-0aaa' }).resolves({ Status: 'Success', ResponseCode: 0 });
    ssm.on(GetCommandInvocationCommand, { InstanceId: 'i-0bbb' }).resolves({ Status: 'Success', ResponseCode: 0 });
    ssm.on(GetCommandInvocationCommand, { InstanceId: 'i-0ccc' }).resolves({ Status: 'InProgress' });
    const results = await platform().exec(nodes, { script: 'sleep 600', parallel: 3, timeoutSeconds: 1 });
    expect(results.map((r) => [r.node, r.exitCode, r.timedOut])).toEqual([
      ['i-0aaa', 0, false],
      ['i-0bbb', 0, false],
      ['i-0ccc', 124, true],
    ]);
    expect(results[2]!.stderr).toContain('no answer from SSM before the timeout');
  });

  it('fails a command when SendCommand is refused for good', async () => {
    ssm.on(SendCommandCommand).rejects(
      Object.assign(new Error('not authorized to perform ssm:SendCommand'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(platform().exec(nodes, { script: 'uptime', parallel: 1, timeoutSeconds: 5 })).rejects.toMatchObject({
      code: 'AccessDenied',
      retryable: false,
      message: expect.stringContaining('ssm:SendCommand'),
    });
  });

  it('follows CloudWatch Logs through throttling without showing an event twice, until aborted', async () => {
    const now = Date.now();
    logs
      .on(FilterLogEventsCommand)
      .resolvesOnce({
        events: [{ eventId: 'e1', logStreamName: 'i-0aaa', timestamp: now, message: '{"time":1,"msg":"a"}' }],
      })
      .rejectsOnce(throttled())
      // The boundary event comes again with the next poll's startTime; it is not shown twice.
      .resolvesOnce({
        events: [
          { eventId: 'e1', logStreamName: 'i-0aaa', timestamp: now, message: '{"time":1,"msg":"a"}' },
          { eventId: 'e2', logStreamName: 'i-0bbb', timestamp: now + 5, message: 'plain text' },
        ],
      })
      .resolves({ events: [] });
    const seen: LogLine[] = [];
    const stop = new AbortController();
    await platform().follow(
      nodes.slice(0, 2),
      { at: now - 1, offsets: {} },
      (lines) => {
        seen.push(...lines);
        if (seen.length >= 2) stop.abort();
      },
      stop.signal,
    );
    expect(seen.map((l) => [l.node, l.text])).toEqual([
      ['i-0aaa', '{"time":1,"msg":"a"}'],
      ['i-0bbb', 'plain text'],
    ]);
    expect(seen[1]!.time).toBe(now + 5);
    expect(logs.commandCalls(FilterLogEventsCommand)[0]!.args[0].input).toMatchObject({
      logGroupName: `/navcloud/${stack}`,
      logStreamNames: ['i-0aaa', 'i-0bbb'],
      startTime: now - 1,
    });
  });
});

describe('node stats on the aws profile', () => {
  it('asks each instance for its own /admin/stats through one Run Command and reads the JSON it prints', async () => {
    const stats = {
      node: 'i-0aaa',
      fenced: false,
      draining: false,
      openStreams: 12,
      requestRate: 3.5,
      items: 9,
      cursor: 'c',
      uptimeSeconds: 60,
      version: '1.4.2',
      eventLoopLagMs: 1.2,
    };
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: 'i-0aaa' })
      .resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: JSON.stringify(stats) });
    ssm.on(GetCommandInvocationCommand, { InstanceId: 'i-0bbb' }).resolves({
      Status: 'Failed',
      ResponseCode: 1,
      StandardErrorContent: 'navcloud-admin: GET /admin/stats on 127.0.0.1:8080 failed: connect ECONNREFUSED',
    });
    ssm
      .on(GetCommandInvocationCommand, { InstanceId: 'i-0ccc' })
      .resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'not json' });
    expect(await platform().stats(nodes)).toEqual([stats, undefined, undefined]);
    const script = ssm.commandCalls(SendCommandCommand)[0]!.args[0].input.Parameters!.commands![0]!;
    expect(script).toBe(
      'set -a; . /etc/navcloud.env; set +a; cd /opt/navcloud && node bin/navcloud-admin.js GET /admin/stats',
    );
  });
});

describe('OS statistics script output', () => {
  it('turns the one line into figures and refuses anything else', () => {
    expect(parseOsStats('clk=100 ticks=25 ns=1000000000 rss_kb=102400 fds=42 load=0.50,0.25,0.10\n')).toEqual({
      cpuPercent: 25,
      rssBytes: 104_857_600,
      openFiles: 42,
      load: [0.5, 0.25, 0.1],
    });
    expect(parseOsStats('')).toBeUndefined();
    expect(parseOsStats('clk=100 ticks=25 ns=0 rss_kb=1 fds=1 load=1,1,1')).toBeUndefined();
    expect(parseOsStats('clk=100 ticks=25 ns=1 rss_kb= fds=1 load=1,1,1')).toBeUndefined();
  });
});
