/**
 * `switchyard fleet`: the nodes of an environment's stacks, what they log, how they are doing,
 * a command on all of them, and a rolling restart. Platform-neutral: a FleetPlatform finds and
 * drives the nodes, the stacks' admin API says how each node is doing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Colour, DnsRouter, StackDescription, StackProvisioner } from '../../cloud/ports.ts';
import type { NodeStats } from '../../navcloud/protocol.ts';
import { stackRoles } from '../../switch/roles.ts';
import { mergeByTime } from './lines.ts';
import { OS_STATS_SCRIPT, parseOsStats, type OsStats } from './os-stats.ts';
import type { ExecResult, FleetNode, FleetPlatform, LogLine } from './port.ts';

/** Bad input a person can fix (unknown stack or node, nothing live): the CLI's exit 2. */
export class FleetInputError extends Error {
  override name = 'FleetInputError';
}

/** A rolling restart that stopped (a refusal, a node that did not come back). */
export class FleetRestartError extends Error {
  override name = 'FleetRestartError';
  constructor(
    message: string,
    readonly restarted: string[],
  ) {
    super(message);
  }
}

export interface FleetScope {
  /** One stack by name; default: the live one. */
  stack?: string;
  /** Every stack of the environment. */
  all?: boolean;
  /** One node by id. */
  node?: string;
}

export interface FleetOptions {
  env: string;
  recordName: string;
  stacks: StackProvisioner;
  dns: DnsRouter;
  platform: FleetPlatform;
  /** Longest a drained node is given for its streams to leave before it restarts. */
  drainSeconds: number;
  /** Longest a restarted node may take to answer /readyz. */
  readyTimeoutMs?: number;
}

export type NodeStatus = 'ready' | 'draining' | 'fenced' | 'unreachable' | 'stopped';

export interface NodeRow extends FleetNode {
  colour: Colour;
  live: boolean;
  status: NodeStatus;
  version?: string;
  uptimeSeconds?: number;
  openStreams?: number;
  requestRate?: number;
  eventLoopLagMs?: number;
}

export interface StatsRow {
  stack: string;
  node: string;
  /** Why figures are missing, when some are. */
  problem?: string;
  os?: OsStats;
  eventLoopLagMs?: number;
  openStreams?: number;
  requestRate?: number;
}

interface Selection {
  stacks: StackDescription[];
  live: string | undefined;
  nodes: FleetNode[];
  /** Every node of the stacks, whatever node the scope names. */
  stackNodes: FleetNode[];
}

const STATS_TIMEOUT_SECONDS = 15;

export class Fleet {
  private readonly readyTimeoutMs: number;

  constructor(private readonly options: FleetOptions) {
    this.readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
  }

  /** The stacks and nodes a scope names; unknown names are FleetInputErrors listing the known ones. */
  async select(scope: FleetScope): Promise<Selection> {
    const { env } = this.options;
    const [all, record] = await Promise.all([
      this.options.stacks.list(env),
      this.options.dns.current(this.options.recordName),
    ]);
    // The stack DNS sends clients to, by its ownership record or its target (src/switch/roles.ts); fences are not asked.
    const live = stackRoles({ record: record ?? null, stacks: all, states: {} }).live?.name;
    let stacks: StackDescription[];
    if (scope.all) stacks = all;
    else if (scope.stack) {
      const found = all.find((s) => s.name === scope.stack);
      if (!found)
        throw new FleetInputError(
          `environment ${env} has no stack ${scope.stack} (its stacks: ${names(all.map((s) => s.name))})`,
        );
      stacks = [found];
    } else {
      const found = all.find((s) => s.name === live);
      if (!found) {
        throw new FleetInputError(
          `environment ${env} has no live stack (${this.options.recordName} → ` +
            `${record ? record.stack || 'a target of no stack' : 'no record'}): name one with --stack or use --all`,
        );
      }
      stacks = [found];
    }
    const stackNodes = await this.options.platform.nodes(stacks);
    const nodes = scope.node ? stackNodes.filter((n) => n.id === scope.node) : stackNodes;
    if (!nodes.length && scope.node) {
      throw new FleetInputError(
        `no node ${scope.node} in ${stacks.map((s) => s.name).join(', ') || env} (its nodes: ${names(stackNodes.map((n) => n.id))})`,
      );
    }
    return { stacks, live, nodes, stackNodes };
  }

  async list(scope: FleetScope): Promise<NodeRow[]> {
    const { stacks, live, nodes } = await this.select(scope);
    const stats = await this.nodeStats(nodes);
    return nodes.map((node, i) => {
      const stack = stacks.find((s) => s.name === node.stack)!;
      const s = stats[i];
      return {
        ...node,
        colour: stack.colour,
        live: stack.name === live,
        status: statusOf(node, s),
        ...(s
          ? {
              version: s.version,
              uptimeSeconds: s.uptimeSeconds,
              openStreams: s.openStreams,
              requestRate: s.requestRate,
              eventLoopLagMs: s.eventLoopLagMs,
            }
          : {}),
      };
    });
  }

  /**
   * Every selected node's log from `since`, merged in time order and filtered by `grep`, to
   * `show`; with `follow`, then the lines written after, each batch in time order, until the
   * signal aborts.
   */
  async logs(
    scope: FleetScope,
    query: { since?: number; grep?: RegExp; follow: boolean; signal: AbortSignal },
    show: (lines: LogLine[]) => void,
  ): Promise<void> {
    const { nodes } = await this.select(scope);
    const kept = (lines: LogLine[]) => mergeByTime(lines.filter((line) => !query.grep || query.grep.test(line.text)));
    const { lines, mark } = await this.options.platform.logs(nodes, { since: query.since, signal: query.signal });
    show(kept(lines));
    if (!query.follow) return;
    await this.options.platform.follow(
      nodes,
      mark,
      (batch) => {
        const shown = kept(batch);
        if (shown.length) show(shown);
      },
      query.signal,
    );
  }

  async stats(scope: FleetScope): Promise<StatsRow[]> {
    const { nodes } = await this.select(scope);
    const running = nodes.filter((n) => n.state === 'running');
    const [os, admin] = await Promise.all([
      this.options.platform.exec(running, {
        script: OS_STATS_SCRIPT,
        parallel: running.length || 1,
        timeoutSeconds: STATS_TIMEOUT_SECONDS,
      }),
      this.nodeStats(nodes),
    ]);
    return nodes.map((node, i) => {
      const result = os.find((r) => r.node === node.id);
      const figures = result && result.exitCode === 0 ? parseOsStats(result.stdout) : undefined;
      const s = admin[i];
      const problems = [
        node.state !== 'running'
          ? `node is ${node.state}`
          : !figures
            ? `OS figures unavailable (${describe(result)})`
            : undefined,
        s ? undefined : 'admin stats unavailable',
      ].filter(Boolean);
      return {
        stack: node.stack,
        node: node.id,
        ...(problems.length ? { problem: problems.join('; ') } : {}),
        ...(figures ? { os: figures } : {}),
        ...(s ? { eventLoopLagMs: s.eventLoopLagMs, openStreams: s.openStreams, requestRate: s.requestRate } : {}),
      };
    });
  }

  /** `onStart` hears which nodes are about to run it, before anything runs (the audit log). */
  async exec(
    scope: FleetScope,
    command: string,
    options: { parallel: number; timeoutSeconds: number; signal?: AbortSignal; onStart?: (nodes: FleetNode[]) => void },
  ): Promise<{ nodes: FleetNode[]; results: ExecResult[] }> {
    const { nodes } = await this.select(scope);
    options.onStart?.(nodes);
    const results = await this.options.platform.exec(nodes, {
      script: command,
      parallel: options.parallel,
      timeoutSeconds: options.timeoutSeconds,
      signal: options.signal,
    });
    return { nodes, results };
  }

  /**
   * Rolling: each node drained, restarted and answering /readyz before the next one goes. A node
   * that is the last ready one of the live stack is never taken down.
   */
  async restart(
    scope: FleetScope,
    onStep: (node: FleetNode, step: 'draining' | 'restarting' | 'ready') => void,
  ): Promise<string[]> {
    const { live, nodes, stackNodes } = await this.select(scope);
    const restarted: string[] = [];
    for (const node of nodes) {
      if (node.stack === live) {
        const peers = stackNodes.filter((n) => n.stack === node.stack && n.id !== node.id);
        const readyPeers = (await this.nodeStats(peers)).filter((s, i) => statusOf(peers[i]!, s) === 'ready');
        if (!readyPeers.length) {
          throw new FleetRestartError(
            `refusing to restart ${node.id}: no other node of the live stack ${node.stack} is ready, so clients would have none`,
            restarted,
          );
        }
      }
      onStep(node, 'draining');
      await this.drain(node);
      onStep(node, 'restarting');
      await this.options.platform.restart(node);
      if (!(await this.waitReady(node))) {
        throw new FleetRestartError(
          `${node.id} did not answer /readyz within ${this.readyTimeoutMs / 1000} s after its restart; the restart stopped there`,
          restarted,
        );
      }
      restarted.push(node.id);
      onStep(node, 'ready');
    }
    return restarted;
  }

  /** Drain, then wait (bounded) for its streams to leave; an unreachable node is restarted anyway. */
  private async drain(node: FleetNode): Promise<void> {
    try {
      await this.options.platform.drain(node);
    } catch {
      return;
    }
    const deadline = Date.now() + this.options.drainSeconds * 1000;
    while (Date.now() < deadline) {
      const [s] = await this.nodeStats([node]);
      if (!s || s.openStreams === 0) return;
      await sleep(250);
    }
  }

  private async waitReady(node: FleetNode): Promise<boolean> {
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (await this.options.platform.ready(node).catch(() => false)) return true;
      await sleep(200);
    }
    return false;
  }

  /** Stats of the running nodes (others have none to give), in the nodes' order. */
  private async nodeStats(nodes: FleetNode[]): Promise<Array<NodeStats | undefined>> {
    const running = nodes.filter((n) => n.state === 'running');
    const answers = running.length ? await this.options.platform.stats(running) : [];
    return nodes.map((node) => answers[running.indexOf(node)]);
  }
}

function statusOf(node: FleetNode, stats: NodeStats | undefined): NodeStatus {
  if (node.state !== 'running') return 'stopped';
  if (!stats) return 'unreachable';
  if (stats.draining) return 'draining';
  return stats.fenced ? 'fenced' : 'ready';
}

function describe(result: ExecResult | undefined): string {
  if (!result) return 'not run';
  if (result.timedOut) return 'timed out';
  return `exit ${result.exitCode}${result.stderr.trim() ? `: ${result.stderr.trim().split('\n').pop()}` : ''}`;
}

function names(list: string[]): string {
  return list.length ? list.join(', ') : 'none';
}
