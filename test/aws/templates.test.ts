import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, parseEnvironment, environmentSchema } from '../../src/config/environment.ts';
import { toolPath } from '../../src/tools.ts';
import { API_GROUP } from '../../src/cloud/aws/api-nodes.ts';
import { API_NODE_TAG, logGroupOf } from '../../src/operations/fleet/aws.ts';
import { readTemplate as template } from './cfn-yaml.ts';

const infra = resolve(repoRoot, 'infra');

/** CloudFormation templates in infra/ (environment files and local stack specs are not). */
async function cloudFormationTemplates(): Promise<string[]> {
  const files = (await readdir(infra)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const texts = await Promise.all(files.map((f) => readFile(resolve(infra, f), 'utf8')));
  return files.filter((_, i) => /^AWSTemplateFormatVersion:/m.test(texts[i]!));
}

describe('infra templates', () => {
  it('pass cfn-lint, every one of them', async () => {
    const templates = await cloudFormationTemplates();
    expect(templates).toEqual(
      expect.arrayContaining(['app-stack.yaml', 'backups.yaml', 'network.yaml', 'orchestrator.yaml']),
    );
    const files = [
      ...templates.map((t) => resolve(infra, t)),
      ...['small-stack.yaml', 'api-group-stack.yaml'].map((f) => resolve(import.meta.dirname, 'fixtures', f)),
    ];
    const result = await promisify(execFile)(toolPath('cfn-lint'), ['--format', 'parseable', '--', ...files], {
      timeout: 120_000,
    }).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
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
    expect(Object.keys(app.Outputs)).toEqual(
      expect.arrayContaining(['Endpoint', 'AdminUrl', 'AliasDnsName', 'AliasHostedZoneId']),
    );
    expect(app.Outputs.AliasDnsName).toMatchObject({ Value: { 'Fn::GetAtt': ['PublicLoadBalancer', 'DNSName'] } });
    expect(app.Outputs.AliasHostedZoneId).toMatchObject({
      Value: { 'Fn::GetAtt': ['PublicLoadBalancer', 'CanonicalHostedZoneID'] },
    });
  });

  it('app-stack.yaml: NLB with TLS on the certificate or plain TCP, PROXY v2, idle timeout far above the heartbeat', async () => {
    const app = await template('app-stack.yaml');
    const lb = app.Resources.PublicLoadBalancer!;
    expect(lb.Properties.Type).toBe('network');
    const listener = app.Resources.PublicListener!.Properties;
    expect(listener.Protocol).toEqual({ 'Fn::If': ['UseTls', 'TLS', 'TCP'] });
    expect(listener.Certificates['Fn::If'][1]).toEqual([{ CertificateArn: { Ref: 'CertificateArn' } }]);
    const attributes = app.Resources.ApiTargetGroup!.Properties.TargetGroupAttributes as Array<{
      Key: string;
      Value: string;
    }>;
    expect(attributes).toContainEqual({ Key: 'proxy_protocol_v2.enabled', Value: 'true' });
    expect(listener.ListenerAttributes['Fn::If'][2]).toEqual([
      { Key: 'tcp.idle_timeout.seconds', Value: { Ref: 'IdleTimeoutSeconds' } },
    ]);
    const idleMs = Number(app.Parameters.IdleTimeoutSeconds!.Default) * 1000;
    expect(idleMs).toBeGreaterThanOrEqual(10 * Number(app.Parameters.HeartbeatMs!.Default));
  });

  it('app-stack.yaml: only API nodes reach Riak (through its internal load balancer) and the bus', async () => {
    const app = await template('app-stack.yaml');
    const sources = (group: string) =>
      [
        ...(app.Resources[group]!.Properties.SecurityGroupIngress ?? []),
        ...Object.values(app.Resources)
          .filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && r.Properties.GroupId.Ref === group)
          .map((r) => r.Properties),
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
    const riakTags = app.Resources.RiakGroup!.Properties.Tags as Array<{
      Key: string;
      Value: unknown;
      PropagateAtLaunch: boolean;
    }>;
    expect(riakTags).toContainEqual({
      Key: 'navcloud:riak-cluster',
      Value: { Ref: 'AWS::StackName' },
      PropagateAtLaunch: true,
    });
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
    expect(
      bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
    ).toBe('aws:kms');
    const rules = bucket.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules.map((r) => r.Id)).toEqual([
      'expire-noncurrent-versions',
      'abort-incomplete-multipart-uploads',
      'expire-uploaded-templates',
    ]);
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
    const files = (
      await Promise.all(
        awsSources.map(async (dir) =>
          (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => resolve(dir, f)),
        ),
      )
    ).flat();
    const sources = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    const used = new Set(sources.flatMap((s) => [...s.matchAll(/new (\w+Command|Upload)\(/g)].map((m) => m[1]!)));
    expect([...used].filter((c) => !(c in actionsOf))).toEqual([]);
    const needed = new Set([...used].flatMap((c) => actionsOf[c]!));

    const orchestrator = await template('orchestrator.yaml');
    const statements = orchestrator.Resources.WorkerPolicy!.Properties.PolicyDocument.Statement as Array<{
      Action: string | string[];
      Resource: unknown;
    }>;
    const granted = new Set(statements.flatMap((s) => [s.Action].flat()));
    expect([...granted].sort()).toEqual([...needed].sort());
    // Only the calls IAM cannot scope get '*'.
    const unscoped = statements
      .filter((s) => s.Resource === '*')
      .flatMap((s) => [s.Action].flat())
      .sort();
    expect(unscoped).toEqual([
      'autoscaling:DescribeAutoScalingGroups',
      'cloudformation:DescribeStacks',
      'ec2:DescribeInstances',
      'route53:TestDNSAnswer',
      'ssm:GetCommandInvocation',
    ]);
  });

  it('every role an app stack creates carries the boundary, and the execution role creates none without it', async () => {
    const app = await template('app-stack.yaml');
    const roles = Object.entries(app.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    expect(roles.map(([id]) => id).sort()).toEqual(['ApiRole', 'RiakRole']);
    for (const [id, role] of roles)
      expect(role.Properties.PermissionsBoundary, id).toEqual({ Ref: 'RolePermissionsBoundary' });

    const orchestrator = await template('orchestrator.yaml');
    type Statement = {
      Sid: string;
      Action: string | string[];
      Resource: unknown;
      Condition?: Record<string, Record<string, unknown>>;
    };
    const statements = orchestrator.Resources.StackExecutionRole!.Properties.Policies.flatMap(
      (p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement,
    ) as Statement[];
    const actions = (s: Statement) => [s.Action].flat();
    const granting = (action: string) => statements.filter((s) => actions(s).includes(action));
    for (const action of ['iam:CreateRole', 'iam:PutRolePolicy', 'iam:AttachRolePolicy']) {
      expect(granting(action).length, action).toBeGreaterThan(0);
      for (const s of granting(action))
        expect(s.Condition?.StringEquals?.['iam:PermissionsBoundary'], `${s.Sid} ${action}`).toEqual({
          Ref: 'AppRoleBoundary',
        });
    }
    for (const s of granting('iam:AttachRolePolicy'))
      expect(s.Condition?.StringEquals?.['iam:PolicyARN']).toBeDefined();
    for (const s of granting('iam:PassRole'))
      expect(s.Condition?.StringEquals?.['iam:PassedToService']).toBe('ec2.amazonaws.com');
    // Nothing that could lift or rewrite a boundary, nor any wildcard over IAM.
    const forbidden = [
      'iam:PutRolePermissionsBoundary',
      'iam:DeleteRolePermissionsBoundary',
      'iam:CreatePolicyVersion',
      'iam:SetDefaultPolicyVersion',
      'iam:UpdateAssumeRolePolicy',
      'iam:CreateUser',
    ];
    expect(
      statements.flatMap(actions).filter((a) => forbidden.includes(a) || /^iam:.*\*/.test(a) || a === '*'),
    ).toEqual([]);
  });

  it("the boundary allows every action the app stacks' roles use, so it takes nothing they need", async () => {
    const app = await template('app-stack.yaml');
    const used = ['ApiRole', 'RiakRole'].flatMap((id) =>
      app.Resources[id]!.Properties.Policies.flatMap(
        (p: { PolicyDocument: { Statement: Array<{ Action: string | string[] }> } }) => p.PolicyDocument.Statement,
      ).flatMap((s: { Action: string | string[] }) => [s.Action].flat()),
    ) as string[];
    const boundary = (await template('orchestrator.yaml')).Resources.AppRoleBoundary!.Properties.PolicyDocument
      .Statement as Array<{ Action: string | string[] }>;
    const allowed = new Set(boundary.flatMap((s) => [s.Action].flat()));
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((a) => !allowed.has(a))).toEqual([]);
  });

  it("worker-service.yaml: Fargate tasks as the orchestrator's worker role, Temporal credentials from Secrets Manager, draining deploys", async () => {
    const service = await template('worker-service.yaml');
    const task = service.Resources.TaskDefinition!.Properties;
    expect(task).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      TaskRoleArn: { Ref: 'WorkerRoleArn' },
    });
    const [container] = task.ContainerDefinitions as Array<Record<string, any>>;
    expect(container!.LogConfiguration.Options['awslogs-group']).toEqual({ Ref: 'LogGroup' });
    expect(service.Resources.LogGroup!.Properties.LogGroupName).toEqual({ 'Fn::Sub': '/switchyard/${EnvName}/worker' });
    expect(container!.Secrets['Fn::If'][0]).toBe('UseApiKey');
    const secretNames = (branch: Array<{ Name: string }>) => branch.map((s) => s.Name);
    expect(secretNames(container!.Secrets['Fn::If'][1])).toEqual(['TEMPORAL_API_KEY']);
    expect(secretNames(container!.Secrets['Fn::If'][2])).toEqual(['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY']);
    expect(JSON.stringify(container!.Environment)).not.toMatch(/TEMPORAL_API_KEY|TEMPORAL_TLS_KEY/);
    expect(container!.HealthCheck.Command.join(' ')).toContain('/healthz');
    // Activities get their grace inside the stop timeout (Fargate allows at most 120 s).
    const grace = Number(
      (container!.Environment as Array<{ Name: string; Value: string }>).find(
        (e) => e.Name === 'SWITCHYARD_SHUTDOWN_GRACE_SECONDS',
      )!.Value,
    );
    expect(container!.StopTimeout).toBeLessThanOrEqual(120);
    expect(grace).toBeGreaterThanOrEqual(60);
    expect(grace).toBeLessThan(container!.StopTimeout);
    const svc = service.Resources.Service!.Properties;
    expect(svc.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 100, MaximumPercent: 200 });
    expect(svc.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    expect(svc.DesiredCount).toEqual({ Ref: 'WorkerCount' });
    expect(service.Parameters.WorkerCount).toMatchObject({ MinValue: 1 });
    expect(Number(service.Parameters.WorkerCount!.Default)).toBeGreaterThanOrEqual(1);
    // The orchestrator's worker role lets ECS tasks of its own account assume it.
    const trust = (await template('orchestrator.yaml')).Resources.WorkerRole!.Properties.AssumeRolePolicyDocument
      .Statement as Array<Record<string, any>>;
    expect(trust).toContainEqual(
      expect.objectContaining({
        Principal: { Service: 'ecs-tasks.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
      }),
    );
  });

  it('the environment schema accepts stackRoleArn only as a role ARN', () => {
    expect(environmentSchema.shape.stackRoleArn.safeParse('arn:aws:iam::123456789012:role/x').success).toBe(true);
    expect(environmentSchema.shape.stackRoleArn.safeParse('arn:aws:iam::123456789012:user/x').success).toBe(false);
  });

  it("app-stack.yaml ships each API node's log to the stack's log group and tags API instances for `fleet`", async () => {
    const app = await template('app-stack.yaml');
    expect(app.Resources.ApiLogGroup).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: { LogGroupName: { 'Fn::Sub': logGroupOf('${AWS::StackName}') } },
    });
    const group = app.Resources[API_GROUP]!;
    expect(group.Type).toBe('AWS::AutoScaling::AutoScalingGroup');
    expect(group.Properties.Tags).toContainEqual({
      Key: API_NODE_TAG,
      Value: { Ref: 'AWS::StackName' },
      PropagateAtLaunch: true,
    });
    const userData = app.Resources.ApiLaunchTemplate!.Properties.LaunchTemplateData.UserData['Fn::Base64'][
      'Fn::Sub'
    ][0] as string;
    expect(userData).toContain('amazon-cloudwatch-agent-ctl -a fetch-config');
    expect(userData).toContain(
      `"log_group_name": "${logGroupOf('${AWS::StackName}')}", "log_stream_name": "{instance_id}"`,
    );
    expect(userData).toContain('StandardOutput=append:/var/log/navcloud-sync.log');
    const statements = app.Resources.ApiRole!.Properties.Policies[0].PolicyDocument.Statement as Array<{
      Action: unknown;
      Resource: unknown;
    }>;
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
      Resource: { 'Fn::GetAtt': ['ApiLogGroup', 'Arn'] },
    });
  });

  it("orchestrator.yaml lets fleet reach only its own environment's instances and log groups", async () => {
    const orchestrator = await template('orchestrator.yaml');
    const statements = orchestrator.Resources.WorkerPolicy!.Properties.PolicyDocument.Statement as Array<{
      Sid: string;
      Action: string | string[];
      Resource: unknown;
      Condition?: unknown;
    }>;
    const bySid = new Map(statements.map((s) => [s.Sid, s]));
    expect(bySid.get('FleetRunCommandsOnOwnInstances')).toMatchObject({
      Action: 'ssm:SendCommand',
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*' },
      Condition: { StringEquals: { 'ssm:resourceTag/switchyard:env': { Ref: 'EnvName' } } },
    });
    expect(bySid.get('FleetShellScriptDocumentOnly')?.Resource).toEqual({
      'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript',
    });
    const logGroups = JSON.stringify(bySid.get('FleetReadOwnNodeLogs')?.Resource);
    expect(bySid.get('FleetReadOwnNodeLogs')?.Action).toBe('logs:FilterLogEvents');
    for (const colour of ['blue', 'green'])
      expect(logGroups).toContain(`log-group:${logGroupOf(`navcloud-\${EnvName}-${colour}-*`)}`);
  });
});
