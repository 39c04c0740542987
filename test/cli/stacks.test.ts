import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateHostedZoneCommand, Route53Client } from '@aws-sdk/client-route-53';
import { STACK_TAGS } from '../../src/cloud/aws/stack-provisioner.ts';
import { Route53DnsRouter } from '../../src/cloud/aws/dns-router.ts';
import { stackName } from '../../src/switch/stack-name.ts';
import { motoCredentials, motoRegion, startMoto, type Moto } from '../support/moto.ts';
import { environmentsDir, environmentYaml, runBin } from './run-cli.ts';
import { testLogger } from '../support/logger.ts';

// `stacks` through the real aws adapters, the SDK pointed at moto by AWS_ENDPOINT_URL.
const env = `stk-${randomBytes(3).toString('hex')}`;
const BLUE = stackName(env, 'blue', 'aaaaaa');
const GREEN = stackName(env, 'green', 'bbbbbb');
let moto: Moto;
let envs: ReturnType<typeof environmentsDir>;
let awsEnv: Record<string, string>;

const TEMPLATE = JSON.stringify({
  Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
  Outputs: {
    Endpoint: { Value: 'http://127.0.0.1:1' },
    AdminUrl: { Value: 'http://127.0.0.1:1' },
    AliasDnsName: { Value: 'lb.example.test' },
    AliasHostedZoneId: { Value: 'ZLB' },
  },
});

async function createStack(cfn: CloudFormationClient, name: string, colour: string) {
  await cfn.send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: TEMPLATE,
      Tags: Object.entries({
        [STACK_TAGS.env]: env,
        [STACK_TAGS.colour]: colour,
        [STACK_TAGS.workflowId]: `switch-${env}`,
        [STACK_TAGS.stack]: name,
      }).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
}

beforeAll(async () => {
  moto = await startMoto();
  const config = { region: motoRegion, endpoint: moto.endpoint, credentials: motoCredentials };
  const route53 = new Route53Client(config);
  const zone = await route53.send(new CreateHostedZoneCommand({ Name: `${env}.navcloud.test`, CallerReference: env }));
  const zoneId = zone.HostedZone!.Id!.replace('/hostedzone/', '');
  const cfn = new CloudFormationClient(config);
  await createStack(cfn, BLUE, 'blue');
  await createStack(cfn, GREEN, 'green');
  await new Route53DnsRouter({ logger: testLogger, route53, hostedZoneId: zoneId, minIntervalMs: 0 }).switch({
    recordName: `sync.${env}.navcloud.test`,
    ttl: 1,
    expected: undefined,
    stack: GREEN,
    target: { kind: 'a', addresses: ['127.0.0.1'] },
  });
  envs = environmentsDir({
    [env]: environmentYaml(env).replace('profile: local', 'profile: aws').replace('ZLOCAL', zoneId),
  });
  awsEnv = {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: motoCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: motoCredentials.secretAccessKey,
    AWS_REGION: motoRegion,
  };
}, 120_000);

afterAll(async () => {
  envs?.remove();
  await moto?.stop();
});

describe('switchyard stacks', () => {
  it("lists the environment's stacks and marks the one DNS points to", async () => {
    const result = await runBin(['stacks', '--env', env, '--json', '--environments', envs.dir], awsEnv);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout) as {
      live: string;
      stacks: Array<{ name: string; colour: string; live: boolean }>;
    };
    expect(listed.live).toBe(GREEN);
    expect(listed.stacks.map((s) => [s.name, s.colour, s.live]).sort()).toEqual([
      [BLUE, 'blue', false],
      [GREEN, 'green', true],
    ]);
  });

  it('prints a line per stack with the live one starred', async () => {
    const result = await runBin(['stacks', '--env', env, '--environments', envs.dir], awsEnv);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`sync.${env}.navcloud.test → ${GREEN}`);
    expect(lines.filter((line) => line.startsWith('*'))).toEqual([expect.stringContaining(GREEN)]);
    expect(lines).toHaveLength(3);
  });
});
