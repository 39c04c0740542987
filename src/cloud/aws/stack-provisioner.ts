import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ListStackResourcesCommand,
  type CloudFormationClient,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type {
  CreateStackRequest,
  StackDescription,
  StackOutputs,
  StackProgress,
  StackProvisioner,
  StackStatus,
} from '../ports.ts';
import { CloudError, StackFailedError } from '../errors.ts';
import { repoRoot } from '../../config/environment.ts';
import type { Logger } from '../../logging.ts';
import { apiInstances, nodeUrl, type NodeDiscoveryClients } from './api-nodes.ts';
import { awsCall } from './classify.ts';
import { pollUntil, type PollOptions } from './poll.ts';

/** CloudFormation refuses a TemplateBody above this; larger templates go by TemplateURL from S3. */
export const INLINE_TEMPLATE_LIMIT = 51_200;

export const STACK_TAGS = {
  env: 'switchyard:env',
  colour: 'switchyard:colour',
  workflowId: 'switchyard:workflow-id',
  stack: 'switchyard:stack',
} as const;

export interface AwsStackProvisionerOptions extends NodeDiscoveryClients {
  cloudFormation: CloudFormationClient;
  s3: S3Client;
  region: string;
  /** Bucket for templates over the inline limit (the environment's backup bucket). */
  templateBucket: string;
  templatePrefix?: string;
  /** CloudFormation execution role (infra/orchestrator.yaml) that builds the stack's resources. */
  roleArn?: string;
  /** Where `CreateStackRequest.template` is resolved; default infra/. */
  templateDir?: string;
  poll?: Partial<PollOptions>;
  logger: Logger;
}

const FAILED_TERMINAL = new Set([
  'CREATE_FAILED',
  'ROLLBACK_COMPLETE',
  'ROLLBACK_FAILED',
  'DELETE_COMPLETE',
  'DELETE_FAILED',
  'UPDATE_ROLLBACK_COMPLETE',
  'UPDATE_ROLLBACK_FAILED',
  'UPDATE_FAILED',
  'IMPORT_ROLLBACK_COMPLETE',
  'IMPORT_ROLLBACK_FAILED',
]);
const READY = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'IMPORT_COMPLETE']);

export function stackStatus(raw: string): StackStatus {
  if (READY.has(raw)) return 'ready';
  if (raw === 'DELETE_COMPLETE') return 'deleted';
  if (raw.startsWith('DELETE_')) return raw === 'DELETE_FAILED' ? 'failed' : 'deleting';
  if (FAILED_TERMINAL.has(raw) || raw.includes('ROLLBACK') || raw.endsWith('_FAILED')) return 'failed';
  return 'creating';
}

/**
 * Whether a stack in this raw status has outputs that say where it serves: when ready, and while
 * an update runs or after one rolled back (UPDATE_ROLLBACK_COMPLETE still serves the old version).
 */
export function servesWithOutputs(raw: string): boolean {
  return READY.has(raw) || (raw.startsWith('UPDATE_') && raw !== 'UPDATE_FAILED');
}

/** Idempotency token for CreateStack: the same workflow creating the same stack always sends the same one. */
export function createToken(workflowId: string, stackName: string): string {
  return `switchyard-${createHash('sha256').update(`${workflowId}\n${stackName}`).digest('hex').slice(0, 40)}`;
}

/**
 * Stack outputs → the port's shape, but for the nodes (found by apiInstances). Output keys are the
 * contract with infra/app-stack.yaml: Endpoint, AdminUrl, AliasDnsName, AliasHostedZoneId.
 */
export function parseStackOutputs(
  stack: string,
  outputs: Array<{ OutputKey?: string; OutputValue?: string }>,
): Omit<StackOutputs, 'nodes'> {
  const byKey = new Map(outputs.filter((o) => o.OutputKey).map((o) => [o.OutputKey!, o.OutputValue ?? '']));
  const required = (key: string) => {
    const value = byKey.get(key);
    if (!value) {
      throw new CloudError(
        `stack ${stack} has no '${key}' output (expected Endpoint, AdminUrl, AliasDnsName, AliasHostedZoneId)`,
        false,
        'InvalidOutputs',
        stack,
      );
    }
    return value;
  };
  return {
    endpoint: required('Endpoint'),
    adminUrl: required('AdminUrl'),
    dnsTarget: { kind: 'alias', dnsName: required('AliasDnsName'), hostedZoneId: required('AliasHostedZoneId') },
  };
}

/** The failed resources of a stack's latest operation, root causes first. */
export function failuresFrom(
  stack: string,
  events: StackEvent[],
): Array<{ resource: string; type: string; reason: string }> {
  const failed = events.filter((e) => e.ResourceStatus?.endsWith('_FAILED'));
  const own = failed.filter((e) => e.LogicalResourceId !== stack);
  const chosen = own.length ? own : failed;
  const seen = new Set<string>();
  const failures = chosen
    .filter((e) => {
      const id = `${e.LogicalResourceId}/${e.ResourceStatus}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    })
    .map((e) => ({
      resource: e.LogicalResourceId ?? '?',
      type: e.ResourceType ?? '?',
      reason: e.ResourceStatusReason ?? e.ResourceStatus ?? '',
    }));
  // "Resource creation cancelled" is a consequence of another resource's failure, not a cause.
  const causes = failures.filter((f) => !/cancell?ed/i.test(f.reason));
  return [...causes, ...failures.filter((f) => !causes.includes(f))];
}

export class AwsStackProvisioner implements StackProvisioner {
  private readonly cfn: CloudFormationClient;
  private readonly s3: S3Client;
  private readonly poll: PollOptions;
  private readonly log: Logger;

  constructor(private readonly options: AwsStackProvisionerOptions) {
    this.cfn = options.cloudFormation;
    this.s3 = options.s3;
    this.poll = { initialMs: 2_000, maxMs: 20_000, timeoutMs: 60 * 60_000, ...options.poll };
    this.log = options.logger.child({ component: 'aws-stacks' });
  }

  async create(request: CreateStackRequest): Promise<void> {
    const template = await this.templateSource(request);
    const tags = {
      [STACK_TAGS.env]: request.env,
      [STACK_TAGS.colour]: request.colour,
      [STACK_TAGS.workflowId]: request.workflowId,
      [STACK_TAGS.stack]: request.name,
    };
    try {
      await awsCall('cloudformation:CreateStack', request.name, () =>
        this.cfn.send(
          new CreateStackCommand({
            StackName: request.name,
            ...template,
            Parameters: Object.entries(request.parameters).map(([ParameterKey, ParameterValue]) => ({
              ParameterKey,
              ParameterValue,
            })),
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
            Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
            ...(this.options.roleArn ? { RoleARN: this.options.roleArn } : {}),
            ClientRequestToken: createToken(request.workflowId, request.name),
          }),
        ),
      );
      this.log.info(
        { stack: request.name, env: request.env, colour: request.colour, workflowId: request.workflowId },
        'stack creation started',
      );
    } catch (err) {
      if (!(err instanceof CloudError) || err.code !== 'AlreadyExists') throw err;
      // The token only dedupes within its lifetime (and moto ignores it): our tags prove the stack is ours.
      const existing = await this.describeRaw(request.name);
      const owner = existing && tagOf(existing, STACK_TAGS.workflowId);
      if (existing && owner === request.workflowId && tagOf(existing, STACK_TAGS.env) === request.env) {
        this.log.info(
          { stack: request.name, workflowId: request.workflowId, status: existing.StackStatus },
          'stack already created by this workflow',
        );
        return;
      }
      throw new CloudError(
        `stack ${request.name} already exists and was not created by workflow ${request.workflowId} (its workflow tag: ${owner ?? 'none'})`,
        false,
        'AlreadyExists',
        request.name,
        { cause: err },
      );
    }
  }

  async waitUntilReady(
    name: string,
    onProgress?: (p: StackProgress) => void,
    signal?: AbortSignal,
  ): Promise<StackDescription> {
    return pollUntil(
      'stack creation',
      name,
      this.poll,
      async () => {
        const stack = await this.describeRaw(name);
        if (!stack)
          throw new CloudError(`stack ${name} does not exist (deleted while being created?)`, false, 'NotFound', name);
        const raw = stack.StackStatus ?? 'UNKNOWN';
        const status = stackStatus(raw);
        if (status === 'ready') {
          onProgress?.({ rawStatus: raw });
          return this.toDescription(stack);
        }
        // A rollback still moving is waited out, so that the compensation's delete finds a stack
        // it can delete; a terminal failure, or somebody deleting the stack, ends the wait.
        if (status === 'deleting' || status === 'deleted' || (status === 'failed' && !raw.endsWith('_IN_PROGRESS'))) {
          throw new StackFailedError(name, raw, failuresFrom(name, await this.events(stack.StackId ?? name)));
        }
        onProgress?.({ rawStatus: raw, ...(await this.resourceCounts(name)) });
        return undefined;
      },
      signal,
    );
  }

  async describe(name: string): Promise<StackDescription | undefined> {
    const stack = await this.describeRaw(name);
    return stack && (await this.toDescription(stack));
  }

  async list(env: string): Promise<StackDescription[]> {
    const stacks: Stack[] = [];
    let nextToken: string | undefined;
    do {
      const page = await awsCall('cloudformation:DescribeStacks', `env ${env}`, () =>
        this.cfn.send(new DescribeStacksCommand({ NextToken: nextToken })),
      );
      stacks.push(...(page.Stacks ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    const mine = stacks
      .filter((s) => tagOf(s, STACK_TAGS.env) === env && s.StackStatus !== 'DELETE_COMPLETE')
      .sort((a, b) => (b.CreationTime?.getTime() ?? 0) - (a.CreationTime?.getTime() ?? 0));
    return Promise.all(mine.map((s) => this.toDescription(s)));
  }

  async delete(name: string): Promise<void> {
    const stack = await this.describeRaw(name);
    if (!stack || stack.StackStatus === 'DELETE_COMPLETE') return;
    // By stack id: a name may already be reused by a newer stack once this one is gone.
    await awsCall('cloudformation:DeleteStack', name, () =>
      this.cfn.send(new DeleteStackCommand({ StackName: stack.StackId ?? name })),
    );
    this.log.info({ stack: name, status: stack.StackStatus }, 'stack deletion started');
  }

  async waitUntilDeleted(name: string, onProgress?: (p: StackProgress) => void, signal?: AbortSignal): Promise<void> {
    await pollUntil(
      'stack deletion',
      name,
      this.poll,
      async () => {
        const stack = await this.describeRaw(name);
        const raw = stack?.StackStatus ?? 'DELETE_COMPLETE';
        if (raw === 'DELETE_COMPLETE') {
          onProgress?.({ rawStatus: raw });
          return true;
        }
        if (raw === 'DELETE_FAILED') {
          throw new StackFailedError(name, raw, failuresFrom(name, await this.events(stack?.StackId ?? name)));
        }
        if (!raw.startsWith('DELETE_')) {
          throw new CloudError(
            `stack ${name} is ${raw}, not being deleted: call delete first`,
            false,
            'InvalidState',
            name,
          );
        }
        onProgress?.({ rawStatus: raw, ...(await this.resourceCounts(name)) });
        return undefined;
      },
      signal,
    );
  }

  private async templateSource(
    request: CreateStackRequest,
  ): Promise<{ TemplateBody: string } | { TemplateURL: string }> {
    const dir = this.options.templateDir ?? resolve(repoRoot, 'infra');
    const file = resolve(dir, request.template);
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch (err) {
      throw new CloudError(
        `template ${request.template} not found: ${file} cannot be read (${(err as Error).message})`,
        false,
        'TemplateMissing',
        request.template,
        { cause: err },
      );
    }
    if (body.byteLength <= INLINE_TEMPLATE_LIMIT) return { TemplateBody: body.toString('utf8') };
    // Content-addressed so a retried create uploads to (and references) the same object.
    const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
    const key = `${this.options.templatePrefix ?? 'templates/'}${request.name}/${digest}-${request.template.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    const bucket = this.options.templateBucket;
    await awsCall('s3:PutObject', `s3://${bucket}/${key}`, () =>
      this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-yaml' })),
    );
    // CloudFormation fetches templates only from S3 URLs in virtual-host form (moto resolves these too).
    return {
      TemplateURL: `https://${bucket}.s3.${this.options.region}.amazonaws.com/${key.split('/').map(encodeURIComponent).join('/')}`,
    };
  }

  private async nodes(stack: string): Promise<string[]> {
    const instances = await apiInstances(this.options, stack);
    return instances.filter((i) => i.state === 'running').map((i) => nodeUrl(i.privateAddress));
  }

  private async describeRaw(name: string): Promise<Stack | undefined> {
    try {
      const out = await awsCall('cloudformation:DescribeStacks', name, () =>
        this.cfn.send(new DescribeStacksCommand({ StackName: name })),
      );
      return out.Stacks?.[0];
    } catch (err) {
      if (err instanceof CloudError && err.code === 'NotFound') return undefined;
      throw err;
    }
  }

  /** Events of the stack's latest operation (newest first), read across pages up to where it began. */
  private async events(stackId: string): Promise<StackEvent[]> {
    const events: StackEvent[] = [];
    let nextToken: string | undefined;
    do {
      const page = await awsCall('cloudformation:DescribeStackEvents', stackId, () =>
        this.cfn.send(new DescribeStackEventsCommand({ StackName: stackId, NextToken: nextToken })),
      );
      for (const event of page.StackEvents ?? []) {
        events.push(event);
        const isStackItself =
          event.ResourceType === 'AWS::CloudFormation::Stack' && event.PhysicalResourceId === event.StackId;
        if (
          isStackItself &&
          event.ResourceStatus?.endsWith('_IN_PROGRESS') &&
          event.ResourceStatusReason === 'User Initiated'
        ) {
          return events;
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return events;
  }

  private async resourceCounts(name: string): Promise<{ done: number; total: number }> {
    let done = 0;
    let total = 0;
    let nextToken: string | undefined;
    do {
      const page = await awsCall('cloudformation:ListStackResources', name, () =>
        this.cfn.send(new ListStackResourcesCommand({ StackName: name, NextToken: nextToken })),
      );
      for (const r of page.StackResourceSummaries ?? []) {
        total += 1;
        if (r.ResourceStatus?.endsWith('_COMPLETE')) done += 1;
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return { done, total };
  }

  /** A ready stack's outputs carry the admin base URL of each running API node. */
  private async toDescription(stack: Stack): Promise<StackDescription> {
    const name = stack.StackName ?? '?';
    const raw = stack.StackStatus ?? 'UNKNOWN';
    const status = stackStatus(raw);
    return {
      name,
      env: tagOf(stack, STACK_TAGS.env) ?? '',
      colour: tagOf(stack, STACK_TAGS.colour) === 'green' ? 'green' : 'blue',
      workflowId: tagOf(stack, STACK_TAGS.workflowId) ?? '',
      status,
      rawStatus: raw,
      createdAt: (stack.CreationTime ?? new Date(0)).toISOString(),
      // A stack whose update rolled back (or is in progress) keeps serving: its outputs still say where.
      ...(servesWithOutputs(raw) && stack.Outputs?.length
        ? { outputs: { ...parseStackOutputs(name, stack.Outputs), nodes: await this.nodes(stack.StackId ?? name) } }
        : {}),
    };
  }
}

function tagOf(stack: Stack, key: string): string | undefined {
  return stack.Tags?.find((t) => t.Key === key)?.Value;
}
