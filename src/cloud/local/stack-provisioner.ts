import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CreateStackRequest, StackDescription, StackProgress, StackProvisioner } from '../ports.ts';
import { CloudError, StackFailedError } from '../errors.ts';
import { repoRoot } from '../../config/environment.ts';
import type { Logger } from '../../logging.ts';
import { claimBlock, releaseBlock } from './addresses.ts';
import { isRunning, stopProcesses } from './processes.ts';
import { loadStackSpec, type LocalStore } from './stack-spec.ts';

export interface LocalStackProvisionerOptions {
  /** Parent of every stack's folder, e.g. `.data/stacks`. */
  stacksDir: string;
  /** SYNC_JWT_SECRET of every node. */
  jwtSecret: string;
  /**
   * SYNC_BUS of every node: the local environment's RabbitMQ, so a change written on one node
   * reaches streams on the others. `memory` (the default) serves only streams on the writing node.
   */
  bus?: string;
  /** Bounds waitUntilReady; a timeout is retryable (the nodes may only be slow to start). */
  readyTimeoutMs?: number;
  /** How long nodes get between SIGTERM and SIGKILL on delete. */
  stopGraceMs?: number;
  /** The sync server's entry point; tests never change it, it is here so the path is not hidden. */
  serverEntry?: string;
  /** The store of every stack whose parameters name none (`sqlite` by default). */
  store?: LocalStore;
  /**
   * Each node appends the writes it acknowledges to `<ackJournals>/<stack>/<node-N>.acks` (SYNC_ACK_JOURNAL),
   * outside the stack's folder so that the record outlives the stack.
   */
  ackJournals?: string;
  logger: Logger;
}

export interface NodeRecord {
  id: string;
  address: string;
  url: string;
}

/** `.data/stacks/<stack>/stack.json`: everything needed to find a stack's processes again. */
interface StackRecord extends StackDescription {
  tags: Record<string, string>;
  block: string;
  port: number;
  nodes: NodeRecord[];
}

/** One node of a local stack as a process: what `switchyard fleet` operates on. */
export interface LocalNodeProcess extends NodeRecord {
  /** Undefined when the node is not running. */
  pid: number | undefined;
  logFile: string;
  /** The stack's folder (its store, pid and log files). */
  dir: string;
}

const STACK_FILE = 'stack.json';
const CLAIMS = '.blocks';

/**
 * The local profile's compute: a stack is N `navcloud-sync` processes sharing one store (a SQLite
 * file in the stack's directory, or a bucket of the stack's own on a Riak),
 * each on its own loopback address and the same port. Nodes are started detached (their own
 * session, not children anyone waits for), so they outlive the worker that created them; all
 * state is on disk, so a new provisioner object — in a restarted worker — finds them again.
 */
export class LocalStackProvisioner implements StackProvisioner {
  private readonly stacksDir: string;
  private readonly readyTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly serverEntry: string;
  private readonly log: Logger;

  constructor(private readonly options: LocalStackProvisionerOptions) {
    this.log = options.logger.child({ component: 'local-stacks' });
    this.stacksDir = resolve(options.stacksDir);
    this.readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
    this.serverEntry = options.serverEntry ?? resolve(repoRoot, 'bin/navcloud-sync.js');
  }

  private dir(name: string): string {
    // SYNC_NODE_ID (`<stack>-node-N`) allows 64 characters.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,55}$/.test(name)) {
      throw new CloudError(
        `stack name '${name}' is not valid: up to 56 letters, digits, '.', '_' and '-'`,
        false,
        'InvalidName',
        name,
      );
    }
    return join(this.stacksDir, name);
  }

  async create(request: CreateStackRequest): Promise<void> {
    const dir = this.dir(request.name);
    const existing = this.read(request.name);
    if (existing) {
      if (existing.workflowId !== request.workflowId) {
        throw new CloudError(
          `stack ${request.name} already exists, created by workflow ${existing.workflowId}, not ${request.workflowId}`,
          false,
          'AlreadyExists',
          request.name,
        );
      }
      // A retried create after a crash between writing the record and starting every node.
      if (existing.status === 'creating') this.startMissingNodes(existing);
      return;
    }
    const spec = await loadStackSpec(request.template, request.parameters);
    mkdirSync(dir, { recursive: true });
    const block = await claimBlock(join(this.stacksDir, CLAIMS), request.name, spec.nodes, spec.port, (n) =>
      join(this.stacksDir, n),
    );
    const nodes = block.addresses.map((address, i) => ({
      id: `${request.name}-node-${i + 1}`,
      address,
      url: `http://${address}:${spec.port}`,
    }));
    const env: Record<string, string> = {
      PORT: String(spec.port),
      SYNC_STORE: syncStore(spec.store ?? this.options.store ?? 'sqlite', dir, request.name),
      SYNC_BUS: this.options.bus ?? 'memory',
      SYNC_JWT_SECRET: this.options.jwtSecret,
      SYNC_HEARTBEAT_MS: String(spec.heartbeatMs),
      LOG_FORMAT: 'json',
    };
    // A restarted node reads its settings here again (startMissingNodes); the secret stays private.
    writeFileSync(
      join(dir, 'node.env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    const record: StackRecord = {
      name: request.name,
      env: request.env,
      colour: request.colour,
      workflowId: request.workflowId,
      status: 'creating',
      rawStatus: 'CREATE_IN_PROGRESS',
      createdAt: new Date().toISOString(),
      tags: { env: request.env, colour: request.colour, workflowId: request.workflowId },
      block: block.prefix,
      port: spec.port,
      nodes,
    };
    this.write(record);
    this.log.info({ stack: record.name, env: record.env, nodes: nodes.map((n) => n.url) }, 'creating local stack');
    this.startMissingNodes(record);
  }

  private startMissingNodes(record: StackRecord): void {
    const dir = join(this.stacksDir, record.name);
    const env = readEnvFile(join(dir, 'node.env'));
    const journals = this.options.ackJournals && join(this.options.ackJournals, record.name);
    if (journals) mkdirSync(journals, { recursive: true });
    for (const node of record.nodes) {
      if (existsSync(join(dir, `${nodeFile(node)}.pid`))) continue;
      const out = openSync(join(dir, `${nodeFile(node)}.log`), 'a');
      const child = spawn(process.execPath, [this.serverEntry], {
        cwd: repoRoot,
        detached: true,
        stdio: ['ignore', out, out],
        env: {
          ...process.env,
          ...env,
          HOST: node.address,
          SYNC_NODE_ID: node.id,
          ...(journals ? { SYNC_ACK_JOURNAL: join(journals, `${nodeFile(node)}.acks`) } : {}),
        },
      });
      closeSync(out);
      child.unref();
      if (child.pid === undefined) throw new CloudError(`could not start ${node.id}`, true, 'SpawnFailed', record.name);
      writeFileSync(join(dir, `${nodeFile(node)}.pid`), `${child.pid}\n`);
    }
  }

  async waitUntilReady(
    name: string,
    onProgress?: (p: StackProgress) => void,
    signal?: AbortSignal,
  ): Promise<StackDescription> {
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      const record = this.refresh(name);
      if (!record) throw new CloudError(`stack ${name} does not exist`, false, 'NotFound', name);
      if (record.status === 'failed') throw new StackFailedError(name, record.rawStatus, this.failures(record));
      if (record.status === 'ready') return describeRecord(record, this.deadNodes(record));
      if (record.status !== 'creating')
        throw new CloudError(`stack ${name} is ${record.status}, it will not become ready`, false, 'NotCreating', name);
      const ready = await Promise.all(record.nodes.map((n) => answersReady(n.url)));
      const done = ready.filter(Boolean).length;
      onProgress?.({ rawStatus: record.rawStatus, done, total: record.nodes.length });
      if (done === record.nodes.length) {
        record.status = 'ready';
        record.rawStatus = 'CREATE_COMPLETE';
        record.outputs = {
          endpoint: record.nodes[0]!.url,
          adminUrl: record.nodes[0]!.url,
          nodes: record.nodes.map((n) => n.url),
          dnsTarget: { kind: 'a', addresses: record.nodes.map((n) => n.address) },
        };
        this.write(record);
        this.log.info({ stack: name }, 'local stack ready');
        return describeRecord(record, []);
      }
      if (Date.now() > deadline) {
        throw new CloudError(
          `stack ${name}: ${done} of ${record.nodes.length} nodes ready after ${this.readyTimeoutMs} ms`,
          true,
          'Timeout',
          name,
        );
      }
      await sleep(200, undefined, { signal });
    }
  }

  async describe(name: string): Promise<StackDescription | undefined> {
    const record = this.refresh(name);
    return record && describeRecord(record, this.deadNodes(record));
  }

  async list(env: string): Promise<StackDescription[]> {
    if (!existsSync(this.stacksDir)) return [];
    return readdirSync(this.stacksDir)
      .filter((entry) => entry !== CLAIMS)
      .map((entry) => this.refresh(entry))
      .filter((r): r is StackRecord => r !== undefined && r.env === env)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map((r) => describeRecord(r, this.deadNodes(r)));
  }

  async delete(name: string): Promise<void> {
    const dir = this.dir(name);
    if (!existsSync(dir)) return;
    const record = this.read(name);
    if (record) {
      record.status = 'deleting';
      record.rawStatus = 'DELETE_IN_PROGRESS';
      this.write(record);
      // SIGTERM is a node's graceful close: its streams get `reconnect` before it exits.
      const running = record.nodes.filter((n) => this.pidOf(record, n) !== undefined);
      await stopProcesses(
        running.map((n) => ({ pid: this.pidOf(record, n)!, marker: `SYNC_NODE_ID=${n.id}` })),
        this.stopGraceMs,
      );
      releaseBlock(join(this.stacksDir, CLAIMS), record.block, name);
    }
    rmSync(dir, { recursive: true, force: true });
    this.log.info({ stack: name }, 'local stack deleted');
  }

  async waitUntilDeleted(name: string, _onProgress?: (p: StackProgress) => void, signal?: AbortSignal): Promise<void> {
    // delete() stops the processes itself; a folder left by a crashed delete is finished here.
    signal?.throwIfAborted();
    if (existsSync(this.dir(name))) await this.delete(name);
  }

  /** The stack's nodes with their processes and log files; empty for a stack that does not exist. */
  nodeProcesses(name: string): LocalNodeProcess[] {
    const record = this.read(name);
    if (!record) return [];
    const dir = join(this.stacksDir, name);
    return record.nodes.map((node) => ({
      ...node,
      pid: this.pidOf(record, node),
      logFile: join(dir, `${nodeFile(node)}.log`),
      dir,
    }));
  }

  /** Stops one node (SIGTERM, SIGKILL after the grace) and starts it again with the stack's settings. */
  async restartNode(name: string, nodeId: string): Promise<void> {
    const record = this.read(name);
    const node = record?.nodes.find((n) => n.id === nodeId);
    if (!record || !node) throw new CloudError(`stack ${name} has no node ${nodeId}`, false, 'NotFound', name);
    const pid = this.pidOf(record, node);
    if (pid !== undefined) await stopProcesses([{ pid, marker: `SYNC_NODE_ID=${node.id}` }], this.stopGraceMs);
    rmSync(join(this.stacksDir, name, `${nodeFile(node)}.pid`), { force: true });
    this.startMissingNodes(record);
    this.log.info({ stack: name, node: nodeId }, 'local node restarted');
  }

  /** The record with a creating stack whose node died turned into a failed one (and saved). */
  private refresh(name: string): StackRecord | undefined {
    const record = this.read(name);
    if (!record || record.status !== 'creating') return record;
    const dead = this.deadNodes(record);
    if (!dead.length) return record;
    record.status = 'failed';
    record.rawStatus = 'CREATE_FAILED';
    this.write(record);
    this.log.warn({ stack: name, dead: dead.map((n) => n.id) }, 'local stack failed: a node exited while creating');
    return record;
  }

  /** Nodes that were started and are no longer running (a node not yet started is not dead). */
  private deadNodes(record: StackRecord): NodeRecord[] {
    const dir = join(this.stacksDir, record.name);
    return record.nodes.filter(
      (n) => existsSync(join(dir, `${nodeFile(n)}.pid`)) && this.pidOf(record, n) === undefined,
    );
  }

  private pidOf(record: StackRecord, node: NodeRecord): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.stacksDir, record.name, `${nodeFile(node)}.pid`), 'utf8').trim());
      return isRunning(pid, `SYNC_NODE_ID=${node.id}`) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private failures(record: StackRecord) {
    const dir = join(this.stacksDir, record.name);
    return this.deadNodes(record).map((n) => ({
      resource: n.id,
      type: 'Local::SyncNode',
      reason: `exited while the stack was being created; last log line: ${lastLine(join(dir, `${nodeFile(n)}.log`))}`,
    }));
  }

  private read(name: string): StackRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir(name), STACK_FILE), 'utf8')) as StackRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Write-then-rename, so a reader never sees half a record. */
  private write(record: StackRecord): void {
    const file = join(this.dir(record.name), STACK_FILE);
    writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2));
    renameSync(`${file}.tmp`, file);
  }
}

function nodeFile(node: NodeRecord): string {
  return node.id.slice(node.id.lastIndexOf('node-'));
}

function describeRecord(record: StackRecord, dead: NodeRecord[]): StackDescription {
  const rawStatus =
    record.status === 'ready' && dead.length
      ? `${record.rawStatus}; not running: ${dead.map((n) => n.id).join(', ')}`
      : record.rawStatus;
  return {
    name: record.name,
    env: record.env,
    colour: record.colour,
    workflowId: record.workflowId,
    status: record.status,
    rawStatus,
    createdAt: record.createdAt,
    ...(record.status === 'ready' && record.outputs ? { outputs: record.outputs } : {}),
  };
}

async function answersReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    return lines[lines.length - 1]?.slice(0, 500) || '(empty log)';
  } catch {
    return '(no log)';
  }
}

/** SYNC_STORE of a stack's nodes: its own SQLite file, or its own bucket on the Riak named. */
function syncStore(store: LocalStore, dir: string, stack: string): string {
  if (store === 'sqlite') return `sqlite:${join(dir, 'store.sqlite')}`;
  const url = store.slice('riak:'.length);
  return `riak:${url}${url.includes('?') ? '&' : '?'}bucket=${stack}`;
}
