/**
 * What `switchyard fleet` needs from where the nodes run (docs in README "Fleet operations").
 * `local`: the stack's navcloud-sync processes, their log files and /proc. `aws`: the API
 * instances of the stack's Auto Scaling group, SSM Run Command and CloudWatch Logs.
 */
import type { StackDescription } from '../../cloud/ports.ts';
import type { NodeStats } from '../../navcloud/protocol.ts';

export interface FleetNode {
  stack: string;
  /** The node id its log lines and stats carry (SYNC_NODE_ID: `<stack>-node-N` or the instance id). */
  id: string;
  /** Private address (loopback locally). */
  address: string;
  /** Base URL of the node itself, for /admin/* and /readyz. */
  url: string;
  /** What the platform says: running, stopped, pending, terminated… */
  state: string;
}

export interface LogLine {
  node: string;
  /** Epoch ms: the pino `time` of the line, or when it was read for a line without one. */
  time: number;
  text: string;
}

export interface LogQuery {
  /** Epoch ms; lines before it are skipped. */
  since?: number;
  signal?: AbortSignal;
}

/** Where a log read ended, so following picks up exactly after it: no line lost, none twice. */
export interface LogMark {
  /** Epoch ms: lines stamped from then on are new (platforms that read by time). */
  at: number;
  /** Bytes read of each node's log file (platforms that read files). */
  offsets: Record<string, number>;
}

export interface ExecRequest {
  /** Run by /bin/sh on the node, with NODE_ID (and NODE_PID where the platform knows it) set. */
  script: string;
  /** How many nodes run it at once. */
  parallel: number;
  timeoutSeconds: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  node: string;
  /** The command's exit status; 124 when it timed out, as timeout(1) reports it. */
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export const TIMED_OUT = 124;

export interface FleetPlatform {
  /** The API nodes of these stacks, in stack then node order. */
  nodes(stacks: StackDescription[]): Promise<FleetNode[]>;
  /** Each node's log from `since`, in that node's order, and where the read ended. */
  logs(nodes: FleetNode[], query: LogQuery): Promise<{ lines: LogLine[]; mark: LogMark }>;
  /** Calls `onLines` with each batch of lines after `from` until the signal aborts. */
  follow(nodes: FleetNode[], from: LogMark, onLines: (lines: LogLine[]) => void, signal: AbortSignal): Promise<void>;
  /** Runs the script on the nodes, at most `parallel` at a time; a result for every node. */
  exec(nodes: FleetNode[], request: ExecRequest): Promise<ExecResult[]>;
  /** Stops and starts the node's server process (the caller drained it and waits for ready). */
  restart(node: FleetNode): Promise<void>;
  /** Each node's GET /admin/stats, in the nodes' order; undefined for a node that did not answer. */
  stats(nodes: FleetNode[]): Promise<Array<NodeStats | undefined>>;
  /** POST /admin/drain on the node: its streams are told to reconnect, /readyz answers 503. */
  drain(node: FleetNode): Promise<void>;
  /** True when the node's /readyz answers 200. */
  ready(node: FleetNode): Promise<boolean>;
}
