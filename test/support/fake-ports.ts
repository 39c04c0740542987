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
  BackupManifest, Colour, DnsRecordState, DnsTarget, Ports, StackDescription, StackOutputs,
} from '../../src/cloud/ports.ts';
import type { Environment } from '../../src/config/environment.ts';
import type { ExportItemLine, ExportLine, FenceResult, NodeStats } from '../../src/navcloud/protocol.ts';
import type { StackAdmin } from '../../src/navcloud/admin-client.ts';
import type { SmokeCheck } from '../../src/switch/contract.ts';
import { stackName } from '../../src/switch/stack-name.ts';
import {
  compareRevisions, effectiveMode, type AcknowledgedWrite, type DnsFlip, type FenceMode, type NodeFence,
  type RunSnapshot, type WorldSnapshot,
} from './invariants.ts';
import type { ActivityDeps, SmokeRunner } from '../../activities/index.ts';
import { decodeCursor, encodeCursor } from '../../src/navcloud/cursor.ts';

export const FAILURE_POINTS = [
  'stacks.create', 'stacks.waitUntilReady', 'stacks.delete', 'backups.latest', 'backups.read',
  'admin.import', 'admin.export', 'admin.fence', 'admin.unfence', 'admin.drain', 'admin.undrain', 'admin.stats',
  'dns.switch', 'dns.waitInSync', 'dns.verify', 'smoke', 'probe',
  // Only the first node takes the fence, then the call fails as if the others never answered.
  'admin.fence.partial', 'admin.forward',
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
/** The lease a fence takes when the caller names none (the admin API's default). */
const DEFAULT_LEASE_SECONDS = 60;

interface FakeStack {
  description: StackDescription;
  /** `copiedRev`: the revision last imported, kept by client writes (the data check reads it). */
  items: Record<string, ExportItemLine & { copiedRev?: string }>;
  seq: number;
  /** Set by a fence or forward on any node, cleared by unfence; `fenceOf` says what holds now (leases lapse). */
  fenced: boolean;
  /** The fence as each node sees it. */
  nodeFences?: NodeFence[];
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
}

/** The service's own cursors: the data verification after the flip decodes them. */
export const cursorOf = (seq: number) => encodeCursor(seq);
const seqOf = (cursor: string | undefined) => (cursor ? decodeCursor(cursor) ?? 0 : 0);
const openNodes = (): NodeFence[] => Array.from({ length: NODES }, () => ({ mode: 'open' }));

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
  if (a.kind === 'alias' && b.kind === 'alias') return sameName(a.dnsName, b.dnsName) && a.hostedZoneId === b.hostedZoneId;
  if (a.kind === 'a' && b.kind === 'a') return [...a.addresses].sort().join() === [...b.addresses].sort().join();
  return false;
}
function sameRecord(a: DnsRecordState | undefined, b: DnsRecordState | undefined): boolean {
  if (!a || !b) return a === b;
  return a.stack === b.stack && a.ttl === b.ttl && sameTarget(a.target, b.target);
}

/** Admin calls of the fence contract the fake answers beyond today's StackAdmin. */
interface FakeAdmin {
  forward(to: string, signal?: AbortSignal): Promise<FenceResult>;
}

export function fakeEnvironment(name: string, overrides: Partial<Environment> = {}): Environment {
  return {
    name, profile: 'local', region: 'us-east-1', hostedZoneId: 'Z1', recordName: `sync.${name}.navcloud.test.`,
    ttl: 30, template: 'app-stack.yaml', parameters: {},
    backups: { bucket: 'navcloud-backups', prefix: 'backups/', keep: 3 },
    smoke: { heartbeatMs: 100, changeArrivalMs: 1000, sampleItems: 5, maxLatencyMs: 1000 },
    approval: 'auto', approvalTimeoutSeconds: 600, verifySeconds: 30, verifyItemsPerSecond: 40_000, drainSeconds: 120, keepStacks: 1,
    jwtSecret: 'test-secret', catchUpFenceBelow: 10, fenceLeaseSeconds: 60,
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
    this.state = options.stateFile && existsSync(options.stateFile)
      ? (JSON.parse(readFileSync(options.stateFile, 'utf8')) as FakeState)
      : {
          stacks: {}, dnsChanges: 0, backups: [], failures: {}, calls: [], imported: {}, violations: [],
          busyUntilStatsCall: 0, statsCalls: 0, refusedWrites: 0, writesAfterSwitch: 0,
          acks: [], flips: [], clientWrites: 0, runs: [],
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
    throw new CloudError(failure.message ?? `injected failure at ${point}`, failure.retryable ?? false, 'Injected', subject);
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

  private fenceResult(stack: FakeStack): FenceResult & { mode: FenceMode; leaseExpiresAt?: string; forwardTo?: string } {
    const [first] = this.nodeFences(stack);
    const mode = effectiveMode(first!, this.now());
    return {
      fenced: mode !== 'open', mode, cursor: cursorOf(stack.seq),
      ...(mode === 'fenced' ? { leaseExpiresAt: new Date(first!.leaseExpiresAt!).toISOString() } : {}),
      ...(mode === 'forwarding' ? { forwardTo: this.stack(first!.forwardTo!).description.outputs?.endpoint } : {}),
    };
  }

  private fenceAtFlip(from: string): Pick<DnsFlip, 'from' | 'fromMode' | 'fromLeaseLeftMs'> {
    const stack = this.state.stacks[from];
    if (!stack) return { from };
    const nodes = this.nodeFences(stack);
    const modes = nodes.map((n) => effectiveMode(n, this.now()));
    // The laxest node speaks for the stack: one open node is an open stack.
    const fromMode: FenceMode = modes.includes('open') ? 'open' : modes.includes('fenced') ? 'fenced' : 'forwarding';
    const leaseLeft = Math.min(...nodes.filter((n, i) => modes[i] === 'fenced').map((n) => n.leaseExpiresAt! - this.now()));
    return { from, fromMode, ...(fromMode === 'fenced' ? { fromLeaseLeftMs: leaseLeft } : {}) };
  }

  // ------------------------------------------------------------ seeding and client traffic

  /** A ready stack, optionally live behind DNS, with `items` items. */
  addStack(name: string, colour: Colour, options: { items?: number; live?: boolean; env?: string; createdAt?: string; rawStatus?: string } = {}): StackDescription {
    const env = options.env ?? 'test';
    const description: StackDescription = {
      name, env, colour, workflowId: 'seed', status: 'ready', rawStatus: options.rawStatus ?? 'CREATE_COMPLETE',
      createdAt: options.createdAt ?? new Date(Date.UTC(2026, 0, 1)).toISOString(), outputs: this.outputsFor(name),
    };
    this.state.stacks[name] = { description, items: {}, seq: 0, fenced: false, nodeFences: openNodes(), draining: false, smoke: 'passed', everLive: options.live };
    this.write(name, options.items ?? 0, 'seed');
    if (options.live) this.state.dns = { recordName: this.recordName(env), ttl: 30, target: this.asRoute53(description.outputs!.dnsTarget), stack: name };
    this.save();
    return description;
  }

  /** A backup of a stack's current items. */
  addBackup(stack: string, key = `backups/${stack}-${Object.keys(this.state.backups).length}.json`): BackupManifest {
    const source = this.stack(stack);
    const items = Object.values(source.items).sort((a, b) => seqOf(a.cursor) - seqOf(b.cursor));
    const lines = [...items.map((i) => JSON.stringify(i)), JSON.stringify({ kind: 'end', cursor: cursorOf(source.seq), items: items.length })];
    const manifest: BackupManifest = {
      key, dataKey: `${key}.ndjson.gz`, env: source.description.env, sourceStack: stack,
      createdAt: new Date(Date.UTC(2026, 0, 2, 0, this.state.backups.length)).toISOString(),
      items: items.length, sha256: 'fake', cursor: cursorOf(source.seq), bytes: lines.join('\n').length,
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
        kind: 'item', id, owner: 'u1', type: 'trip', rev: `${target.seq}-a`, deleted: false, data: { n: i },
        shares: [], cursor: cursorOf(target.seq), updatedAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
      };
    }
    this.save();
    return count;
  }

  /**
   * One round of client traffic: a client that resolved DNS just now and one that still has the
   * previous answer cached each update one of a few shared items on the stack they reach. What
   * a stack does with it follows its node's fence: open applies it (acknowledged), forwarding
   * passes it on, fenced holds it until the client gives up (not acknowledged), gone refuses it.
   */
  clientsWrite(): void {
    const destinations = [this.state.dns?.stack, this.state.cachedDns].filter((s): s is string => s !== undefined);
    for (const stack of destinations) {
      const n = (this.state.clientWrites = (this.state.clientWrites ?? 0) + 1);
      const applied = this.applyClientWrite(stack, `shared-${n % 4}`, n % NODES, 3);
      if (applied) this.changed(`client write shared-${n % 4} acknowledged by ${applied}`);
      else this.state.refusedWrites += 1;
    }
  }

  private applyClientWrite(name: string, id: string, node: number, hops: number): string | undefined {
    const stack = this.state.stacks[name];
    if (!stack || stack.description.status === 'deleted' || hops < 0) return undefined;
    const fence = this.nodeFences(stack)[node]!;
    const mode = effectiveMode(fence, this.now());
    if (mode === 'forwarding') return fence.forwardTo ? this.applyClientWrite(fence.forwardTo, id, node, hops - 1) : undefined;
    if (mode === 'fenced') return undefined;
    const have = stack.items[id];
    const generation = (have ? Number(have.rev.split('-')[0]) || 0 : 0) + 1;
    // A nonce that sorts by arrival: of two writes of one generation the later one wins, as a random nonce might.
    const rev = `${generation}-${String(this.state.clientWrites).padStart(6, '0')}`;
    stack.seq += 1;
    stack.items[id] = {
      kind: 'item', id, owner: 'u1', type: 'trip', rev, deleted: false, data: { by: name },
      shares: [], cursor: cursorOf(stack.seq), updatedAt: new Date(this.now()).toISOString(),
      ...(have?.copiedRev === undefined ? {} : { copiedRev: have.copiedRev }),
    };
    (this.state.acks ??= []).push({ id, rev, stack: name, at: this.now() });
    return name;
  }

  private nodeFences(stack: FakeStack): NodeFence[] {
    return (stack.nodeFences ??= openNodes());
  }

  /** What each node of a stack does with a write now (a lapsed lease reads as open). */
  fenceOf(name: string): FenceMode[] {
    return this.nodeFences(this.stack(name)).map((node) => effectiveMode(node, this.now()));
  }

  private setFences(stack: FakeStack, fences: NodeFence[]): void {
    stack.nodeFences = fences;
    stack.fenced = fences.some((f) => f.mode !== 'open');
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
        nodes: this.nodeFences(s),
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
      endpoint: `http://fake/${name}`, adminUrl: `fake://${name}`,
      nodes: [`fake://${name}/node-1`, `fake://${name}/node-2`], dnsTarget: target,
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
    if (!this.options.awsShaped || description.status === 'deleted' || description.status === 'creating') return description;
    const status = stackStatus(description.rawStatus);
    const { outputs, ...rest } = description;
    return { ...rest, status, ...(servesWithOutputs(description.rawStatus) && outputs ? { outputs } : {}) };
  }

  private stackOfUrl(url: string): FakeStack {
    const name = url.replace(/^(fake|http):\/\/(fake\/)?/, '').split('/')[0]!;
    const stack = this.state.stacks[name];
    if (!stack || stack.description.status === 'deleted') throw new CloudError(`fake: ${url} does not answer`, true, 'Unreachable', url);
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
            throw new CloudError(`stack ${request.name} exists for another workflow`, false, 'AlreadyExists', request.name);
          }
          if (!existing) {
            this.state.stacks[request.name] = {
              description: {
                name: request.name, env: request.env, colour: request.colour, workflowId: request.workflowId,
                status: 'creating', rawStatus: 'CREATE_IN_PROGRESS', createdAt: new Date(Date.UTC(2026, 1, 1, 0, this.state.calls.length)).toISOString(),
              },
              items: {}, seq: 0, fenced: false, nodeFences: openNodes(), draining: false, smoke: 'not-run', everLive: false,
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
            throw new StackFailedError(name, 'ROLLBACK_COMPLETE', [{ resource: 'ApiGroup', type: 'AWS::AutoScaling::AutoScalingGroup', reason: (err as Error).message }]);
          }
          stack.description = { ...stack.description, status: 'ready', rawStatus: 'CREATE_COMPLETE', outputs: this.outputsFor(name) };
          this.changed(`${name} ready`);
          return this.described(stack);
        },
        describe: async (name) => {
          const stack = this.state.stacks[name];
          return stack && this.described(stack);
        },
        list: async (env) => Object.values(this.state.stacks).map((s) => this.described(s))
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
            key, dataKey: `${key}.ndjson.gz`, env: meta.env, sourceStack: meta.sourceStack,
            createdAt: new Date(Date.UTC(2026, 2, 1, 0, this.state.backups.length)).toISOString(), items, sha256: 'fake',
            cursor: meta.cursor, bytes: collected.join('\n').length,
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
            throw new DnsConflictError(request.recordName, `expected ${request.expected?.stack ?? 'no record'}, found ${this.state.dns?.stack ?? 'no record'}`);
          }
          const stack = this.state.stacks[request.stack];
          if (!stack || stack.description.status !== 'ready') this.state.violations.push(`DNS switched to ${request.stack}, which is not ready`);
          // Clients sent to a fenced or drained stack would have their writes or streams refused.
          if (stack && this.fenceOf(request.stack).some((m) => m !== 'open')) this.state.violations.push(`DNS switched to ${request.stack}, which is fenced`);
          if (stack?.draining) this.state.violations.push(`DNS switched to ${request.stack}, which is draining`);
          const from = this.state.dns?.stack;
          this.state.flips ??= [];
          this.state.flips.push({ at: this.now(), to: request.stack, ...(from ? this.fenceAtFlip(from) : {}) });
          this.state.cachedDns = from;
          if (stack) stack.everLive = true;
          this.state.dns = { recordName: request.recordName, ttl: request.ttl, target: this.asRoute53(request.target), stack: request.stack };
          this.state.dnsChanges += 1;
          this.record(`dns ${request.stack}`);
          if (stack && this.state.writesAfterSwitch) this.write(request.stack, this.state.writesAfterSwitch, 'after-switch');
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

  admin(adminUrl: string): StackAdmin & Pick<FakeAdmin, 'forward'> {
    const world = this;
    return {
      exportSince(since) {
        return (async function* (): AsyncIterable<ExportLine> {
          world.check('admin.export', adminUrl);
          const stack = world.stackOfUrl(adminUrl);
          const from = seqOf(since);
          const lines = Object.values(stack.items).filter((i) => seqOf(i.cursor) > from)
            .sort((a, b) => seqOf(a.cursor) - seqOf(b.cursor));
          yield* lines.map(({ copiedRev: _copied, ...line }) => line);
          yield { kind: 'end', cursor: cursorOf(stack.seq), items: lines.length };
        })();
      },
      async *revisionsById() {
        world.check('admin.export', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const lines = Object.values(stack.items).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        for (const { id, rev, cursor, copiedRev } of lines) yield { kind: 'revision' as const, id, rev, cursor, ...(copiedRev === undefined ? {} : { copiedRev }) };
        yield { kind: 'end' as const, cursor: cursorOf(stack.seq), items: lines.length };
      },
      async item(id) {
        world.check('admin.export', adminUrl);
        const line = world.stackOfUrl(adminUrl).items[id];
        return line ? { ...line } : undefined;
      },
      async importLines(lines) {
        world.check('admin.import', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        if (world.options.importDelayMs) await sleep(world.options.importDelayMs);
        let applied = 0;
        for (const line of lines) {
          const have = stack.items[line.id];
          if (have && compareRevisions(have.rev, line.rev) >= 0) continue;
          stack.items[line.id] = { ...line, copiedRev: line.rev };
          stack.seq = Math.max(stack.seq, seqOf(line.cursor));
          applied += 1;
        }
        const name = stack.description.name;
        (world.state.imported[name] ??= []).push(...lines.map((l) => l.id));
        world.changed(`import ${lines.length} lines into ${name}`);
        return { applied, skipped: lines.length - applied, cursor: cursorOf(stack.seq) };
      },
      // The lease comes as `{ leaseSeconds }`; a caller that names none gets the admin API's default.
      async fence(options?: { leaseSeconds: number } | AbortSignal) {
        world.check('admin.fence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const leaseSeconds = options && 'leaseSeconds' in options ? options.leaseSeconds : DEFAULT_LEASE_SECONDS;
        const leaseExpiresAt = world.now() + leaseSeconds * 1000;
        const partial = world.failsAt('admin.fence.partial', adminUrl);
        const fences = world.nodeFences(stack).map((node, i): NodeFence => {
          if (partial && i > 0) return node;
          return effectiveMode(node, world.now()) === 'forwarding' ? node : { mode: 'fenced', leaseExpiresAt };
        });
        world.setFences(stack, fences);
        world.record(`fence ${stack.description.name}${partial ? ' (node 1 only)' : ''}`);
        if (partial) throw new CloudError(`${adminUrl}: node 2 did not answer the fence`, true, 'Unreachable', adminUrl);
        return world.fenceResult(stack);
      },
      async forward(to: string, _signal?: AbortSignal) {
        world.check('admin.forward', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        const target = world.stackOfUrl(to).description.name;
        const modes = world.nodeFences(stack).map((node) => ({ node, mode: effectiveMode(node, world.now()) }));
        const ready = modes.every(({ node, mode }) => mode === 'fenced' || (mode === 'forwarding' && node.forwardTo === target));
        if (!ready) throw new CloudError(`${adminUrl}: the fence lapsed (or was never taken) before forward`, false, 'fence-lapsed', adminUrl);
        world.setFences(stack, modes.map(() => ({ mode: 'forwarding', forwardTo: target })));
        // Clients that reach the forwarding stack are served by the target from now on.
        if (stack.everLive) world.stack(target).everLive = true;
        world.record(`forward ${stack.description.name} to ${target}`);
        return world.fenceResult(stack);
      },
      async unfence() {
        world.check('admin.unfence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        world.setFences(stack, openNodes());
        world.record(`unfence ${stack.description.name}`);
        return world.fenceResult(stack);
      },
      async drain(node) {
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
        world.check('admin.undrain', node);
        const stack = world.stackOfUrl(node);
        stack.draining = false;
        world.record(`undrain ${node}`);
      },
      async stats(node): Promise<NodeStats> {
        world.check('admin.stats', node);
        const stack = world.stackOfUrl(node);
        world.state.statsCalls += 1;
        const busy = world.state.statsCalls <= world.state.busyUntilStatsCall;
        world.save();
        const index = Math.max(0, Number(/node-(\d+)$/.exec(node)?.[1] ?? 1) - 1);
        const fence = world.nodeFences(stack)[index] ?? { mode: 'open' };
        const mode = effectiveMode(fence, world.now());
        const stats = {
          node, fenced: mode !== 'open', draining: stack.draining, openStreams: busy ? 3 : 0, requestRate: busy ? 12 : 0,
          items: Object.keys(stack.items).length, cursor: cursorOf(stack.seq), uptimeSeconds: 100,
          version: 'fake', eventLoopLagMs: 0,
          // Each node of a forwarding stack held 2 writes (one ran out) and forwarded 5 requests.
          flip: mode === 'forwarding' ? { requestsHeld: 2, holdsTimedOut: 1, requestsForwarded: 5 } : { requestsHeld: 0, holdsTimedOut: 0, requestsForwarded: 0 },
          fence: { mode, ...(mode === 'fenced' ? { leaseExpiresAt: new Date(fence.leaseExpiresAt!).toISOString() } : {}), ...(mode === 'forwarding' ? { forwardTo: world.stack(fence.forwardTo!).description.outputs?.endpoint } : {}) },
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
      const checks: SmokeCheck[] = ['health', 'auth-refusal', 'round-trip', 'sharing', 'restored-sample', 'stream']
        .map((name) => ({ name, ok: true, durationMs: 5 }));
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
