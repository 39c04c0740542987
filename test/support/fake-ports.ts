/**
 * A fake world for workflow tests: stacks, backups, DNS and every stack's admin API, held in one
 * JSON state that can live in a file so it survives a killed worker process. Operations can be
 * told to fail, and the fake records what it was asked to do and any broken invariant.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudError, DnsConflictError, StackFailedError } from '../../src/cloud/errors.ts';
import type {
  BackupManifest, Colour, DnsRecordState, DnsTarget, Ports, StackDescription, StackOutputs,
} from '../../src/cloud/ports.ts';
import type { Environment } from '../../src/config/environment.ts';
import type { ExportItemLine, ExportLine, NodeStats } from '../../src/navcloud/protocol.ts';
import type { StackAdmin } from '../../src/navcloud/admin-client.ts';
import type { SmokeCheck } from '../../src/switch/contract.ts';
import type { ActivityDeps, SmokeRunner } from '../../activities/index.ts';

export const FAILURE_POINTS = [
  'stacks.create', 'stacks.waitUntilReady', 'stacks.delete', 'backups.latest', 'backups.read',
  'admin.import', 'admin.export', 'admin.fence', 'admin.forward', 'admin.unfence', 'admin.drain', 'admin.undrain', 'admin.stats',
  'dns.switch', 'dns.waitInSync', 'dns.verify', 'smoke', 'probe',
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

interface FakeStack {
  description: StackDescription;
  items: Record<string, ExportItemLine>;
  seq: number;
  fenced: boolean;
  draining: boolean;
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
}

export interface FakeWorldOptions {
  /** JSON file holding the state; read at start, written after every change. */
  stateFile?: string;
  importDelayMs?: number;
  env?: Partial<Environment>;
}

export const cursorOf = (seq: number) => `c${seq}`;
const seqOf = (cursor: string | undefined) => (cursor ? Number(cursor.slice(1)) || 0 : 0);
const revNumber = (rev: string) => Number(rev.split('-')[0]) || 0;

export function fakeEnvironment(name: string, overrides: Partial<Environment> = {}): Environment {
  return {
    name, profile: 'local', region: 'us-east-1', hostedZoneId: 'Z1', recordName: `sync.${name}.navcloud.test.`,
    ttl: 30, template: 'app-stack.yaml', parameters: {},
    backups: { bucket: 'navcloud-backups', prefix: 'backups/', keep: 3 },
    smoke: { heartbeatMs: 100, changeArrivalMs: 1000, sampleItems: 5, maxLatencyMs: 1000 },
    approval: 'auto', approvalTimeoutSeconds: 600, verifySeconds: 30, drainSeconds: 120, keepStacks: 1,
    jwtSecret: 'test-secret', catchUpFenceBelow: 10,
    ...overrides,
  };
}

/** The name of the live stack `seedWorld` creates. */
export const seedStackName = (env: string) => `navcloud-${env}-blue-seed0001`;

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
        };
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
    this.save();
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

  // ------------------------------------------------------------ seeding and client traffic

  /** A ready stack, optionally live behind DNS, with `items` items. */
  addStack(name: string, colour: Colour, options: { items?: number; live?: boolean; env?: string; createdAt?: string } = {}): StackDescription {
    const env = options.env ?? 'test';
    const description: StackDescription = {
      name, env, colour, workflowId: 'seed', status: 'ready', rawStatus: 'CREATE_COMPLETE',
      createdAt: options.createdAt ?? new Date(Date.UTC(2026, 0, 1)).toISOString(), outputs: this.outputsFor(name),
    };
    this.state.stacks[name] = { description, items: {}, seq: 0, fenced: false, draining: false };
    this.write(name, options.items ?? 0, 'seed');
    if (options.live) this.state.dns = { recordName: this.recordName(env), ttl: 30, target: description.outputs!.dnsTarget, stack: name };
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
    if (target.fenced) {
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
    const target: DnsTarget = { kind: 'a', addresses: [`127.0.${n}.1`] };
    return {
      endpoint: `http://fake/${name}`, adminUrl: `fake://${name}`,
      nodes: [`fake://${name}/node-1`, `fake://${name}/node-2`], dnsTarget: target,
    };
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
              items: {}, seq: 0, fenced: false, draining: false,
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
          this.save();
          return stack.description;
        },
        describe: async (name) => this.state.stacks[name]?.description,
        list: async (env) => Object.values(this.state.stacks).map((s) => s.description)
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
          if (JSON.stringify(request.expected) !== JSON.stringify(this.state.dns)) {
            throw new DnsConflictError(request.recordName, `expected ${request.expected?.stack ?? 'no record'}, found ${this.state.dns?.stack ?? 'no record'}`);
          }
          const stack = this.state.stacks[request.stack];
          if (!stack || stack.description.status !== 'ready') this.state.violations.push(`DNS switched to ${request.stack}, which is not ready`);
          // Clients sent to a fenced or drained stack would have their writes or streams refused.
          if (stack?.fenced) this.state.violations.push(`DNS switched to ${request.stack}, which is fenced`);
          if (stack?.draining) this.state.violations.push(`DNS switched to ${request.stack}, which is draining`);
          this.state.dns = { recordName: request.recordName, ttl: request.ttl, target: request.target, stack: request.stack };
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
          return JSON.stringify(this.state.dns?.target) === JSON.stringify(target);
        },
      },
    };
  }

  admin(adminUrl: string): StackAdmin {
    const world = this;
    return {
      exportSince(since) {
        return (async function* (): AsyncIterable<ExportLine> {
          world.check('admin.export', adminUrl);
          const stack = world.stackOfUrl(adminUrl);
          const from = seqOf(since);
          const lines = Object.values(stack.items).filter((i) => seqOf(i.cursor) > from)
            .sort((a, b) => seqOf(a.cursor) - seqOf(b.cursor));
          yield* lines.map((l) => ({ ...l }));
          yield { kind: 'end', cursor: cursorOf(stack.seq), items: lines.length };
        })();
      },
      async importLines(lines) {
        world.check('admin.import', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        if (world.options.importDelayMs) await sleep(world.options.importDelayMs);
        let applied = 0;
        for (const line of lines) {
          const have = stack.items[line.id];
          if (have && revNumber(have.rev) >= revNumber(line.rev)) continue;
          stack.items[line.id] = line;
          stack.seq = Math.max(stack.seq, seqOf(line.cursor));
          applied += 1;
        }
        const name = stack.description.name;
        (world.state.imported[name] ??= []).push(...lines.map((l) => l.id));
        world.save();
        return { applied, skipped: lines.length - applied, cursor: cursorOf(stack.seq) };
      },
      async fence() {
        world.check('admin.fence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        stack.fenced = true;
        world.record(`fence ${stack.description.name}`);
        return { fenced: true, mode: 'fenced', cursor: cursorOf(stack.seq) };
      },
      async forward(to) {
        world.check('admin.forward', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        stack.fenced = true;
        world.record(`forward ${stack.description.name}`);
        return { fenced: true, mode: 'forwarding', forwardTo: to, cursor: cursorOf(stack.seq) };
      },
      async unfence() {
        world.check('admin.unfence', adminUrl);
        const stack = world.stackOfUrl(adminUrl);
        stack.fenced = false;
        world.record(`unfence ${stack.description.name}`);
        return { fenced: false, mode: 'open', cursor: cursorOf(stack.seq) };
      },
      async drain(node) {
        world.check('admin.drain', node);
        const stack = world.stackOfUrl(node);
        stack.draining = true;
        world.record(`drain ${node}`);
        const repoint = world.state.repointDnsOnDrain;
        if (repoint) {
          const target = world.stack(repoint).description.outputs!.dnsTarget;
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
        return {
          node, fenced: stack.fenced, fence: { mode: stack.fenced ? 'fenced' : 'open' }, draining: stack.draining, openStreams: busy ? 3 : 0, requestRate: busy ? 12 : 0,
          items: Object.keys(stack.items).length, cursor: cursorOf(stack.seq), uptimeSeconds: 100,
        };
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
