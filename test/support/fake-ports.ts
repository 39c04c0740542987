/**
 * A fake world for workflow tests: stacks, backups, DNS and every stack's admin API, held in one
 * JSON state that can live in a file so it survives a killed worker process. Operations can be
 * told to fail, and the fake records what it was asked to do and any broken invariant.
 *
 * It models what the switch's invariants (docs/invariants.md) are about: every node's fence with
 * its lease on a clock the test drives (the Temporal server's time), forwarding, a fence only some
 * nodes answer, clients that keep writing to whichever stack they reach (through DNS or a cached
 * answer) and the writes they were told succeeded, stack outputs and statuses shaped as on AWS,
 * and DNS changes refused or never in sync. `snapshot()` is what test/support/invariants.ts checks;
 * `onStep` is told of every change.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { CloudError, DnsConflictError, StackFailedError } from '../../src/cloud/errors.ts';
import { servesWithOutputs, stackStatus } from '../../src/cloud/aws/stack-provisioner.ts';
import type {
  BackupManifest,
  Colour,
  DnsRecordState,
  DnsTarget,
  Ports,
  StackDescription,
  StackOutputs,
} from '../../src/cloud/ports.ts';
import type { Environment } from '../../src/config/environment.ts';
import type { ExportItemLine, ExportLine, FenceMode, FenceResult, NodeStats } from '../../src/navcloud/protocol.ts';
import { FenceConflictError, type StackAdmin } from '../../src/navcloud/admin-client.ts';
import { FenceConflict, type FenceChange } from '../../server/store/port.ts';
import {
  decide,
  effectiveMode,
  lapseOf,
  OPEN,
  type FenceRecord,
  type FenceRequest,
} from '../../server/store/fence-rules.ts';
import {
  DEFAULT_FENCE_LEASE_SECONDS,
  DEFAULT_MAX_WRITE_PAUSE_SECONDS,
  type SmokeCheck,
} from '../../src/switch/contract.ts';
import { stackName } from '../../src/switch/stack-name.ts';
import type { AcknowledgedWrite, DnsFlip, NodeFence, RunSnapshot, WorldSnapshot } from './invariants.ts';
import { holdsAtLeast } from '../../src/navcloud/revision.ts';
import type { ActivityDeps, SmokeRunner } from '../../activities/index.ts';
import { decodeCursor, encodeCursor } from '../../src/navcloud/cursor.ts';

export const FAILURE_POINTS = [
  'stacks.create',
  'stacks.waitUntilReady',
  'stacks.delete',
  'backups.latest',
  'backups.read',
  'admin.import',
  'admin.export',
  'admin.fence',
  'admin.unfence',
  'admin.drain',
  'admin.undrain',
  'admin.stats',
  'admin.settled',
  'dns.switch',
  'dns.waitInSync',
  'dns.verify',
  'smoke',
  'probe',
  // Only the first node takes the fence, then the call fails as if the others never answered.
  'admin.fence.partial',
  'admin.forward',
] as const;
export type FailurePoint = (typeof FAILURE_POINTS)[number];

export interface Failure {
  message?: string;
  retryable?: boolean;
  /** Fail this many times, then succeed; forever when omitted. */
  times?: number;
  /** Only when the operation concerns this stack (name or URL containing it). */
  stack?: string;
  /** Let this many matching calls succeed first. */
  after?: number;
}

/** Nodes per fake stack (its outputs name as many). */
const NODES = 2;

/**
 * What a write in flight when a fence lands does with its number (`FakeState.inFlightAtFence`):
 * never stored ('gap'), stored and refused ('overtaken'), or stored, refused and undone under a
 * number of its own, which the commit counts ('undone', as on Riak): the undo lands when a node of
 * the stack is asked to settle, or else only after the copy under the fence read its cursor.
 */
export type CaughtWrite = 'gap' | 'overtaken' | 'undone';

interface FakeStack {
  description: StackDescription;
  /** `copiedRev`: the revision last imported, kept by client writes (the data check reads it). */
  items: Record<string, ExportItemLine & { copiedRev?: string }>;
  seq: number;
  /** The fence as the stack's store holds it, decided as the stores decide (server/store/fence-rules.ts). */
  fence?: FenceRecord;
  /** When each node first saw the fence's epoch (world ms: a node's monotonic clock runs with world time, whatever its wall clock says). */
  seen?: Array<{ epoch: number; at: number }>;
  /** Admin requests answered so far: they go to the nodes in turn. */
  adminRequests?: number;
  /** A write caught by the last fence that has not taken its number yet. */
  caught?: CaughtWrite;
  /** The number of the last undo of a caught write: a commit over a copy that ends below it is refused as behind. */
  undoneThrough?: number;
  draining: boolean;
  smoke?: 'passed' | 'failed' | 'not-run';
  /** DNS pointed to it at some time. */
  everLive?: boolean;
}

export interface FakeState {
  stacks: Record<string, FakeStack>;
  dns?: DnsRecordState;
  dnsChanges: number;
  backups: Array<{ manifest: BackupManifest; lines: string[] }>;
  failures: Partial<Record<FailurePoint, Failure>>;
  /** What the world was asked to do, in order: `create NAME`, `delete NAME`, `fence NAME`... */
  calls: string[];
  /** Lines each stack received through import, in order of arrival (ids). */
  imported: Record<string, string[]>;
  /** Broken invariants seen by the fake; a test asserts this stays empty. */
  violations: string[];
  /** Open streams / request rate reported by every stats call until the n-th call. */
  busyUntilStatsCall: number;
  statsCalls: number;
  /** Writes a fenced stack refused (clients would retry them elsewhere). */
  refusedWrites: number;
  /** Client writes a stack takes right after DNS starts pointing to it. */
  writesAfterSwitch: number;
  /** Someone points DNS at this stack when the first node is told to drain. */
  repointDnsOnDrain?: string;
  /** World time, epoch ms, when a test drives the clock (else the wall clock). */
  now?: number;
  /** Writes clients were told succeeded, and the stack that applied them. */
  acks?: AcknowledgedWrite[];
  /** Every change of the DNS record. */
  flips?: DnsFlip[];
  /** Where clients with a cached DNS answer still go: the stack DNS pointed to before the last change. */
  cachedDns?: string;
  clientWrites?: number;
  /** The runs acting on this world, as a test tells them (snapshot() reports them). */
  runs?: RunSnapshot[];
  /** How far each node's wall clock (by node index, in every stack) is ahead of world time, ms. */
  clockSkewMs?: number[];
  /** A node's wall clock steps forward by this much right after the first fence of an open stack. */
  clockStepOnFence?: { node: number; byMs: number };
  /**
   * A client write in flight when a fence lands on an open stack: 'gap' takes a number that is
   * never stored (its conflict retry is refused by the fence), 'overtaken' takes its number once
   * the next export has read its cursor, is stored and answered as refused.
   */
  inFlightAtFence?: CaughtWrite;
  /** Once the world did a call matching `after` (a regular expression), admin requests to `stack` are refused (connection refused) this many times. */
  partition?: { stack: string; after: string; requests: number; started?: boolean };
}

export interface FakeWorldOptions {
  /** JSON file holding the state; read at start, written after every change. */
  stateFile?: string;
  importDelayMs?: number;
  env?: Partial<Environment>;
  /** Stack outputs as CloudFormation gives them (alias to a load balancer, no trailing dot), the record as Route53 answers it (trailing dot). */
  awsShaped?: boolean;
  /** Told of every change of the world, after it happened. */
  onStep?: (what: string) => void;
  /** Clients write before every admin request, not only between activities. */
  clientsWriteBetweenRequests?: boolean;
}

/** The service's own cursors: the data verification after the flip decodes them. */
export const cursorOf = (seq: number) => encodeCursor(seq);
const seqOf = (cursor: string | undefined) => (cursor ? (decodeCursor(cursor) ?? 0) : 0);

/** The workflow whose activity is calling, when the world is changed from an activity. */
function callingWorkflow(): string | undefined {
  try {
    return Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined;
  }
}

const sameName = (a: string, b: string) => a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
/** Route53 compares names without regard to the trailing dot or case. */
function sameTarget(a: DnsTarget, b: DnsTarget): boolean {
  if (a.kind === 'alias' && b.kind === 'alias')
    return sameName(a.dnsName, b.dnsName) && a.hostedZoneId === b.hostedZoneId;
  if (a.kind === 'a' && b.kind === 'a') return [...a.addresses].sort().join() === [...b.addresses].sort().join();
  return false;
}
function sameRecord(a: DnsRecordState | undefined, b: DnsRecordState | undefined): boolean {
  if (!a || !b) return a === b;
  return a.stack === b.stack && a.ttl === b.ttl && sameTarget(a.target, b.target);
}

export function fakeEnvironment(name: string, overrides: Partial<Environment> = {}): Environment {
  return {
    name,
    profile: 'local',
    region: 'us-east-1',
    hostedZoneId: 'Z1',
    recordName: `sync.${name}.navcloud.test.`,
    ttl: 30,
    template: 'app-stack.yaml',
    parameters: {},
    backups: { bucket: 'navcloud-backups', prefix: 'backups/', keep: 3 },
    smoke: { heartbeatMs: 100, changeArrivalMs: 1000, sampleItems: 5, maxLatencyMs: 1000 },
    approval: 'auto',
    approvalTimeoutSeconds: 600,
    verifySeconds: 30,
    verifyItemsPerSecond: 40_000,
    drainSeconds: 120,
    keepStacks: 1,
    jwtSecret: 'test-secret',
    catchUpFenceBelow: 10,
    fenceLeaseSeconds: DEFAULT_FENCE_LEASE_SECONDS,
    maxWritePauseSeconds: DEFAULT_MAX_WRITE_PAUSE_SECONDS,
    ...overrides,
  };
}

/** The name of the live stack `seedWorld` creates. */
export const seedStackName = (env: string) => stackName(env, 'blue', 'seed0001');

/** A live stack of `env` with `items` items, a backup of it, and 5 writes it took since. */
export function seedWorld(world: FakeWorld, env: string, items = 30): string {
  const name = seedStackName(env);
  world.addStack(name, 'blue', { items, live: true, env });
  world.addBackup(name, `backups/${env}-seed.json`);
  world.write(name, 5, 'since-backup');
  return name;
}

export class FakeWorld {
  state: FakeState;
  private readonly options: FakeWorldOptions;

  constructor(options: FakeWorldOptions = {}) {
    this.options = options;
    this.state =
      options.stateFile && existsSync(options.stateFile)
        ? (JSON.parse(readFileSync(options.stateFile, 'utf8')) as FakeState)
        : {
            stacks: {},
            dnsChanges: 0,
            backups: [],
            failures: {},
            calls: [],
            imported: {},
            violations: [],
            busyUntilStatsCall: 0,
            statsCalls: 0,
            refusedWrites: 0,
            writesAfterSwitch: 0,
            acks: [],
            flips: [],
            clientWrites: 0,
            runs: [],
          };
  }

  /** World time: the clock a test drives with setTime, else the wall clock. */
  now(): number {
    return this.state.now ?? Date.now();
  }

  setTime(ms: number): void {
    this.state.now = ms;
  }

  /** Re-reads the state file (another process may have written it). */
  reload(): FakeState {
    if (this.options.stateFile && existsSync(this.options.stateFile)) {
      this.state = JSON.parse(readFileSync(this.options.stateFile, 'utf8')) as FakeState;
    }
    return this.state;
  }

  save(): void {
    if (!this.options.stateFile) return;
    const temp = `${this.options.stateFile}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.state));
    renameSync(temp, this.options.stateFile);
  }

  private record(call: string): void {
    this.state.calls.push(call);
    const partition = this.state.partition;
    if (partition && !partition.started && new RegExp(partition.after).test(call)) partition.started = true;
    this.changed(call);
  }

  /** After every change of the world: saved, the run that made it marked as acting, the test told. */
  private changed(what: string): void {
    const workflowId = callingWorkflow();
    const run = workflowId ? this.state.runs?.find((r) => r.workflowId === workflowId) : undefined;
    if (run) run.acted = true;
    this.save();
    this.options.onStep?.(what);
  }

  fail(point: FailurePoint, failure: Failure = {}): this {
    this.state.failures[point] = failure;
    this.save();
    return this;
  }

  private check(point: FailurePoint, subject = ''): void {
    const failure = this.state.failures[point];
    if (!failure || (failure.stack && !subject.includes(failure.stack))) return;
    if (failure.after) {
      failure.after -= 1;
      this.save();
      return;
    }
    if (failure.times !== undefined) {
      if (failure.times <= 0) return;
      failure.times -= 1;
      this.save();
    }
    throw new CloudError(
      failure.message ?? `injected failure at ${point}`,
      failure.retryable ?? false,
      'Injected',
      subject,
    );
  }

  /** Whether an injected failure of `point` applies now (counting it like a throw would). */
  private failsAt(point: FailurePoint, subject: string): boolean {
    try {
      this.check(point, subject);
      return false;
    } catch {
      return true;
    }
  }

  /** The fence as node `node` answers it, by its own clock. */
  private fenceResult(stack: FakeStack, node: number): FenceResult {
    const record = this.recordOf(stack);
    const { mode, leaseLeftMs } = this.nodeView(stack, node);
    return {
      fenced: mode !== 'open',
      mode,
      epoch: record.epoch,
      cursor: cursorOf(stack.seq),
      ...(mode === 'fenced' ? { leaseSeconds: (record.leaseMs ?? 0) / 1000, leaseLeftMs } : {}),
      ...(mode === 'forwarding' ? { forwardTo: record.forwardTo } : {}),
      ...(record.by ? { by: record.by } : {}),
    };
  }

  private fenceAtFlip(from: string): Pick<DnsFlip, 'from' | 'fromMode' | 'fromLeaseLeftMs'> {
    const stack = this.state.stacks[from];
    if (!stack) return { from };
    const nodes = this.nodesOf(stack);
    // The laxest node speaks for the stack: one open node is an open stack.
    const modes = nodes.map((n) => n.mode);
    const fromMode: FenceMode = modes.includes('open') ? 'open' : modes.includes('fenced') ? 'fenced' : 'forwarding';
    const leaseLeft = Math.min(...nodes.filter((n) => n.mode === 'fenced').map((n) => n.leaseLeftMs ?? 0));
    return { from, fromMode, ...(fromMode === 'fenced' ? { fromLeaseLeftMs: leaseLeft } : {}) };
  }

  // ------------------------------------------------------------ nodes and their clocks

  /** Node `node`'s wall clock: world time plus its skew. Only what clients see of items reads it; leases never do. */
  private nodeClock(node: number): number {
    return this.now() + (this.state.clockSkewMs?.[node] ?? 0);
  }

  private recordOf(stack: FakeStack): FenceRecord {
    return (stack.fence ??= { ...OPEN });
  }

  /** What node `node` does with a write now: its lease measured from when it first saw the epoch. */
  private nodeView(stack: FakeStack, node: number): { mode: FenceMode; leaseLeftMs?: number } {
    const record = this.recordOf(stack);
    if (record.mode !== 'fenced') return { mode: record.mode };
    const seen = (stack.seen ??= []);
    if (seen[node]?.epoch !== record.epoch) seen[node] = { epoch: record.epoch, at: this.now() };
    const leaseLeftMs = (record.leaseMs ?? 0) - (this.now() - seen[node]!.at);
    return { mode: effectiveMode(record, leaseLeftMs <= 0), leaseLeftMs };
  }

  /** Each node of a stack as it acts now, for the invariants. */
  private nodesOf(stack: FakeStack): NodeFence[] {
    return Array.from({ length: NODES }, (_, node) => {
      const { mode, leaseLeftMs } = this.nodeView(stack, node);
      if (mode === 'fenced') return { mode, leaseLeftMs };
      const forwardTo = this.recordOf(stack).forwardTo;
      return mode === 'forwarding' && forwardTo
        ? { mode, forwardTo: this.stackOfUrl(forwardTo).description.name }
        : { mode };
    });
  }

  /** One compare-and-set of a stack's fence, answered by node `node` as the stores answer it. */
  private changeFence(stack: FakeStack, node: number, change: FenceChange & FenceRequest): FenceResult {
    const record = this.recordOf(stack);
    const { mode } = this.nodeView(stack, node);
    // As a Riak store judges a commit: a number may be taken and never acknowledged (a write the
    // fence caught), so only a copy older than the fence is behind; a lapse moved the epoch.
    const view = {
      lapsed: record.mode === 'fenced' && mode === 'open',
      seq: stack.seq,
      acknowledgedThrough: Math.max(record.fencedAt ?? stack.seq, stack.undoneThrough ?? 0),
    };
    let decision;
    try {
      decision = decide(record, view, change, () => ({ mode, epoch: record.epoch, seq: stack.seq }));
    } catch (err) {
      if (err instanceof FenceConflict)
        throw new FenceConflictError(
          `fake: ${err.message}`,
          stack.description.outputs?.adminUrl ?? '',
          this.fenceResult(stack, node),
        );
      throw err;
    }
    if ('next' in decision) stack.fence = decision.next;
    return this.fenceResult(stack, node);
  }

  /** The node that answers the next admin request to a stack: they take turns. */
  private answering(stack: FakeStack): number {
    stack.adminRequests = (stack.adminRequests ?? 0) + 1;
    return stack.adminRequests % NODES;
  }

  /**
   * Before every admin request: a partitioned stack refuses it, and (when asked) clients write
   * first, so a request never finds the world as the previous one left it.
   */
  private beforeRequest(url: string): void {
    const partition = this.state.partition;
    if (partition?.started && partition.requests > 0 && url.includes(partition.stack)) {
      partition.requests -= 1;
      this.save();
      throw new CloudError(`fake: ${url} refused the connection`, true, 'Unreachable', url);
    }
    if (this.options.clientsWriteBetweenRequests) this.clientsWrite();
  }

  /** A fence turned an open stack fenced: a write in flight is caught by it, and a node's wall clock may step. */
  private fenceLanded(stack: FakeStack): void {
    const step = this.state.clockStepOnFence;
    if (step) {
      (this.state.clockSkewMs ??= [])[step.node] = (this.state.clockSkewMs[step.node] ?? 0) + step.byMs;
      this.state.clockStepOnFence = undefined;
    }
    stack.caught = this.state.inFlightAtFence;
    // Its conflict retry is refused at once: the number is gone before the fence answers.
    if (stack.caught === 'gap') this.takeCaughtNumber(stack);
  }

  /** A write caught by a fence takes its number: never stored ('gap'), stored and refused ('overtaken'), or its undo's ('undone'). */
  private takeCaughtNumber(stack: FakeStack): void {
    const caught = stack.caught;
    stack.caught = undefined;
    if (!caught) return;
    stack.seq += 1;
    if (caught === 'undone') {
      const id = 'shared-0';
      const have = stack.items[id];
      stack.items[id] = {
        ...(have ?? { kind: 'item', id, owner: 'u1', type: 'trip', deleted: true, shares: [] }),
        rev: `${(have ? Number(have.rev.split('-')[0]) || 0 : 0) + 1}-undo`,
        cursor: cursorOf(stack.seq),
        updatedAt: new Date(this.now()).toISOString(),
      };
      stack.undoneThrough = stack.seq;
    }
    if (caught === 'overtaken') {
      const id = 'shared-0';
      const have = stack.items[id];
      const rev = `${(have ? Number(have.rev.split('-')[0]) || 0 : 0) + 1}-caught`;
      stack.items[id] = {
        kind: 'item',
        id,
        owner: 'u1',
        type: 'trip',
        rev,
        deleted: false,
        data: { caught: true },
        shares: [],
        cursor: cursorOf(stack.seq),
        updatedAt: new Date(this.now()).toISOString(),
      };
    }
    this.changed(
      `a write caught by the fence of ${stack.description.name} took number ${stack.seq}${caught === 'gap' ? ' (never stored)' : caught === 'undone' ? ' (its undo)' : ''}`,
    );
  }

  // ------------------------------------------------------------ seeding and client traffic

  /** A ready stack, optionally live behind DNS, with `items` items. */
  addStack(
    name: string,
    colour: Colour,
    options: { items?: number; live?: boolean; env?: string; createdAt?: string; rawStatus?: string } = {},
  ): StackDescription {
    const env = options.env ?? 'test';
    const description: StackDescription = {
      name,
      env,
      colour,
      workflowId: 'seed',
      status: 'ready',
      rawStatus: options.rawStatus ?? 'CREATE_COMPLETE',
      createdAt: options.createdAt ?? new Date(Date.UTC(2026, 0, 1)).toISOString(),
      outputs: this.outputsFor(name),
    };
    this.state.stacks[name] = {
      description,
      items: {},
      seq: 0,
      fence: { ...OPEN },
      draining: false,
      smoke: 'passed',
      everLive: options.live,
    };
    this.write(name, options.items ?? 0, 'seed');
    if (options.live)
      this.state.dns = {
        recordName: this.recordName(env),
        ttl: 30,
        target: this.asRoute53(description.outputs!.dnsTarget),
        stack: name,
      };
    this.save();
    return description;
  }

  /** A backup of a stack's current items. */
  addBackup(stack: string, key = `backups/${stack}-${Object.keys(this.state.backups).length}.json`): BackupManifest {
    const source = this.stack(stack);
    const items = Object.values(source.items).sort((a, b) => seqOf(a.cursor) - seqOf(b.cursor));
    const lines = [
      ...items.map((i) => JSON.stringify(i)),
      JSON.stringify({ kind: 'end', cursor: cursorOf(source.seq), items: items.length }),
    ];
    const manifest: BackupManifest = {
      key,
      dataKey: `${key}.ndjson.gz`,
      env: source.description.env,
      sourceStack: stack,
      createdAt: new Date(Date.UTC(2026, 0, 2, 0, this.state.backups.length)).toISOString(),
      items: items.length,
      sha256: 'fake',
      cursor: cursorOf(source.seq),
      bytes: lines.join('\n').length,
    };
    this.state.backups.unshift({ manifest, lines });
    this.save();
    return manifest;
  }

  /** `count` client writes on a stack; a fenced stack refuses them (503), so they are not acknowledged. */
  write(stack: string, count: number, prefix = 'w'): number {
    const target = this.stack(stack);
    if (this.fenceOf(stack).some((mode) => mode !== 'open')) {
      this.state.refusedWrites += count;
      this.save();
      return 0;
    }
    for (let i = 0; i < count; i += 1) {
      target.seq += 1;
      const id = `${prefix}-${stack}-${target.seq}`;
      target.items[id] = {
        kind: 'item',
        id,
        owner: 'u1',
        type: 'trip',
        rev: `${target.seq}-a`,
        deleted: false,
        data: { n: i },
        shares: [],
        cursor: cursorOf(target.seq),
        updatedAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
      };
    }
    this.save();
    return count;
  }

  /**
   * One round of client traffic: a client that resolved DNS just now and one that still has the
   * previous answer cached each update one of a few shared items, or create one, on the stack they reach. What
   * a stack does with it follows its node's fence: open applies it (acknowledged), forwarding
   * passes it on, fenced holds it until the client gives up (not acknowledged), gone refuses it.
   */
  clientsWrite(): void {
    const destinations = [this.state.dns?.stack, this.state.cachedDns].filter((s): s is string => s !== undefined);
    for (const stack of destinations) {
      const n = (this.state.clientWrites = (this.state.clientWrites ?? 0) + 1);
      // Every other write creates an item no later write touches: nothing covers for it if it goes missing.
      const id = n % 2 === 0 ? `shared-${(n / 2) % 4}` : `item-${n}`;
      const applied = this.applyClientWrite(stack, id, n % NODES, 3);
      if (applied) this.changed(`client write ${id} acknowledged by ${applied}`);
      else this.state.refusedWrites += 1;
    }
  }

  private applyClientWrite(name: string, id: string, node: number, hops: number): string | undefined {
    const stack = this.state.stacks[name];
    if (!stack || stack.description.status === 'deleted' || hops < 0) return undefined;
    const record = this.recordOf(stack);
    const { mode } = this.nodeView(stack, node);
    if (mode === 'forwarding')
      return record.forwardTo
        ? this.applyClientWrite(this.stackOfUrl(record.forwardTo).description.name, id, node, hops - 1)
        : undefined;
    if (mode === 'fenced') return undefined;
    // A node that finds the lease lapsed by its clock records the lapse before it applies the write.
    if (record.mode === 'fenced') stack.fence = lapseOf(record);
    const have = stack.items[id];
    const generation = (have ? Number(have.rev.split('-')[0]) || 0 : 0) + 1;
    // A nonce that sorts by arrival: of two writes of one generation the later one wins, as a random nonce might.
    const rev = `${generation}-${String(this.state.clientWrites).padStart(6, '0')}`;
    stack.seq += 1;
    stack.items[id] = {
      kind: 'item',
      id,
      owner: 'u1',
      type: 'trip',
      rev,
      deleted: false,
      data: { by: name },
      shares: [],
      cursor: cursorOf(stack.seq),
      updatedAt: new Date(this.nodeClock(node)).toISOString(),
      ...(have?.copiedRev === undefined ? {} : { copiedRev: have.copiedRev }),
    };
    (this.state.acks ??= []).push({ id, rev, stack: name, at: this.now() });
    return name;
  }

  /** The stack's store holds a fence (fenced, its lease lapsed or not, or forwarding). */
  fenced(name: string): boolean {
    return this.recordOf(this.stack(name)).mode !== 'open';
  }

  /** What each node of a stack does with a write now (a lease lapsed by its clock reads as open). */
  fenceOf(name: string): FenceMode[] {
    return this.nodesOf(this.stack(name)).map((node) => node.mode);
  }

  /** The world as test/support/invariants.ts checks it. */
  snapshot(): WorldSnapshot {
    const env = fakeEnvironment('test', this.options.env);
    return {
      now: this.now(),
      leaseMs: env.fenceLeaseSeconds * 1000,
      keepStacks: env.keepStacks,
      dns: this.state.dns?.stack,
      stacks: Object.values(this.state.stacks).map((s) => ({
        name: s.description.name,
        deleted: s.description.status === 'deleted',
        nodes: this.nodesOf(s),
        smoke: s.smoke ?? 'passed',
        ...(s.description.workflowId === 'seed' ? {} : { createdBy: s.description.workflowId }),
        everLive: s.everLive ?? false,
        items: Object.fromEntries(Object.values(s.items).map((i) => [i.id, i.rev])),
      })),
      writes: this.state.acks ?? [],
      runs: this.state.runs ?? [],
      flips: this.state.flips ?? [],
    };
  }

  stack(name: string): FakeStack {
    const stack = this.state.stacks[name];
    if (!stack) throw new Error(`fake: no stack ${name}`);
    return stack;
  }

  itemIds(name: string): string[] {
    return Object.keys(this.stack(name).items).sort();
  }

  recordName(env: string): string {
    return fakeEnvironment(env, this.options.env).recordName;
  }

  private outputsFor(name: string): StackOutputs {
    const n = [...name].reduce((sum, c) => (sum * 31 + c.charCodeAt(0)) % 250, 7);
    const target: DnsTarget = this.options.awsShaped
      ? { kind: 'alias', dnsName: `${name}-alb-${n}.us-east-1.elb.amazonaws.com`, hostedZoneId: 'Z35SXDOTRQ7X7K' }
      : { kind: 'a', addresses: [`127.0.${n}.1`] };
    return {
      endpoint: `http://fake/${name}`,
      adminUrl: `fake://${name}`,
      nodes: [`fake://${name}/node-1`, `fake://${name}/node-2`],
      dnsTarget: target,
    };
  }

  /** A target as Route53 answers it: alias names end with a dot. */
  private asRoute53(target: DnsTarget): DnsTarget {
    if (!this.options.awsShaped || target.kind !== 'alias') return target;
    return { ...target, dnsName: target.dnsName.endsWith('.') ? target.dnsName : `${target.dnsName}.` };
  }

  /** A stack's description as the provisioner reports it: on AWS the status follows the raw one, outputs only when ready. */
  private described(stack: FakeStack): StackDescription {
    const { description } = stack;
    if (!this.options.awsShaped || description.status === 'deleted' || description.status === 'creating')
      return description;
    const status = stackStatus(description.rawStatus);
    const { outputs, ...rest } = description;
    return { ...rest, status, ...(servesWithOutputs(description.rawStatus) && outputs ? { outputs } : {}) };
  }

  private stackOfUrl(url: string): FakeStack {
    const name = url.replace(/^(fake|http):\/\/(fake\/)?/, '').split('/')[0]!;
    const stack = this.state.stacks[name];
    if (!stack || stack.description.status === 'deleted')
      throw new CloudError(`fake: ${url} does not answer`, true, 'Unreachable', url);
    return stack;
  }

  // ------------------------------------------------------------ ports

  ports(): Ports {
    return {
      stacks: {
        create: async (request) => {
          this.check('stacks.create', request.name);
          const existing = this.state.stacks[request.name];
          if (existing && existing.description.workflowId !== request.workflowId) {
            throw new CloudError(
              `stack ${request.name} exists for another workflow`,
              false,
              'AlreadyExists',
              request.name,
            );
          }
          if (!existing) {
            this.state.stacks[request.name] = {
              description: {
                name: request.name,
                env: request.env,
                colour: request.colour,
                workflowId: request.workflowId,
                status: 'creating',
                rawStatus: 'CREATE_IN_PROGRESS',
                createdAt: new Date(Date.UTC(2026, 1, 1, 0, this.state.calls.length)).toISOString(),
              },
              items: {},
              seq: 0,
              fence: { ...OPEN },
              draining: false,
              smoke: 'not-run',
              everLive: false,
            };
          }
          this.record(`create ${request.name} ${JSON.stringify(request.parameters)}`);
        },
        waitUntilReady: async (name, onProgress, signal) => {
          const stack = this.stack(name);
          onProgress?.({ rawStatus: 'CREATE_IN_PROGRESS', done: 1, total: 2 });
          if (this.state.failures['stacks.waitUntilReady']?.message === 'hang') {
            while (!signal?.aborted) {
              onProgress?.({ rawStatus: 'CREATE_IN_PROGRESS', done: 1, total: 2 });
              await sleep(50);
            }
            throw new Error('waiting for the stack was cancelled');
          }
          try {
            this.check('stacks.waitUntilReady', name);
          } catch (err) {
            stack.description = { ...stack.description, status: 'failed', rawStatus: 'ROLLBACK_COMPLETE' };
            this.save();
            throw new StackFailedError(name, 'ROLLBACK_COMPLETE', [
              { resource: 'ApiGroup', type: 'AWS::AutoScaling::AutoScalingGroup', reason: (err as Error).message },
            ]);
          }
          stack.description = {
            ...stack.description,
            status: 'ready',
            rawStatus: 'CREATE_COMPLETE',
            outputs: this.outputsFor(name),
          };
          this.changed(`${name} ready`);
          return this.described(stack);
        },
        describe: async (name) => {
          const stack = this.state.stacks[name];
          return stack && this.described(stack);
        },
        list: async (env) =>
          Object.values(this.state.stacks)
            .map((s) => this.described(s))
            .filter((d) => d.env === env && d.status !== 'deleted')
            .sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
        delete: async (name) => {
          this.check('stacks.delete', name);
          if (this.state.dns?.stack === name) this.state.violations.push(`delete of ${name} while DNS points to it`);
          const stack = this.state.stacks[name];
          if (stack) stack.description = { ...stack.description, status: 'deleted', rawStatus: 'DELETE_COMPLETE' };
          this.record(`delete ${name}`);
        },
        waitUntilDeleted: async () => undefined,
      },
      backups: {
        list: async (env) => this.state.backups.map((b) => b.manifest).filter((m) => m.env === env),
        latest: async (env) => {
          this.check('backups.latest', env);
          return this.state.backups.find((b) => b.manifest.env === env)?.manifest;
        },
        get: async (key) => {
          const backup = this.state.backups.find((b) => b.manifest.key === key);
          if (!backup) throw new CloudError(`no backup ${key}`, false, 'NotFound', key);
          return backup.manifest;
        },
        read: (manifest) => {
          const world = this;
          return (async function* () {
            world.check('backups.read', manifest.key);
            const backup = world.state.backups.find((b) => b.manifest.key === manifest.key);
            if (!backup) throw new CloudError(`no backup ${manifest.key}`, false, 'NotFound', manifest.key);
            yield* backup.lines;
          })();
        },
        write: async (meta, lines) => {
          const collected: string[] = [];
          for await (const line of lines) collected.push(line);
          const items = collected.filter((l) => (JSON.parse(l) as ExportLine).kind === 'item').length;
          const key = `backups/${meta.sourceStack}-${this.state.backups.length}.json`;
          const manifest: BackupManifest = {
            key,
            dataKey: `${key}.ndjson.gz`,
            env: meta.env,
            sourceStack: meta.sourceStack,
            createdAt: new Date(Date.UTC(2026, 2, 1, 0, this.state.backups.length)).toISOString(),
            items,
            sha256: 'fake',
            cursor: meta.cursor,
            bytes: collected.join('\n').length,
          };
          this.state.backups.unshift({ manifest, lines: collected });
          this.record(`backup ${key}`);
          return manifest;
        },
        prune: async (env, keep) => {
          const mine = this.state.backups.filter((b) => b.manifest.env === env);
          const doomed = mine.slice(keep).map((b) => b.manifest.key);
          this.state.backups = this.state.backups.filter((b) => !doomed.includes(b.manifest.key));
          this.save();
          return doomed;
        },
      },
      dns: {
        current: async () => this.state.dns,
        switch: async (request) => {
          this.check('dns.switch', request.stack);
          if (!sameRecord(request.expected, this.state.dns)) {
            throw new DnsConflictError(
              request.recordName,
              `expected ${request.expected?.stack ?? 'no record'}, found ${this.state.dns?.stack ?? 'no record'}`,
            );
          }
          const stack = this.state.stacks[request.stack];
          if (!stack || stack.description.status !== 'ready')
            this.state.violations.push(`DNS switched to ${request.stack}, which is not ready`);
          // Clients sent to a fenced or drained stack would have their writes or streams refused.
          if (stack && this.fenceOf(request.stack).some((m) => m !== 'open'))
            this.state.violations.push(`DNS switched to ${request.stack}, which is fenced`);
          if (stack?.draining) this.state.violations.push(`DNS switched to ${request.stack}, which is draining`);
          const from = this.state.dns?.stack;
          this.state.flips ??= [];
          this.state.flips.push({ at: this.now(), to: request.stack, ...(from ? this.fenceAtFlip(from) : {}) });
          this.state.cachedDns = from;
          if (stack) stack.everLive = true;
          this.state.dns = {
            recordName: request.recordName,
            ttl: request.ttl,
            target: this.asRoute53(request.target),
            stack: request.stack,
          };
          this.state.dnsChanges += 1;
          this.record(`dns ${request.stack}`);
          if (stack && this.state.writesAfterSwitch)
            this.write(request.stack, this.state.writesAfterSwitch, 'after-switch');
          return `change-${this.state.dnsChanges}`;
        },
        waitInSync: async (changeId) => {
          this.check('dns.waitInSync', changeId);
        },
        verify: async (_record, target) => {
          this.check('dns.verify', this.state.dns?.stack);
          return this.state.dns !== undefined && sameTarget(this.state.dns.target, target);
        },
      },
    };
  }

  admin(adminUrl: string): StackAdmin {
    const world = this;
    return {
      exportSince(since) {
        return (async function* (): AsyncIterable<ExportLine> {
          world.beforeRequest(adminUrl);
          world.check('admin.export', adminUrl);
          const stack = world.stackOfUrl(adminUrl);
          const from = seqOf(since);
          if (from > stack.seq)
            throw new CloudError(
              `GET ${adminUrl}/admin/export answered 410: cursor-gone: cursor ${from} is beyond the newest change of this store`,
              false,
              'Http410',
              adminUrl,
            );
          const lines = Object.values(stack.items)
            .filter((i) => seqOf(i.cursor) > from)
            .sort((a, b) => seqOf(a.cursor) - seqOf(b.cursor));
          const through = stack.seq;
          world.takeCaughtNumber(stack);
          yield* lines.map(({ copiedRev: _copied, ...line }) => line);
          yield { kind: 'end', cursor: cursorOf(through), items: lines.length };
        })();
      },
      async *revisionsById() {
        world.check('admin.export', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const lines = Object.values(stack.items).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        for (const { id, rev, cursor, copiedRev } of lines)
          yield { kind: 'revision' as const, id, rev, cursor, ...(copiedRev === undefined ? {} : { copiedRev }) };
        yield { kind: 'end' as const, cursor: cursorOf(stack.seq), items: lines.length };
      },
      async item(id) {
        world.beforeRequest(adminUrl);
        world.check('admin.export', adminUrl);
        const line = world.stackOfUrl(adminUrl).items[id];
        return line ? { ...line } : undefined;
      },
      async importLines(lines, _signal, end) {
        world.beforeRequest(adminUrl);
        world.check('admin.import', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        if (world.options.importDelayMs) await sleep(world.options.importDelayMs);
        let applied = 0;
        for (const line of lines) {
          const have = stack.items[line.id];
          if (have && holdsAtLeast(have.rev, line.rev)) continue;
          stack.items[line.id] = { ...line, copiedRev: line.rev };
          stack.seq = Math.max(stack.seq, seqOf(line.cursor));
          applied += 1;
        }
        // The export's end line: numbers the source took up to its cursor stay taken here (server/http/admin.ts).
        if (end) stack.seq = Math.max(stack.seq, seqOf(end.cursor));
        const name = stack.description.name;
        (world.state.imported[name] ??= []).push(...lines.map((l) => l.id));
        world.changed(`import ${lines.length} lines into ${name}`);
        return { applied, skipped: lines.length - applied, cursor: cursorOf(stack.seq) };
      },
      // The lease comes as `{ leaseSeconds }`; a caller that names none gets the admin API's default.
      async fenceState() {
        world.beforeRequest(adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        return world.fenceResult(stack, world.answering(stack));
      },
      // The fence changes as the stores change it: one compare-and-set on the epoch, answered by
      // the nodes in turn, each measuring the lease from when it first saw it.
      async fence(request) {
        world.beforeRequest(adminUrl);
        world.check('admin.fence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const wasOpen = world.fenceOf(stack.description.name).every((mode) => mode === 'open');
        const result = world.changeFence(stack, world.answering(stack), {
          ...request,
          kind: 'fence',
          leaseMs: request.leaseSeconds * 1000,
        });
        if (wasOpen) world.fenceLanded(stack);
        const partial = world.failsAt('admin.fence.partial', adminUrl);
        world.record(`fence ${stack.description.name}`);
        if (partial)
          throw new CloudError(
            `${adminUrl}: the fence was taken but its answer was lost`,
            true,
            'Unreachable',
            adminUrl,
          );
        return result;
      },
      async forward(request) {
        world.beforeRequest(adminUrl);
        world.check('admin.forward', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const target = world.stackOfUrl(request.to).description.name;
        const result = world.changeFence(stack, world.answering(stack), {
          ...request,
          kind: 'forward',
          cursor: seqOf(request.cursor),
        });
        // Clients that reach the forwarding stack are served by the target from now on.
        if (stack.everLive) world.stack(target).everLive = true;
        world.record(`forward ${stack.description.name} to ${target}`);
        return result;
      },
      async unfence(request) {
        world.beforeRequest(adminUrl);
        world.check('admin.unfence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const result = world.changeFence(stack, world.answering(stack), { ...request, kind: 'unfence' });
        world.record(`unfence ${stack.description.name}`);
        return result;
      },
      async drain(node) {
        world.beforeRequest(node);
        world.check('admin.drain', node);
        const stack = world.stackOfUrl(node);
        stack.draining = true;
        world.record(`drain ${node}`);
        const repoint = world.state.repointDnsOnDrain;
        if (repoint) {
          const target = world.asRoute53(world.stack(repoint).description.outputs!.dnsTarget);
          world.state.dns = { ...world.state.dns!, target, stack: repoint };
          world.state.repointDnsOnDrain = undefined;
          world.record(`dns ${repoint} (by someone else)`);
        }
      },
      async undrain(node) {
        world.beforeRequest(node);
        world.check('admin.undrain', node);
        const stack = world.stackOfUrl(node);
        stack.draining = false;
        world.record(`undrain ${node}`);
      },
      // The write the last fence caught is undone now, before the copy reads its cursor.
      async settled(node) {
        world.beforeRequest(node);
        world.check('admin.settled', node);
        const stack = world.stackOfUrl(node);
        if (stack.caught === 'undone') world.takeCaughtNumber(stack);
        world.record(`settled ${node}`);
        return { node, unresolved: 0 };
      },
      async stats(node): Promise<NodeStats> {
        world.beforeRequest(node);
        world.check('admin.stats', node);
        const stack = world.stackOfUrl(node);
        world.state.statsCalls += 1;
        const busy = world.state.statsCalls <= world.state.busyUntilStatsCall;
        world.save();
        const index = Math.max(0, Number(/node-(\d+)$/.exec(node)?.[1] ?? 1) - 1);
        const record = world.recordOf(stack);
        const { mode, leaseLeftMs } = world.nodeView(stack, index);
        const stats = {
          node,
          fenced: mode !== 'open',
          draining: stack.draining,
          openStreams: busy ? 3 : 0,
          requestRate: busy ? 12 : 0,
          items: Object.keys(stack.items).length,
          cursor: cursorOf(stack.seq),
          uptimeSeconds: 100,
          version: 'fake',
          eventLoopLagMs: 0,
          // Each node of a forwarding stack held 2 writes (one ran out) and forwarded 5 requests.
          flip:
            mode === 'forwarding'
              ? { requestsHeld: 2, holdsTimedOut: 1, requestsForwarded: 5 }
              : { requestsHeld: 0, holdsTimedOut: 0, requestsForwarded: 0 },
          fence: {
            mode,
            epoch: record.epoch,
            ...(mode === 'fenced' ? { leaseLeftMs } : {}),
            ...(mode === 'forwarding' ? { forwardTo: record.forwardTo } : {}),
          },
        };
        return stats as NodeStats;
      },
      async healthy(baseUrl) {
        try {
          world.check('probe', baseUrl);
          return true;
        } catch {
          return false;
        }
      },
    };
  }

  smokeRunner(): SmokeRunner {
    return async ({ stack }) => {
      const checks: SmokeCheck[] = ['health', 'auth-refusal', 'round-trip', 'sharing', 'restored-sample', 'stream'].map(
        (name) => ({ name, ok: true, durationMs: 5 }),
      );
      try {
        this.check('smoke', stack.adminUrl);
      } catch (err) {
        checks[5] = { name: 'stream', ok: false, durationMs: 5, detail: (err as Error).message };
      }
      const tested = this.stackOfUrl(stack.adminUrl);
      tested.smoke = checks.every((c) => c.ok) ? 'passed' : 'failed';
      this.record(`smoke ${stack.adminUrl}`);
      return checks;
    };
  }

  deps(reportsDir: string, env: Partial<Environment> = {}): ActivityDeps {
    return {
      loadEnvironment: async (name) => fakeEnvironment(name, { ...this.options.env, ...env }),
      ports: () => this.ports(),
      admin: (_env, adminUrl) => this.admin(adminUrl),
      runSmokeChecks: this.smokeRunner(),
      reportsDir,
      importBatchLines: 10,
      pollMs: 10,
    };
  }
}
