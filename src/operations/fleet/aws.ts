/**
 * The aws profile's fleet: API instances found through CloudFormation and their Auto Scaling
 * group, commands through SSM Run Command (AWS-RunShellScript, targeted by the stack's tags),
 * logs from the stack's CloudWatch Logs group, where each instance's agent ships its journal.
 */
import {
  FilterLogEventsCommand,
  type CloudWatchLogsClient,
  type FilteredLogEvent,
} from '@aws-sdk/client-cloudwatch-logs';
import { GetCommandInvocationCommand, SendCommandCommand, type SSMClient, type Target } from '@aws-sdk/client-ssm';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiInstances, nodeUrl, type NodeDiscoveryClients } from '../../cloud/aws/api-nodes.ts';
import { awsCall, causeName } from '../../cloud/aws/classify.ts';
import { CloudError } from '../../cloud/errors.ts';
import type { StackDescription } from '../../cloud/ports.ts';
import type { NodeStats } from '../../navcloud/protocol.ts';
import { boundedAll, keepNewest, lineTime, newest } from './lines.ts';
import {
  TIMED_OUT,
  type ExecRequest,
  type ExecResult,
  type FleetNode,
  type FleetPlatform,
  type LogLine,
  type LogMark,
  type LogQuery,
} from './port.ts';

/**
 * The tag infra/app-stack.yaml puts on the API instances only, valued with the stack's name: the
 * stack's own tags reach the Riak instances too.
 */
export const API_NODE_TAG = 'navcloud:api-node-of';

/** The stack's log group, as infra/app-stack.yaml names it. */
export const logGroupOf = (stack: string): string => `/navcloud/${stack}`;

export interface AwsFleetPlatformOptions extends NodeDiscoveryClients {
  ssm: SSMClient;
  logs: CloudWatchLogsClient;
  /** How often command invocations and followed logs are polled. */
  pollMs?: number;
  /** Longest a command may wait for delivery to an instance, on top of its own timeout. */
  deliverySeconds?: number;
}

const DONE = new Set(['Success', 'Failed', 'Cancelled', 'TimedOut']);

export class AwsFleetPlatform implements FleetPlatform {
  private readonly pollMs: number;
  private readonly deliverySeconds: number;

  constructor(private readonly options: AwsFleetPlatformOptions) {
    this.pollMs = options.pollMs ?? 1_000;
    this.deliverySeconds = options.deliverySeconds ?? 60;
  }

  async nodes(stacks: StackDescription[]): Promise<FleetNode[]> {
    const perStack = await Promise.all(
      stacks.map(async (stack) =>
        (await apiInstances(this.options, stack.name)).map((i) => ({
          stack: stack.name,
          id: i.instanceId,
          address: i.privateAddress,
          url: nodeUrl(i.privateAddress),
          state: i.state,
        })),
      ),
    );
    return perStack.flat();
  }

  async logs(nodes: FleetNode[], query: LogQuery): Promise<{ lines: LogLine[]; mark: LogMark }> {
    // Events stamped from `at` on are the follow's: the history stops just before it.
    const mark: LogMark = { at: Date.now(), offsets: {} };
    const perNode = new Map<string, LogLine[]>(nodes.map((n) => [n.id, []]));
    for (const [stack, ids] of byStack(nodes)) {
      for await (const event of this.events(stack, ids, query.since ?? 0, mark.at - 1, query.signal)) {
        const line = lineOf(event);
        const own = perNode.get(line.node);
        if (own) keepNewest(own, line);
      }
    }
    return { lines: [...perNode.values()].flatMap(newest), mark };
  }

  async follow(
    nodes: FleetNode[],
    from: LogMark,
    onLines: (lines: LogLine[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let since = from.at;
    // Events at the boundary timestamp come again on the next poll: remember which were shown.
    let seen = new Set<string>();
    while (!signal.aborted) {
      const batch: FilteredLogEvent[] = [];
      try {
        for (const [stack, ids] of byStack(nodes)) {
          for await (const event of this.events(stack, ids, since, undefined, signal))
            if (!seen.has(event.eventId ?? '')) batch.push(event);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof CloudError && err.retryable)) throw err;
      }
      if (batch.length) {
        const newest = Math.max(...batch.map((e) => e.timestamp ?? 0));
        seen = new Set([
          ...(newest === since ? seen : []),
          ...batch.filter((e) => e.timestamp === newest).map((e) => e.eventId ?? ''),
        ]);
        since = newest;
        onLines(batch.map(lineOf));
      }
      await sleep(this.pollMs, undefined, { signal }).catch(() => undefined);
    }
  }

  async exec(nodes: FleetNode[], request: ExecRequest): Promise<ExecResult[]> {
    const results: ExecResult[] = [];
    for (const [stack, ids] of byStack(nodes)) {
      const whole = (await apiInstances(this.options, stack)).every((i) => ids.includes(i.instanceId));
      // The whole stack by its API instances' tag, so an instance that joined the group since is
      // reached too; one node by its instance id.
      const targets: Target[] = [{ Key: `tag:${API_NODE_TAG}`, Values: [stack] }];
      const sent = await awsCall('ssm:SendCommand', stack, () =>
        this.options.ssm.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            ...(whole ? { Targets: targets } : { InstanceIds: ids }),
            Parameters: { commands: [request.script], executionTimeout: [String(request.timeoutSeconds)] },
            MaxConcurrency: String(request.parallel),
            TimeoutSeconds: Math.max(30, this.deliverySeconds),
            Comment: `switchyard fleet on ${stack}`.slice(0, 100),
          }),
          { abortSignal: request.signal },
        ),
      );
      const commandId = sent.Command?.CommandId;
      if (!commandId)
        throw new CloudError(`ssm:SendCommand on ${stack} answered without a command id`, false, 'BadResponse', stack);
      const deadline = Date.now() + (request.timeoutSeconds + this.deliverySeconds) * 1000;
      results.push(
        ...(await boundedAll(ids, ids.length, (id) => this.invocation(commandId, id, deadline, request.signal))),
      );
    }
    return results;
  }

  async restart(node: FleetNode): Promise<void> {
    const [result] = await this.exec([node], {
      script: 'systemctl restart navcloud-sync',
      parallel: 1,
      timeoutSeconds: 120,
    });
    if (!result || result.exitCode !== 0) {
      throw new CloudError(
        `restarting navcloud-sync on ${node.id} failed: ${result?.stderr.trim() || `exit ${result?.exitCode}`}`,
        false,
        'RestartFailed',
        node.id,
      );
    }
  }

  /** GET /admin/stats by each instance itself (server/admin-call.ts), in one Run Command. */
  async stats(nodes: FleetNode[]): Promise<Array<NodeStats | undefined>> {
    const results = await this.exec(nodes, {
      script: adminCall('GET', '/admin/stats'),
      parallel: nodes.length,
      timeoutSeconds: 30,
    });
    return nodes.map((node) => {
      const result = results.find((r) => r.node === node.id);
      if (!result || result.exitCode !== 0) return undefined;
      try {
        return JSON.parse(result.stdout) as NodeStats;
      } catch {
        return undefined;
      }
    });
  }

  async drain(node: FleetNode): Promise<void> {
    const [result] = await this.exec([node], {
      script: adminCall('POST', '/admin/drain'),
      parallel: 1,
      timeoutSeconds: 30,
    });
    if (!result || result.exitCode !== 0) {
      throw new CloudError(
        `draining ${node.id} failed: ${result?.stderr.trim() || `exit ${result?.exitCode}`}`,
        true,
        'DrainFailed',
        node.id,
      );
    }
  }

  async ready(node: FleetNode): Promise<boolean> {
    const [result] = await this.exec([node], { script: adminCall('GET', '/readyz'), parallel: 1, timeoutSeconds: 30 });
    return result?.exitCode === 0;
  }

  /** Polls one instance's invocation until it ends or the deadline passes (then it timed out). */
  private async invocation(
    commandId: string,
    instanceId: string,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const out = await awsCall('ssm:GetCommandInvocation', instanceId, () =>
          this.options.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId })),
        );
        const status = out.Status ?? 'Pending';
        if (DONE.has(status)) {
          const timedOut = status === 'TimedOut';
          const code = out.ResponseCode ?? -1;
          return {
            node: instanceId,
            exitCode: timedOut ? TIMED_OUT : status === 'Success' ? 0 : code > 0 ? code : 1,
            stdout: out.StandardOutputContent ?? '',
            stderr:
              (out.StandardErrorContent ?? '') +
              (status === 'Success' || code > 0 ? '' : `${out.StatusDetails ?? status}\n`),
            timedOut,
          };
        }
      } catch (err) {
        // Right after SendCommand an invocation may not exist yet; throttling passes. Both: poll again.
        const notYet = err instanceof CloudError && causeName(err) === 'InvocationDoesNotExist';
        if (!(err instanceof CloudError) || !(err.retryable || notYet)) throw err;
      }
      if (Date.now() >= deadline) {
        return {
          node: instanceId,
          exitCode: TIMED_OUT,
          stdout: '',
          stderr: 'no answer from SSM before the timeout\n',
          timedOut: true,
        };
      }
      await sleep(this.pollMs, undefined, { signal });
    }
  }

  private async *events(
    stack: string,
    instanceIds: string[],
    since: number,
    until: number | undefined,
    signal?: AbortSignal,
  ): AsyncIterable<FilteredLogEvent> {
    let nextToken: string | undefined;
    do {
      const page = await awsCall('logs:FilterLogEvents', logGroupOf(stack), () =>
        this.options.logs.send(
          new FilterLogEventsCommand({
            logGroupName: logGroupOf(stack),
            logStreamNames: instanceIds,
            startTime: since,
            endTime: until,
            nextToken,
          }),
          { abortSignal: signal },
        ),
      );
      yield* page.events ?? [];
      nextToken = page.nextToken;
    } while (nextToken);
  }
}

/**
 * The node calls its own API: it is reachable neither from outside its VPC nor without the PROXY
 * header its listener expects. /etc/navcloud.env (written by infra/app-stack.yaml) has its settings.
 */
function adminCall(method: 'GET' | 'POST', path: string): string {
  return `set -a; . /etc/navcloud.env; set +a; cd /opt/navcloud && node bin/navcloud-admin.js ${method} ${path}`;
}

function byStack(nodes: FleetNode[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const node of nodes) map.set(node.stack, [...(map.get(node.stack) ?? []), node.id]);
  return map;
}

function lineOf(event: FilteredLogEvent): LogLine {
  const text = (event.message ?? '').trimEnd();
  return { node: event.logStreamName ?? '?', time: lineTime(text) ?? event.timestamp ?? 0, text };
}
