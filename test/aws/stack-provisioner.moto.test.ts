import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { AwsStackProvisioner, INLINE_TEMPLATE_LIMIT, STACK_TAGS } from '../../src/cloud/aws/stack-provisioner.ts';
import type { CreateStackRequest } from '../../src/cloud/ports.ts';
import { startMoto, motoRegion, type Moto } from '../support/moto.ts';
import { createBucket, motoClients } from './moto-helpers.ts';
import { testLogger } from '../support/logger.ts';
import { tempDir } from '../support/temp-dir.ts';

const fixtures = resolve(import.meta.dirname, 'fixtures');
const templateBucket = 'switchyard-templates';
let moto: Moto;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  await createBucket(moto, templateBucket);
});

function provisioner(templateDir = fixtures) {
  const { cloudFormation, s3, autoScaling, ec2 } = motoClients(moto);
  return new AwsStackProvisioner({
    logger: testLogger,
    cloudFormation,
    s3,
    autoScaling,
    ec2,
    region: motoRegion,
    templateBucket,
    templateDir,
    poll: { initialMs: 10, maxMs: 100, timeoutMs: 30_000 },
  });
}

const request = (over: Partial<CreateStackRequest> = {}): CreateStackRequest => ({
  name: 'navcloud-dev-green-a1b2c3',
  env: 'dev',
  colour: 'green',
  workflowId: 'switch-dev',
  template: 'small-stack.yaml',
  parameters: { NodeCount: '2', AppVersion: '1.4.2' },
  ...over,
});

describe('AwsStackProvisioner on moto', () => {
  it('creates a stack with parameters and tags, reads its outputs, lists it by env tag, deletes it', async () => {
    const stacks = provisioner();
    await stacks.create(request());
    const progress: string[] = [];
    const ready = await stacks.waitUntilReady('navcloud-dev-green-a1b2c3', (p) => progress.push(p.rawStatus));
    expect(progress.at(-1)).toBe('CREATE_COMPLETE');
    expect(ready).toMatchObject({
      name: 'navcloud-dev-green-a1b2c3',
      env: 'dev',
      colour: 'green',
      workflowId: 'switch-dev',
      status: 'ready',
      outputs: {
        endpoint: 'https://navcloud-dev-green-a1b2c3.example.test',
        adminUrl: 'https://navcloud-dev-green-a1b2c3.example.test/admin-1.4.2',
        nodes: [],
        dnsTarget: {
          kind: 'alias',
          dnsName: 'navcloud-dev-green-a1b2c3-nlb.elb.us-east-1.amazonaws.com',
          hostedZoneId: 'Z26RNL4JYFTOTI',
        },
      },
    });
    const raw = await motoClients(moto).cloudFormation.send(
      new DescribeStacksCommand({ StackName: 'navcloud-dev-green-a1b2c3' }),
    );
    expect(raw.Stacks?.[0]?.Tags).toEqual(
      expect.arrayContaining([
        { Key: STACK_TAGS.env, Value: 'dev' },
        { Key: STACK_TAGS.colour, Value: 'green' },
        { Key: STACK_TAGS.workflowId, Value: 'switch-dev' },
        { Key: STACK_TAGS.stack, Value: 'navcloud-dev-green-a1b2c3' },
      ]),
    );
    expect(raw.Stacks?.[0]?.Parameters).toEqual(
      expect.arrayContaining([{ ParameterKey: 'AppVersion', ParameterValue: '1.4.2' }]),
    );

    await stacks.create(
      request({ name: 'navcloud-prod-blue-ffff00', env: 'prod', colour: 'blue', workflowId: 'switch-prod' }),
    );
    await stacks.create(request({ name: 'navcloud-dev-blue-d4e5f6', colour: 'blue' }));
    const listed = await stacks.list('dev');
    expect(listed.map((s) => s.name).sort()).toEqual(['navcloud-dev-blue-d4e5f6', 'navcloud-dev-green-a1b2c3']);
    expect(listed.every((s) => s.env === 'dev')).toBe(true);

    await stacks.delete('navcloud-dev-green-a1b2c3');
    await stacks.waitUntilDeleted('navcloud-dev-green-a1b2c3');
    expect(await stacks.describe('navcloud-dev-green-a1b2c3')).toBeUndefined();
    expect((await stacks.list('dev')).map((s) => s.name)).toEqual(['navcloud-dev-blue-d4e5f6']);
    // Deleting what is gone is a no-op.
    await stacks.delete('navcloud-dev-green-a1b2c3');
    await stacks.waitUntilDeleted('navcloud-dev-green-a1b2c3');
  });

  it('ends with one stack when a create is repeated after a lost response (moto answers AlreadyExists; the tags prove it is ours)', async () => {
    const stacks = provisioner();
    await stacks.create(request());
    await stacks.create(request());
    const all = await motoClients(moto).cloudFormation.send(new DescribeStacksCommand({}));
    expect(all.Stacks?.filter((s) => s.StackName === 'navcloud-dev-green-a1b2c3')).toHaveLength(1);
    expect((await stacks.waitUntilReady('navcloud-dev-green-a1b2c3')).status).toBe('ready');
  });

  it('refuses to adopt a stack of the same name created by another workflow', async () => {
    const stacks = provisioner();
    await stacks.create(request());
    await expect(stacks.create(request({ workflowId: 'switch-dev-other' }))).rejects.toMatchObject({
      code: 'AlreadyExists',
      retryable: false,
      resource: 'navcloud-dev-green-a1b2c3',
    });
  });

  it('passes a template over the inline limit by URL from S3', async () => {
    const dir = tempDir('switchyard-templates-').path;
    const small = await readFile(join(fixtures, 'small-stack.yaml'), 'utf8');
    const padding = Array.from(
      { length: 700 },
      (_, i) => `# padding line ${i} keeps this template above the inline limit of CreateStack`,
    ).join('\n');
    await writeFile(join(dir, 'big-stack.yaml'), `${small}\n${padding}\n`);
    expect((await readFile(join(dir, 'big-stack.yaml'))).byteLength).toBeGreaterThan(INLINE_TEMPLATE_LIMIT);
    const stacks = provisioner(dir);
    await stacks.create(request({ template: 'big-stack.yaml' }));
    expect((await stacks.waitUntilReady('navcloud-dev-green-a1b2c3')).outputs?.endpoint).toBe(
      'https://navcloud-dev-green-a1b2c3.example.test',
    );
    const uploaded = await motoClients(moto).s3.send(
      new ListObjectsV2Command({ Bucket: templateBucket, Prefix: 'templates/navcloud-dev-green-a1b2c3/' }),
    );
    expect(uploaded.Contents?.map((o) => o.Key)).toEqual([expect.stringMatching(/big-stack\.yaml$/)]);
  });

  it("lists the running API nodes of the ApiGroup Auto Scaling group by private address, not the other groups' instances", async () => {
    const stacks = provisioner();
    await stacks.create(request({ template: 'api-group-stack.yaml', parameters: { ApiNodeCount: '3' } }));
    const ready = await stacks.waitUntilReady('navcloud-dev-green-a1b2c3');
    const { ec2, autoScaling } = motoClients(moto);
    const group = await autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    const api = group.AutoScalingGroups!.find((g) => g.Instances?.length === 3)!;
    const described = await ec2.send(
      new DescribeInstancesCommand({ InstanceIds: api.Instances!.map((i) => i.InstanceId!) }),
    );
    const addresses = described
      .Reservations!.flatMap((r) => r.Instances!)
      .sort((a, b) => a.InstanceId!.localeCompare(b.InstanceId!))
      .map((i) => i.PrivateIpAddress);
    expect(addresses).toHaveLength(3);
    expect(ready.outputs?.nodes).toEqual(addresses.map((a) => `http://${a}:8080`));
    expect((await stacks.list('dev'))[0]?.outputs?.nodes).toEqual(ready.outputs?.nodes);

    // A stopped instance is no node to drain.
    await ec2.send(new StopInstancesCommand({ InstanceIds: [api.Instances![0]!.InstanceId!] }));
    expect((await stacks.describe('navcloud-dev-green-a1b2c3'))?.outputs?.nodes).toHaveLength(2);
  });

  it('names a missing template file clearly', async () => {
    await expect(provisioner().create(request({ template: 'nope.yaml' }))).rejects.toMatchObject({
      code: 'TemplateMissing',
      retryable: false,
      message: expect.stringContaining('nope.yaml'),
    });
  });
});
