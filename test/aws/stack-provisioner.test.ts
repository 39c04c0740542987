import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import {
  AwsStackProvisioner,
  createToken,
  parseStackOutputs,
  STACK_TAGS,
} from '../../src/cloud/aws/stack-provisioner.ts';
import { StackFailedError } from '../../src/cloud/errors.ts';
import type { CreateStackRequest } from '../../src/cloud/ports.ts';
import { testLogger } from '../support/logger.ts';

const cfn = mockClient(CloudFormationClient);
const stackId = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/navcloud-prod-green-a1b2c3/1111';

function provisioner() {
  return new AwsStackProvisioner({
    logger: testLogger,
    cloudFormation: new CloudFormationClient({ region: 'eu-west-1' }),
    s3: new S3Client({ region: 'eu-west-1' }),
    autoScaling: new AutoScalingClient({ region: 'eu-west-1' }),
    ec2: new EC2Client({ region: 'eu-west-1' }),
    region: 'eu-west-1',
    templateBucket: 'b',
    roleArn: 'arn:aws:iam::123456789012:role/switchyard-prod-stack-execution',
    poll: { initialMs: 1, maxMs: 2, timeoutMs: 5_000 },
  });
}

const request: CreateStackRequest = {
  name: 'navcloud-prod-green-a1b2c3',
  env: 'prod',
  colour: 'green',
  workflowId: 'switch-prod',
  template: 'app-stack.yaml',
  parameters: { NetworkStack: 'navcloud-prod-network', AppVersion: '1.4.2' },
};

const tags = [
  { Key: STACK_TAGS.env, Value: 'prod' },
  { Key: STACK_TAGS.colour, Value: 'green' },
  { Key: STACK_TAGS.workflowId, Value: 'switch-prod' },
  { Key: STACK_TAGS.stack, Value: request.name },
];

function stack(status: string, over: Partial<Stack> = {}): Stack {
  return {
    StackName: request.name,
    StackId: stackId,
    StackStatus: status as Stack['StackStatus'],
    CreationTime: new Date('2026-11-26T05:00:00Z'),
    Tags: tags,
    ...over,
  };
}

// The outputs infra/app-stack.yaml declares, as CloudFormation reports them (app-stack cannot
// be created on moto: it builds the NLB as an ALB and fails its TCP listener).
const appStackOutputs = [
  { OutputKey: 'Endpoint', OutputValue: 'https://navcloud-prod-green-a1b2c3.stacks.navcloud.example.com' },
  { OutputKey: 'AdminUrl', OutputValue: 'https://navcloud-prod-green-a1b2c3.stacks.navcloud.example.com' },
  { OutputKey: 'AliasDnsName', OutputValue: 'navcl-Publi-1ABC.elb.eu-west-1.amazonaws.com' },
  { OutputKey: 'AliasHostedZoneId', OutputValue: 'Z2IFOLAFXWLO4F' },
  { OutputKey: 'RiakEndpoint', OutputValue: 'http://internal-riak:8098' },
];

function event(logical: string, type: string, status: string, reason?: string): StackEvent {
  return {
    StackId: stackId,
    EventId: `${logical}-${status}`,
    StackName: request.name,
    LogicalResourceId: logical,
    ResourceType: type,
    ResourceStatus: status as StackEvent['ResourceStatus'],
    ResourceStatusReason: reason,
    Timestamp: new Date(),
    PhysicalResourceId: logical === request.name ? stackId : `${logical}-id`,
  };
}

// A stack of a template without an ApiGroup resource, so no nodes.
beforeEach(() => {
  cfn.reset();
  cfn.on(DescribeStackResourcesCommand).resolves({
    StackResources: [
      {
        LogicalResourceId: 'Other',
        PhysicalResourceId: 'other',
        ResourceType: 'AWS::SNS::Topic',
        ResourceStatus: 'CREATE_COMPLETE',
        Timestamp: new Date(),
      },
    ],
  });
});

describe('AwsStackProvisioner (aws-sdk-client-mock)', () => {
  // moto ignores ClientRequestToken and cannot lose an answer: the request itself is checked here.
  it('sends the same ClientRequestToken when CreateStack is retried after a lost answer', async () => {
    cfn
      .on(CreateStackCommand)
      .rejectsOnce(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .resolves({ StackId: stackId });
    const stacks = provisioner();
    await expect(stacks.create(request)).rejects.toMatchObject({ retryable: true, code: 'Network' });
    await stacks.create(request);
    const calls = cfn.commandCalls(CreateStackCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.ClientRequestToken).toBe(calls[1]!.ClientRequestToken);
    expect(calls[0]!.ClientRequestToken).toBe(createToken('switch-prod', request.name));
    expect(calls[0]!.ClientRequestToken).toMatch(/^[a-zA-Z0-9][-a-zA-Z0-9]{0,127}$/);
    // A different stack of the same workflow gets a different token.
    expect(createToken('switch-prod', 'navcloud-prod-blue-d4e5f6')).not.toBe(calls[0]!.ClientRequestToken);
  });

  // app-stack.yaml cannot be created on moto (see appStackOutputs), so the request is checked instead.
  it('creates app-stack.yaml with the environment parameters, stack tags, capabilities and the execution role', async () => {
    cfn.on(CreateStackCommand).resolves({ StackId: stackId });
    await provisioner().create(request);
    const input = cfn.commandCalls(CreateStackCommand)[0]!.args[0].input;
    expect(input.StackName).toBe(request.name);
    expect(input.TemplateBody).toContain('AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(input.TemplateURL).toBeUndefined();
    expect(input.Parameters).toEqual([
      { ParameterKey: 'NetworkStack', ParameterValue: 'navcloud-prod-network' },
      { ParameterKey: 'AppVersion', ParameterValue: '1.4.2' },
    ]);
    expect(input.Tags).toEqual(tags);
    expect(input.Capabilities).toEqual(['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM']);
    expect(input.RoleARN).toBe('arn:aws:iam::123456789012:role/switchyard-prod-stack-execution');
  });

  // moto creates a stack within CreateStack, so it is never seen in progress.
  it('waits with progress until ready and parses the app stack outputs', async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({ Stacks: [stack('CREATE_IN_PROGRESS')] })
      .resolvesOnce({ Stacks: [stack('CREATE_IN_PROGRESS')] })
      .resolves({ Stacks: [stack('CREATE_COMPLETE', { Outputs: appStackOutputs })] });
    cfn
      .on(ListStackResourcesCommand)
      .resolvesOnce({
        StackResourceSummaries: [
          {
            LogicalResourceId: 'A',
            ResourceType: 't',
            ResourceStatus: 'CREATE_COMPLETE',
            LastUpdatedTimestamp: new Date(),
          },
          {
            LogicalResourceId: 'B',
            ResourceType: 't',
            ResourceStatus: 'CREATE_IN_PROGRESS',
            LastUpdatedTimestamp: new Date(),
          },
        ],
      })
      .resolves({
        StackResourceSummaries: [
          {
            LogicalResourceId: 'A',
            ResourceType: 't',
            ResourceStatus: 'CREATE_COMPLETE',
            LastUpdatedTimestamp: new Date(),
          },
        ],
        NextToken: undefined,
      });
    const progress: unknown[] = [];
    const ready = await provisioner().waitUntilReady(request.name, (p) => progress.push(p));
    expect(progress).toEqual([
      { rawStatus: 'CREATE_IN_PROGRESS', done: 1, total: 2 },
      { rawStatus: 'CREATE_IN_PROGRESS', done: 1, total: 1 },
      { rawStatus: 'CREATE_COMPLETE' },
    ]);
    expect(ready).toMatchObject({
      status: 'ready',
      env: 'prod',
      colour: 'green',
      workflowId: 'switch-prod',
      outputs: {
        endpoint: 'https://navcloud-prod-green-a1b2c3.stacks.navcloud.example.com',
        adminUrl: 'https://navcloud-prod-green-a1b2c3.stacks.navcloud.example.com',
        nodes: [],
        dnsTarget: {
          kind: 'alias',
          dnsName: 'navcl-Publi-1ABC.elb.eu-west-1.amazonaws.com',
          hostedZoneId: 'Z2IFOLAFXWLO4F',
        },
      },
    });
  });

  it('rejects outputs without the contract, naming the missing output', () => {
    expect(() =>
      parseStackOutputs(
        request.name,
        appStackOutputs.filter((o) => o.OutputKey !== 'AliasHostedZoneId'),
      ),
    ).toThrow(
      expect.objectContaining({ code: 'InvalidOutputs', message: expect.stringContaining("'AliasHostedZoneId'") }),
    );
  });

  // moto never leaves CREATE_IN_PROGRESS on a failed resource and never rolls back.
  it('turns a rolled-back stack into a StackFailedError naming the failed resources, read across event pages', async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({ Stacks: [stack('ROLLBACK_IN_PROGRESS')] })
      .resolves({ Stacks: [stack('ROLLBACK_COMPLETE')] });
    cfn.on(ListStackResourcesCommand).resolves({ StackResourceSummaries: [] });
    cfn.on(DescribeStackEventsCommand, { StackName: stackId, NextToken: undefined }).resolves({
      StackEvents: [
        event(request.name, 'AWS::CloudFormation::Stack', 'ROLLBACK_COMPLETE'),
        event('ApiGroup', 'AWS::AutoScaling::AutoScalingGroup', 'DELETE_COMPLETE'),
        event(
          request.name,
          'AWS::CloudFormation::Stack',
          'ROLLBACK_IN_PROGRESS',
          'The following resource(s) failed to create: [ApiGroup, Bus].',
        ),
      ],
      NextToken: 'page-2',
    });
    cfn.on(DescribeStackEventsCommand, { StackName: stackId, NextToken: 'page-2' }).resolves({
      StackEvents: [
        event('Bus', 'AWS::AmazonMQ::Broker', 'CREATE_FAILED', 'Resource creation cancelled'),
        event(
          'ApiGroup',
          'AWS::AutoScaling::AutoScalingGroup',
          'CREATE_FAILED',
          'Received 0 SUCCESS signal(s) out of 3. Unable to satisfy 100% MinSuccessfulInstancesPercent requirement',
        ),
        event('ApiGroup', 'AWS::AutoScaling::AutoScalingGroup', 'CREATE_IN_PROGRESS'),
        event(request.name, 'AWS::CloudFormation::Stack', 'CREATE_IN_PROGRESS', 'User Initiated'),
      ],
      NextToken: 'page-3',
    });
    const progress: string[] = [];
    const failure = await provisioner()
      .waitUntilReady(request.name, (p) => progress.push(p.rawStatus))
      .catch((e) => e);
    expect(failure).toBeInstanceOf(StackFailedError);
    expect(failure).toMatchObject({ retryable: false, rawStatus: 'ROLLBACK_COMPLETE', resource: request.name });
    expect(failure.failures).toEqual([
      {
        resource: 'ApiGroup',
        type: 'AWS::AutoScaling::AutoScalingGroup',
        reason: expect.stringContaining('Received 0 SUCCESS signal(s)'),
      },
      { resource: 'Bus', type: 'AWS::AmazonMQ::Broker', reason: 'Resource creation cancelled' },
    ]);
    expect(failure.message).toContain('ApiGroup (AWS::AutoScaling::AutoScalingGroup)');
    expect(progress).toEqual(['ROLLBACK_IN_PROGRESS']);
    // Reading stopped at the start of the operation: page 3 (older operations) was never asked for.
    expect(cfn.commandCalls(DescribeStackEventsCommand)).toHaveLength(2);
  });

  // moto deletes a stack within DeleteStack and never fails to.
  it('reports DELETE_FAILED with the resource that would not go', async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({ Stacks: [stack('CREATE_COMPLETE', { Outputs: appStackOutputs })] })
      .resolvesOnce({ Stacks: [stack('DELETE_IN_PROGRESS')] })
      .resolves({ Stacks: [stack('DELETE_FAILED')] });
    cfn.on(DeleteStackCommand).resolves({});
    cfn.on(ListStackResourcesCommand).resolves({ StackResourceSummaries: [] });
    cfn.on(DescribeStackEventsCommand).resolves({
      StackEvents: [
        event(
          request.name,
          'AWS::CloudFormation::Stack',
          'DELETE_FAILED',
          'The following resource(s) failed to delete: [ApiSecurityGroup].',
        ),
        event(
          'ApiSecurityGroup',
          'AWS::EC2::SecurityGroup',
          'DELETE_FAILED',
          'resource sg-0abc has a dependent object',
        ),
        event(request.name, 'AWS::CloudFormation::Stack', 'DELETE_IN_PROGRESS', 'User Initiated'),
      ],
    });
    const stacks = provisioner();
    await stacks.delete(request.name);
    expect(cfn.commandCalls(DeleteStackCommand)[0]!.args[0].input.StackName).toBe(stackId);
    const failure = await stacks.waitUntilDeleted(request.name).catch((e) => e);
    expect(failure).toBeInstanceOf(StackFailedError);
    expect(failure.message).toBe(
      `stack ${request.name} ended in DELETE_FAILED: ApiSecurityGroup (AWS::EC2::SecurityGroup): resource sg-0abc has a dependent object`,
    );
  });

  // moto answers DescribeStacks in one page.
  it("lists an environment's stacks across DescribeStacks pages, newest first, without deleted ones", async () => {
    const other = (name: string, env: string, created: string, status = 'CREATE_COMPLETE') =>
      stack(status, {
        StackName: name,
        StackId: `${stackId}-${name}`,
        CreationTime: new Date(created),
        Outputs: appStackOutputs,
        Tags: [
          { Key: STACK_TAGS.env, Value: env },
          { Key: STACK_TAGS.colour, Value: 'blue' },
          { Key: STACK_TAGS.workflowId, Value: `switch-${env}` },
        ],
      });
    cfn.on(DescribeStacksCommand, { NextToken: undefined }).resolves({
      Stacks: [
        other('navcloud-prod-blue-1', 'prod', '2026-11-01T00:00:00Z'),
        other('navcloud-dev-blue-1', 'dev', '2026-11-02T00:00:00Z'),
      ],
      NextToken: 't2',
    });
    cfn.on(DescribeStacksCommand, { NextToken: 't2' }).resolves({
      Stacks: [
        other('navcloud-prod-green-2', 'prod', '2026-11-03T00:00:00Z', 'CREATE_IN_PROGRESS'),
        other('navcloud-prod-blue-0', 'prod', '2026-10-01T00:00:00Z', 'DELETE_COMPLETE'),
        { StackName: 'unrelated', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date() },
      ],
    });
    const listed = await provisioner().list('prod');
    expect(listed.map((s) => [s.name, s.status])).toEqual([
      ['navcloud-prod-green-2', 'creating'],
      ['navcloud-prod-blue-1', 'ready'],
    ]);
  });

  // moto does not enforce IAM.
  it('classifies an access denial on CreateStack as non-retryable, naming the stack', async () => {
    cfn
      .on(CreateStackCommand)
      .rejects(
        Object.assign(
          new Error(
            'User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: cloudformation:CreateStack',
          ),
          { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } },
        ),
      );
    await expect(provisioner().create(request)).rejects.toMatchObject({
      code: 'AccessDenied',
      retryable: false,
      resource: request.name,
    });
  });

  // A live stack whose update rolled back keeps serving the old version: the switch must still
  // catch up from it and fence it, so its outputs are reported.
  it('reports the outputs of a stack that serves while its update rolled back or runs, not of one that failed to create', async () => {
    for (const [raw, serves] of [
      ['UPDATE_ROLLBACK_COMPLETE', true],
      ['UPDATE_IN_PROGRESS', true],
      ['ROLLBACK_COMPLETE', false],
    ] as const) {
      cfn.reset();
      cfn.on(DescribeStacksCommand).resolves({ Stacks: [stack(raw, { Outputs: appStackOutputs })] });
      const described = await provisioner().describe(request.name);
      expect(described?.outputs?.adminUrl, raw).toBe(serves ? appStackOutputs[1]!.OutputValue : undefined);
    }
  });
});
