import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, type Tags } from 'yaml';
import { repoRoot, parseEnvironment, environmentSchema } from '../../src/config/environment.ts';
import { toolPath } from '../../src/tools.ts';
import { API_GROUP } from '../../src/cloud/aws/api-nodes.ts';
import { API_NODE_TAG, logGroupOf } from '../../src/operations/fleet/aws.ts';

const infra = resolve(repoRoot, 'infra');

/** CloudFormation's short-form intrinsics, read into their long form. */
const intrinsics = ['Ref', 'Sub', 'GetAtt', 'If', 'Select', 'Split', 'ImportValue', 'Equals', 'Not', 'And', 'Or', 'Join', 'GetAZs', 'Cidr', 'Base64', 'FindInMap', 'Condition'];
const longName = (n: string) => (n === 'Ref' || n === 'Condition' ? n : `Fn::${n}`);
const customTags: Tags = intrinsics.flatMap((n) => [
  { tag: `!${n}`, resolve: (s: string) => ({ [longName(n)]: n === 'GetAtt' ? s.split('.') : s }) },
  { tag: `!${n}`, collection: 'seq' as const, resolve: (seq: { toJSON(): unknown }) => ({ [longName(n)]: seq.toJSON() }) },
  { tag: `!${n}`, collection: 'map' as const, resolve: (map: { toJSON(): unknown }) => ({ [longName(n)]: map.toJSON() }) },
]);

interface Template {
  Parameters: Record<string, { Type: string; Default?: unknown }>;
  Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
  Outputs: Record<string, unknown>;
}
async function template(file: string): Promise<Template> {
  return parse(await readFile(resolve(infra, file), 'utf8'), { customTags }) as Template;
}

/** CloudFormation templates in infra/ (environment files and local stack specs are not). */
async function cloudFormationTemplates(): Promise<string[]> {
  const files = (await readdir(infra)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const texts = await Promise.all(files.map((f) => readFile(resolve(infra, f), 'utf8')));
  return files.filter((_, i) => /^AWSTemplateFormatVersion:/m.test(texts[i]!));
}

describe('infra templates', () => {
  it('pass cfn-lint, every one of them', async () => {
    const templates = await cloudFormationTemplates();
    expect(templates).toEqual(expect.arrayContaining(['app-stack.yaml', 'backups.yaml', 'network.yaml', 'orchestrator.yaml']));
    const files = [...templates.map((t) => resolve(infra, t)), ...['small-stack.yaml', 'api-group-stack.yaml'].map((f) => resolve(import.meta.dirname, 'fixtures', f))];
    const result = await promisify(execFile)(toolPath('cfn-lint'), ['--format', 'parseable', '--', ...files], { timeout: 120_000 })
      .then(() => ({ code: 0, stdout: '' }), (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }));
    expect(result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  it('prod.example.yaml is a valid aws environment whose parameters app-stack.yaml declares and completes', async () => {
    const file = resolve(infra, 'environments/prod.example.yaml');
    const env = parseEnvironment(file, await readFile(file, 'utf8'));
    expect(env.profile).toBe('aws');
    expect(env.stackRoleArn).toMatch(/switchyard-prod-stack-execution$/);
    const app = await template(env.template);
    const declared = Object.keys(app.Parameters);
    // CreateStack refuses parameters a template does not declare, and needs every one without a default.
    expect(Object.keys(env.parameters).filter((p) => !declared.includes(p))).toEqual([]);
    const required = declared.filter((p) => app.Parameters[p]!.Default === undefined);
    expect(required.filter((p) => !(p in env.parameters))).toEqual([]);
  });

  it('app-stack.yaml has the output contract the provisioner parses', async () => {
    const app = await template('app-stack.yaml');
    expect(Object.keys(app.Outputs)).toEqual(expect.arrayContaining(['Endpoint', 'AdminUrl', 'AliasDnsName', 'AliasHostedZoneId']));
    expect(app.Outputs.AliasDnsName).toMatchObject({ Value: { 'Fn::GetAtt': ['PublicLoadBalancer', 'DNSName'] } });
    expect(app.Outputs.AliasHostedZoneId).toMatchObject({ Value: { 'Fn::GetAtt': ['PublicLoadBalancer', 'CanonicalHostedZoneID'] } });
  });

  it('app-stack.yaml: NLB with TLS on the certificate or plain TCP, PROXY v2, idle timeout far above the heartbeat', async () => {
    const app = await template('app-stack.yaml');
    const lb = app.Resources.PublicLoadBalancer!;
    expect(lb.Properties.Type).toBe('network');
    const listener = app.Resources.PublicListener!.Properties;
    expect(listener.Protocol).toEqual({ 'Fn::If': ['UseTls', 'TLS', 'TCP'] });
    expect(listener.Certificates['Fn::If'][1]).toEqual([{ CertificateArn: { Ref: 'CertificateArn' } }]);
    const attributes = app.Resources.ApiTargetGroup!.Properties.TargetGroupAttributes as Array<{ Key: string; Value: string }>;
    expect(attributes).toContainEqual({ Key: 'proxy_protocol_v2.enabled', Value: 'true' });
    expect(listener.ListenerAttributes['Fn::If'][2]).toEqual([{ Key: 'tcp.idle_timeout.seconds', Value: { Ref: 'IdleTimeoutSeconds' } }]);
    const idleMs = Number(app.Parameters.IdleTimeoutSeconds!.Default) * 1000;
    expect(idleMs).toBeGreaterThanOrEqual(10 * Number(app.Parameters.HeartbeatMs!.Default));
  });

  it('app-stack.yaml: only API nodes reach Riak (through its internal load balancer) and the bus', async () => {
    const app = await template('app-stack.yaml');
    const sources = (group: string) => [
      ...(app.Resources[group]!.Properties.SecurityGroupIngress ?? []),
      ...Object.values(app.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && r.Properties.GroupId.Ref === group).map((r) => r.Properties),
    ].map((rule: Record<string, any>) => rule.SourceSecurityGroupId?.Ref ?? rule.CidrIp);
    expect(new Set(sources('RiakLbSecurityGroup'))).toEqual(new Set(['ApiSecurityGroup']));
    expect(new Set(sources('RiakSecurityGroup'))).toEqual(new Set(['RiakLbSecurityGroup', 'RiakSecurityGroup']));
    expect(new Set(sources('BusSecurityGroup'))).toEqual(new Set(['ApiSecurityGroup']));
    expect(new Set(sources('ApiSecurityGroup'))).toEqual(new Set(['PublicLbSecurityGroup']));
    expect(app.Resources.RiakLoadBalancer!.Properties.Scheme).toBe('internal');
  });

  it('app-stack.yaml: Riak nodes install the package and join by tag; API nodes run the artifact from S3', async () => {
    const app = await template('app-stack.yaml');
    const riakUserData = JSON.stringify(app.Resources.RiakLaunchTemplate!.Properties.LaunchTemplateData.UserData);
    expect(riakUserData).toContain('dnf install -y /tmp/riak.rpm');
    expect(riakUserData).toContain('Name=tag:navcloud:riak-cluster,Values=${AWS::StackName}');
    expect(riakUserData).toContain('riak admin cluster join');
    const riakTags = app.Resources.RiakGroup!.Properties.Tags as Array<{ Key: string; Value: unknown; PropagateAtLaunch: boolean }>;
    expect(riakTags).toContainEqual({ Key: 'navcloud:riak-cluster', Value: { Ref: 'AWS::StackName' }, PropagateAtLaunch: true });
    const apiUserData = JSON.stringify(app.Resources.ApiLaunchTemplate!.Properties.LaunchTemplateData.UserData);
    expect(apiUserData).toContain("aws s3 cp 's3://${ArtifactBucket}/${ArtifactKey}'");
    expect(apiUserData).toContain('SYNC_STORE=riak:http://${RiakLoadBalancer.DNSName}:8098');
    expect(app.Resources.ApiGroup!.Type).toBe('AWS::AutoScaling::AutoScalingGroup');
  });

  // moto's CloudFormation ignores a bucket's versioning and lifecycle rules.
  it('backups.yaml: versioned, encrypted, TLS-only bucket with lifecycle rules', async () => {
    const backups = await template('backups.yaml');
    const bucket = backups.Resources.Bucket!.Properties;
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
    const rules = bucket.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules.map((r) => r.Id)).toEqual(['expire-noncurrent-versions', 'abort-incomplete-multipart-uploads', 'expire-uploaded-templates']);
    expect(JSON.stringify(backups.Resources.BucketPolicy!.Properties)).toContain('aws:SecureTransport');
  });

  it('orchestrator.yaml grants the worker exactly the calls the AWS adapters make', async () => {
    // Each SDK command (or lib-storage Upload) the adapters use, and the IAM actions it needs.
    const actionsOf: Record<string, string[]> = {
      CreateStackCommand: ['cloudformation:CreateStack', 'cloudformation:TagResource', 'iam:PassRole'],
      DescribeStacksCommand: ['cloudformation:DescribeStacks'],
      DescribeStackEventsCommand: ['cloudformation:DescribeStackEvents'],
      ListStackResourcesCommand: ['cloudformation:ListStackResources'],
      DeleteStackCommand: ['cloudformation:DeleteStack'],
      PutObjectCommand: ['s3:PutObject'],
      GetObjectCommand: ['s3:GetObject'],
      HeadObjectCommand: ['s3:GetObject'],
      ListObjectsV2Command: ['s3:ListBucket'],
      DeleteObjectsCommand: ['s3:DeleteObject'],
      Upload: ['s3:PutObject', 's3:AbortMultipartUpload'],
      ListResourceRecordSetsCommand: ['route53:ListResourceRecordSets'],
      ChangeResourceRecordSetsCommand: ['route53:ChangeResourceRecordSets'],
      GetChangeCommand: ['route53:GetChange'],
      TestDNSAnswerCommand: ['route53:TestDNSAnswer'],
      DescribeStackResourcesCommand: ['cloudformation:DescribeStackResources'],
      DescribeAutoScalingGroupsCommand: ['autoscaling:DescribeAutoScalingGroups'],
      DescribeInstancesCommand: ['ec2:DescribeInstances'],
      SendCommandCommand: ['ssm:SendCommand'],
      GetCommandInvocationCommand: ['ssm:GetCommandInvocation'],
      FilterLogEventsCommand: ['logs:FilterLogEvents'],
    };
    const awsSources = [resolve(repoRoot, 'src/cloud/aws'), resolve(repoRoot, 'src/operations/fleet')];
    const files = (await Promise.all(awsSources.map(async (dir) => (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => resolve(dir, f))))).flat();
    const sources = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    const used = new Set(sources.flatMap((s) => [...s.matchAll(/new (\w+Command|Upload)\(/g)].map((m) => m[1]!)));
    expect([...used].filter((c) => !(c in actionsOf))).toEqual([]);
    const needed = new Set([...used].flatMap((c) => actionsOf[c]!));

    const orchestrator = await template('orchestrator.yaml');
    const statements = orchestrator.Resources.WorkerPolicy!.Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>;
    const granted = new Set(statements.flatMap((s) => [s.Action].flat()));
    expect([...granted].sort()).toEqual([...needed].sort());
    // Only the calls IAM cannot scope get '*'.
    const unscoped = statements.filter((s) => s.Resource === '*').flatMap((s) => [s.Action].flat()).sort();
    expect(unscoped).toEqual(['autoscaling:DescribeAutoScalingGroups', 'cloudformation:DescribeStacks', 'ec2:DescribeInstances', 'route53:TestDNSAnswer', 'ssm:GetCommandInvocation']);
  });

  it('the environment schema accepts stackRoleArn only as a role ARN', () => {
    expect(environmentSchema.shape.stackRoleArn.safeParse('arn:aws:iam::123456789012:role/x').success).toBe(true);
    expect(environmentSchema.shape.stackRoleArn.safeParse('arn:aws:iam::123456789012:user/x').success).toBe(false);
  });

  it('app-stack.yaml ships each API node\'s log to the stack\'s log group and tags API instances for `fleet`', async () => {
    const app = await template('app-stack.yaml');
    expect(app.Resources.ApiLogGroup).toMatchObject({ Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: { 'Fn::Sub': logGroupOf('${AWS::StackName}') } } });
    const group = app.Resources[API_GROUP]!;
    expect(group.Type).toBe('AWS::AutoScaling::AutoScalingGroup');
    expect(group.Properties.Tags).toContainEqual({ Key: API_NODE_TAG, Value: { Ref: 'AWS::StackName' }, PropagateAtLaunch: true });
    const userData = app.Resources.ApiLaunchTemplate!.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Sub'][0] as string;
    expect(userData).toContain('amazon-cloudwatch-agent-ctl -a fetch-config');
    expect(userData).toContain(`"log_group_name": "${logGroupOf('${AWS::StackName}')}", "log_stream_name": "{instance_id}"`);
    expect(userData).toContain('StandardOutput=append:/var/log/navcloud-sync.log');
    const statements = app.Resources.ApiRole!.Properties.Policies[0].PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>;
    expect(statements).toContainEqual({ Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], Resource: { 'Fn::GetAtt': ['ApiLogGroup', 'Arn'] } });
  });

  it('orchestrator.yaml lets fleet reach only its own environment\'s instances and log groups', async () => {
    const orchestrator = await template('orchestrator.yaml');
    const statements = orchestrator.Resources.WorkerPolicy!.Properties.PolicyDocument.Statement as Array<{ Sid: string; Action: string | string[]; Resource: unknown; Condition?: unknown }>;
    const bySid = new Map(statements.map((s) => [s.Sid, s]));
    expect(bySid.get('FleetRunCommandsOnOwnInstances')).toMatchObject({
      Action: 'ssm:SendCommand',
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*' },
      Condition: { StringEquals: { 'ssm:resourceTag/switchyard:env': { Ref: 'EnvName' } } },
    });
    expect(bySid.get('FleetShellScriptDocumentOnly')?.Resource).toEqual({ 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript' });
    const logGroups = JSON.stringify(bySid.get('FleetReadOwnNodeLogs')?.Resource);
    expect(bySid.get('FleetReadOwnNodeLogs')?.Action).toBe('logs:FilterLogEvents');
    for (const colour of ['blue', 'green']) expect(logGroups).toContain(`log-group:${logGroupOf(`navcloud-\${EnvName}-${colour}-*`)}`);
  });
});
