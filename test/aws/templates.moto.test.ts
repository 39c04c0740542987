import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CreateStackCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { GetBucketEncryptionCommand } from '@aws-sdk/client-s3';
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, ECSClient } from '@aws-sdk/client-ecs';
import { repoRoot } from '../../src/config/environment.ts';
import { startMoto, type Moto } from '../support/moto.ts';
import { motoClients, motoConfig } from './moto-helpers.ts';

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
});

// These long-lived stacks have none of an app stack's outputs, so they are created with plain
// SDK calls rather than through the StackProvisioner (whose port is about app stacks).
async function createLongLived(name: string, template: string, parameters: Record<string, string>) {
  const cfn = motoClients(moto).cloudFormation;
  await cfn.send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: await readFile(resolve(repoRoot, 'infra', template), 'utf8'),
      Parameters: Object.entries(parameters).map(([ParameterKey, ParameterValue]) => ({
        ParameterKey,
        ParameterValue,
      })),
      Capabilities: ['CAPABILITY_NAMED_IAM'],
    }),
  );
  const stack = (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
  expect(stack?.StackStatus, `${template} on moto`).toBe('CREATE_COMPLETE');
  const resources = await cfn.send(new DescribeStackResourcesCommand({ StackName: name }));
  return new Map((resources.StackResources ?? []).map((r) => [r.LogicalResourceId!, r]));
}

describe('infra templates on moto', () => {
  it('network.yaml builds the VPC, four subnets, the NAT gateway and the S3 endpoint', async () => {
    const resources = await createLongLived('navcloud-prod-network', 'network.yaml', {
      EnvName: 'prod',
      VpcCidr: '10.40.0.0/16',
    });
    for (const id of [
      'Vpc',
      'PublicSubnetA',
      'PublicSubnetB',
      'PrivateSubnetA',
      'PrivateSubnetB',
      'NatGateway',
      'S3Endpoint',
      'PrivateDefaultRoute',
    ]) {
      expect(resources.get(id)?.ResourceStatus, id).toBe('CREATE_COMPLETE');
    }
  });

  // moto's CloudFormation applies only a bucket's encryption and tags (not versioning, lifecycle
  // rules or access logging): those are held to cfn-lint and checked in the template by
  // templates.test.ts and checkov.test.ts.
  it('backups.yaml builds an encrypted bucket and its SSE-S3 access-log bucket', async () => {
    const resources = await createLongLived('navcloud-prod-backups', 'backups.yaml', {
      EnvName: 'prod',
      BucketName: 'navcloud-prod-backups',
    });
    expect(resources.get('Bucket')?.PhysicalResourceId).toBe('navcloud-prod-backups');
    const s3 = motoClients(moto).s3;
    const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: 'navcloud-prod-backups' }));
    expect(
      encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm,
    ).toBe('aws:kms');
    expect(resources.get('AccessLogBucket')?.PhysicalResourceId).toBe('navcloud-prod-backups-access-logs');
    const logEncryption = await s3.send(
      new GetBucketEncryptionCommand({ Bucket: 'navcloud-prod-backups-access-logs' }),
    );
    expect(
      logEncryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm,
    ).toBe('AES256');
  });

  it('orchestrator.yaml builds the worker role, its policy and the stack execution role', async () => {
    const resources = await createLongLived('switchyard-prod-orchestrator', 'orchestrator.yaml', {
      EnvName: 'prod',
      WorkerPrincipalArn: 'arn:aws:iam::123456789012:root',
      BackupBucket: 'navcloud-prod-backups',
      HostedZoneId: 'Z0123456789ABCDEFGHIJ',
      RecordName: 'sync.navcloud.example.com',
      ArtifactBucket: 'navcloud-prod-artifacts',
    });
    expect(resources.get('WorkerRole')).toMatchObject({
      ResourceStatus: 'CREATE_COMPLETE',
      PhysicalResourceId: 'switchyard-prod-worker',
    });
    expect(resources.get('StackExecutionRole')).toMatchObject({
      ResourceStatus: 'CREATE_COMPLETE',
      PhysicalResourceId: 'switchyard-prod-stack-execution',
    });
    expect(resources.get('WorkerPolicy')?.PhysicalResourceId).toBe(
      'arn:aws:iam::123456789012:policy/switchyard-prod-worker',
    );
    expect(resources.get('AppRoleBoundary')?.PhysicalResourceId).toBe(
      'arn:aws:iam::123456789012:policy/switchyard-prod-app-role-boundary',
    );
  });
});

describe('worker-service.yaml on moto', () => {
  it("builds the cluster, the Fargate task definition and a service of at least one worker in the network's private subnets", async () => {
    await createLongLived('navcloud-prod-network', 'network.yaml', { EnvName: 'prod', VpcCidr: '10.40.0.0/16' });
    const resources = await createLongLived('switchyard-prod-worker', 'worker-service.yaml', {
      EnvName: 'prod',
      NetworkStack: 'navcloud-prod-network',
      Image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/switchyard@sha256:' + 'a'.repeat(64),
      WorkerRoleArn: 'arn:aws:iam::123456789012:role/switchyard-prod-worker',
      TemporalAddress: 'prod.a1b2c.tmprl.cloud:7233',
      TemporalNamespace: 'prod.a1b2c',
      TemporalAuth: 'api-key',
      TemporalSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:switchyard/prod/temporal-AbCdEf',
    });
    for (const id of ['LogGroup', 'ExecutionRole', 'Cluster', 'TaskSecurityGroup', 'TaskDefinition', 'Service']) {
      expect(resources.get(id)?.ResourceStatus, id).toBe('CREATE_COMPLETE');
    }
    expect(resources.has('ScraperIngress')).toBe(false);
    const ecs = new ECSClient(motoConfig(moto));
    const { taskDefinition } = await ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: resources.get('TaskDefinition')!.PhysicalResourceId! }),
    );
    // moto's CloudFormation keeps the containers but not the task's role, network mode or launch
    // type: templates.test.ts holds those to the template.
    const container = taskDefinition!.containerDefinitions![0]!;
    expect(container).toMatchObject({ readonlyRootFilesystem: true, healthCheck: { startPeriod: 90 } });
    expect(container.secrets).toEqual([
      {
        name: 'TEMPORAL_API_KEY',
        valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:switchyard/prod/temporal-AbCdEf:apiKey::',
      },
    ]);
    expect(container.logConfiguration?.options?.['awslogs-group']).toBe('/switchyard/prod/worker');
    const { services } = await ecs.send(
      new DescribeServicesCommand({ cluster: 'switchyard-prod', services: ['switchyard-prod-worker'] }),
    );
    expect(services?.[0]).toMatchObject({ serviceName: 'switchyard-prod-worker', desiredCount: 2, status: 'ACTIVE' });
  });
});
