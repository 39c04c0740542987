/**
 * The fault explorer's engine: runs `stackSwitch` and `rollback` on a time-skipping Temporal server
 * over the fake world, injects faults at chosen activity calls, and checks the invariants
 * (test/support/invariants.ts) after every step of the world and at the end of every schedule.
 *
 * A schedule is a base run (a scenario of the world and the workflow to run) plus faults, each at
 * the n-th activity call of the run under test (first attempts only, counted from 0) and of one kind:
 *   fail-before  the call fails before it does anything (a retryable error)
 *   fail-after   the call does its work, then its answer is lost (a retryable error)
 *   hang         the call never answers; the server times it out and retries
 *   kill         the call does its work, then the worker dies: it is shut down and a new one starts
 *   terminate    the call does its work and the run is terminated meanwhile (nothing of it runs again)
 * and, at calls that change a stack (ADMIN_CALLS), faults of the call's admin requests:
 *   pause        the worker freezes for longer than the fence lease right after the call's first admin
 *                request, then thaws and sends the rest; the server timed the attempt out meanwhile
 *                and retries it
 *   late         the call's first request that changes a stack is held in the network: the attempt
 *                times out, is retried, and the held request arrives after the retry
 *   stale        the call's second request that changes a stack is held in the network: the attempt
 *                times out, is retried, and the held request arrives once the run under test has
 *                ended (a call that sends one only has it answered, and a copy arrives at the end)
 * Written `base@call:kind+call:kind`, e.g. `switch@7:hang+12:kill`.
 *
 * The world is rough (test/support/fake-ports.ts): clients write before every admin request,
 * exports answer 410 past a store's newest change, and scenarios give nodes clocks of their own
 * (skewed, stepping), writes caught by a fence that leave gaps in the numbering, and a stack that
 * stops answering admin requests until the retries run out.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import type { Environment } from '../../src/config/environment.ts';
import type { SwitchInput } from '../../src/switch/contract.ts';
import { checkEnd, checkStep, type Violation } from '../support/invariants.ts';
import { createActivities } from '../../activities/index.ts';
import { rollback, stackSwitch } from '../../workflows/index.ts';
import { FakeWorld, seedWorld, type Failure, type FailurePoint } from '../support/fake-ports.ts';
import { releaseTimeHeldByClosedRuns, timeSkippingEnvironment, workflowBundle } from '../workflows/harness.ts';
import { tempDir } from '../support/temp-dir.ts';

export const FAULT_KINDS = [
  'fail-before',
  'fail-after',
  'hang',
  'kill',
  'terminate',
  'pause',
  'late',
  'stale',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Faults of a call's admin requests rather than of the call itself. */
export const REQUEST_KINDS: readonly FaultKind[] = ['pause', 'late', 'stale'];
/** Activities whose admin requests change a stack's fence or data: where REQUEST_KINDS are explored. */
export const ADMIN_CALLS = new Set(['takeFence', 'copyUnderFence', 'commitForward', 'handOverWriter', 'releaseFence']);
/** Admin requests that change a stack (a held one of them arrives late). */
const CHANGING_REQUESTS = new Set(['fence', 'forward', 'unfence', 'importLines', 'drain', 'undrain']);

export interface Fault {
  call: number;
  kind: FaultKind;
}

/** A scenario of the world and the run under test. */
export interface Base {
  name: string;
  /** The run under test; `rollback` runs after a fault-free switch. */
  flow: 'switch' | 'rollback';
  env?: Partial<Environment>;
  input?: Partial<SwitchInput>;
  awsShaped?: boolean;
  /** Failures of the world's own operations (DNS refused, a partial fence...). */
  failures?: Partial<Record<FailurePoint, Failure>>;
  /**
   * Faults start at the first call of this activity: the calls before it are those of a base
   * explored already (a failing verification runs like a good switch until it looks).
   */
  faultsFrom?: string;
  /** Shapes the world after seeding (a live stack's status...). */
  setup?: (world: FakeWorld, env: string) => Promise<void> | void;
  /** `rollback` only: no switch runs first (the setup made the world to roll back in). */
  alone?: boolean;
  /** Explored only with faults of calls' admin requests (REQUEST_KINDS). */
  requestFaultsOnly?: boolean;
  /** How the run ends without an injected fault; another ending is reported as a violation. */
  expected?: string;
}

export interface Schedule {
  base: Base;
  faults: Fault[];
}

export const scheduleName = (s: Schedule) =>
  s.faults.length ? `${s.base.name}@${s.faults.map((f) => `${f.call}:${f.kind}`).join('+')}` : s.base.name;

export interface Found extends Omit<Violation, 'invariant'> {
  /** The invariant broken, or `outcome`: a fault-free run that did not end as its base expects. */
  invariant: Violation['invariant'] | 'outcome';
  /** The step of the world after which it was seen ('end' for the end checks). */
  step: string;
}

export interface Outcome {
  schedule: string;
  /** Activity names of the run under test, first attempts, in order. */
  calls: string[];
  violations: Found[];
  /** The run under test's outcome, or what went wrong with the schedule itself. */
  result: string;
  /** What the world was asked to do, in order (fences, copies, DNS changes, deletes...). */
  world: string[];
}

/** The environment every explored run uses: a short verify and drain keep the histories small. */
const EXPLORED_ENV: Partial<Environment> = { verifySeconds: 10, drainSeconds: 2, ttl: 1, keepStacks: 1 };
const LEASE_MS = 60_000;
/** Schedules take seconds, and a few a minute on a loaded machine (each killed worker's task times out in real time). */
const STALLED_AFTER_MS = 150_000;

/** One time-skipping server that runs schedules one after another. */
export class Lane {
  private schedules = 0;
  /** The schedule the lane's worker serves now. */
  private current?: ScheduleRun;
  private readonly worker: { worker: Worker; running: Promise<void> };

  private constructor(
    private readonly testEnv: TestWorkflowEnvironment,
    worker: Worker,
    private readonly taskQueue: string,
  ) {
    this.worker = { worker, running: worker.run() };
  }

  /**
   * A server and one worker kept for every schedule without a killed worker (creating a worker
   * costs more than a short run): its activities are those of the schedule running now.
   */
  static async start(): Promise<Lane> {
    const testEnv = await timeSkippingEnvironment();
    let lane: Lane | undefined;
    const names = Object.keys(createActivities(new FakeWorld().deps(tempDir('explorer-reports-').path)));
    const activities = Object.fromEntries(
      names.map((name) => [
        name,
        (...args: never[]) => {
          const run = lane?.current;
          const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
          if (!run || !run.owns(workflowId))
            throw ApplicationFailure.nonRetryable(`explorer: ${workflowId} belongs to a schedule that is over`);
          return run.activities[name]!(...args);
        },
      ]),
    );
    const taskQueue = `explore-${randomUUID()}`;
    const worker = await Worker.create({
      connection: testEnv.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
      maxHeartbeatThrottleInterval: '100ms',
      defaultHeartbeatThrottleInterval: '100ms',
      shutdownGraceTime: '50ms',
    });
    lane = new Lane(testEnv, worker, taskQueue);
    return lane;
  }

  async stop(): Promise<void> {
    this.worker.worker.shutdown();
    await this.worker.running;
    await this.testEnv.teardown();
  }

  /**
   * Runs a schedule; one that stalls is run once more, afresh. The time-skipping server can wedge a
   * run for good (sdk-java issues 2606 and 3088): a timer fires while a workflow task that cancels
   * it is in flight, the server refuses that completion, and the task stays started, never timed
   * out or sent again. Only a slow workflow task lets the timer fire first, so it happens on a
   * loaded CI machine: a switch stuck after its restore ran out the explorer's bound there.
   */
  async run(schedule: Schedule): Promise<Outcome> {
    const first = await this.attempt(schedule);
    if (!first.stalled) return first.outcome;
    console.log(`fault explorer: ${scheduleName(schedule)} stalled (${first.outcome.result}); running it again`);
    const second = await this.attempt(schedule);
    if (!second.stalled) return second.outcome;
    return { ...second.outcome, result: `the schedule itself broke: it stalled twice (${second.outcome.result})` };
  }

  private async attempt(schedule: Schedule): Promise<{ outcome: Outcome; stalled: boolean }> {
    this.schedules += 1;
    const envName = `x${this.schedules}${randomUUID().slice(0, 4)}`;
    const ownWorkers = schedule.faults.some((f) => f.kind === 'kill');
    const run = new ScheduleRun(this.testEnv, schedule, envName, ownWorkers ? undefined : this.taskQueue);
    this.current = run;
    const started = Date.now();
    // A schedule takes seconds: one that does not end says where it waits, and is stopped.
    const watchdog = setInterval(() => {
      const seconds = Math.round((Date.now() - started) / 1000);
      console.log(`fault explorer: ${scheduleName(schedule)} still running after ${seconds} s: ${run.whereItIs()}`);
      if (!run.stalled && seconds * 1000 >= STALLED_AFTER_MS) void run.stall();
    }, 30_000);
    try {
      return { outcome: await run.execute(), stalled: run.stalled };
    } catch (err) {
      const outcome = run.outcome(`the schedule itself broke: ${(err as Error).stack ?? String(err)}`);
      return { outcome, stalled: run.stalled };
    } finally {
      clearInterval(watchdog);
    }
  }
}

class ScheduleRun {
  private readonly world: FakeWorld;
  private readonly found = new Map<string, Found>();
  private readonly calls: string[] = [];
  private readonly faults: Map<number, FaultKind>;
  private readonly reportsDir = tempDir('explorer-reports-').path;
  private readonly taskQueue: string;
  private readonly env: Partial<Environment>;
  /** The schedule's activities, faults injected. */
  readonly activities: Record<string, (...args: never[]) => Promise<unknown>>;
  /** The workflow whose calls are counted and faulted. */
  private target?: string;
  private handle?: WorkflowHandle;
  private worker?: { worker: Worker; running: Promise<void> };
  private killing?: Promise<void>;
  private stopping = false;
  private lastStep = 'start';
  /** What execute() awaits now. */
  private stage = 'setting up';
  /** Set by stall(): the lane runs the schedule again. */
  stalled = false;
  /** How far the world's clock is ahead of the server's (hung and lost attempts). */
  private skewMs = 0;
  /** The attempt whose admin requests are faulted now (REQUEST_KINDS). */
  private requestFault?: RequestFault;
  /** Requests held in the network by `late` and `stale` faults, and when they arrive. */
  private held: Array<{ when: 'next-call' | 'run-end'; what: string; deliver: () => Promise<unknown> }> = [];

  /** With `sharedTaskQueue` the lane's worker serves the schedule; else it starts (and kills) its own. */
  constructor(
    private readonly testEnv: TestWorkflowEnvironment,
    private readonly schedule: Schedule,
    private readonly envName: string,
    private readonly sharedTaskQueue?: string,
  ) {
    this.env = { ...EXPLORED_ENV, ...schedule.base.env };
    this.faults = new Map(schedule.faults.map((f) => [f.call, f.kind]));
    this.world = new FakeWorld({
      env: this.env,
      awsShaped: schedule.base.awsShaped,
      onStep: (what) => this.step(what),
      clientsWriteBetweenRequests: true,
    });
    this.taskQueue = sharedTaskQueue ?? `explore-${randomUUID()}`;
    this.activities = this.instrumented();
  }

  /** The schedule's runs are named after its environment. */
  owns(workflowId: string): boolean {
    return workflowId.includes(`-${this.envName}-`);
  }

  outcome(result: string): Outcome {
    return {
      schedule: scheduleName(this.schedule),
      calls: this.calls,
      violations: [...this.found.values()],
      result,
      world: this.world.state.calls,
    };
  }

  /** Terminates the runs still open, and skips what would start another: the schedule is run again. */
  async stall(): Promise<void> {
    this.stalled = true;
    for (const run of this.world.state.runs ?? [])
      if (run.state === 'running')
        await this.testEnv.client.workflow
          .getHandle(run.workflowId)
          .terminate('explorer: the schedule stalled')
          .catch(() => undefined);
  }

  whereItIs(): string {
    return `${this.stage}; ${this.calls.length} calls counted, last step: ${this.lastStep}; world: ${this.world.state.calls.slice(-3).join(' | ')}`;
  }

  private step(what: string): void {
    this.lastStep = what;
    for (const v of checkStep(this.world.snapshot())) this.note(v, what);
  }

  private note(v: Pick<Found, 'invariant' | 'message'>, step: string): void {
    const key = `${v.invariant} ${v.message}`;
    if (!this.found.has(key)) this.found.set(key, { ...v, step });
  }

  async execute(): Promise<Outcome> {
    const { base } = this.schedule;
    seedWorld(this.world, this.envName);
    await base.setup?.(this.world, this.envName);
    await this.tick();
    await this.startWorker();
    try {
      if (base.flow === 'rollback' && !base.alone) {
        const prior = await this.runWorkflow('switch', undefined);
        if (prior !== 'switched') return this.outcome(`the switch before the rollback ended ${prior}`);
      }
      for (const [point, failure] of Object.entries(base.failures ?? {}))
        this.world.fail(point as FailurePoint, { ...failure });
      const result = await this.runWorkflow(base.flow, base.input);
      await this.deliverHeld('run-end');
      if (this.schedule.faults.length === 0 && base.expected && result !== base.expected) {
        this.note(
          { invariant: 'outcome', message: `the ${base.flow} ended ${result.split('\n')[0]}, not ${base.expected}` },
          'end of the run',
        );
      }
      if (result === 'terminated' && !this.stalled) {
        // A dead run's stacks are cleaned up by the next switch, which also proves the fence lapsed.
        // As many unlocks as the terminate left locks: one whatever it found was one too many where
        // switch@17:terminate landed in the verify timer, and CI failed on it once.
        await releaseTimeHeldByClosedRuns(this.testEnv);
        await this.testEnv.sleep(LEASE_MS + 1_000);
        await this.tick();
        this.world.state.failures = {};
        await this.runWorkflow('switch', undefined, false);
      }
    } finally {
      this.stopping = true;
      this.stage = 'stopping the workers';
      await this.killing;
      await this.stopWorker();
    }
    // Every run is closed. A lock one left would hold this lane's clock for every later schedule:
    // each would wait the lease below in real time.
    this.stage = 'releasing time held by closed runs';
    const released = await releaseTimeHeldByClosedRuns(this.testEnv);
    if (released) console.log(`fault explorer: ${scheduleName(this.schedule)} left ${released} time lock(s) held`);
    // Every fence a run left behind must have lapsed by now.
    this.stage = 'waiting out the lease';
    await this.testEnv.sleep(LEASE_MS + 1_000);
    await this.tick();
    for (const v of checkEnd(this.world.snapshot())) this.note(v, 'end');
    return this.outcome(this.lastResult);
  }

  private lastResult = '';

  /** Runs one workflow to its end; faults apply to it when `faulted`. Returns its outcome. */
  private async runWorkflow(
    flow: 'switch' | 'rollback',
    input: Partial<SwitchInput> | undefined,
    faulted = true,
  ): Promise<string> {
    const isTarget = faulted && flow === this.schedule.base.flow;
    const workflowId = `${flow}-${this.envName}-${randomUUID().slice(0, 6)}`;
    const runs = (this.world.state.runs ??= []);
    const run = {
      workflowId,
      kind: flow,
      state: 'running' as const,
      reported: false,
      acted: false,
      keepFailed: input?.keepFailed,
    };
    runs.push(run);
    if (isTarget) this.target = workflowId;
    const handle =
      flow === 'switch'
        ? await this.testEnv.client.workflow.start(stackSwitch, {
            taskQueue: this.taskQueue,
            workflowId,
            args: [{ env: this.envName, backup: 'latest', trigger: 'ci', version: '2.0.0', ...input }],
          })
        : await this.testEnv.client.workflow.start(rollback, {
            taskQueue: this.taskQueue,
            workflowId,
            args: [{ env: this.envName, by: 'explorer' }],
          });
    if (isTarget) this.handle = handle;
    this.stage = `awaiting ${workflowId}`;
    let outcome: string;
    let state: 'closed' | 'terminated' = 'closed';
    let returned = false;
    try {
      const report = (await handle.result()) as { outcome: string };
      outcome = report.outcome;
      returned = true;
    } catch (err) {
      const description = await handle.describe();
      state = description.status.name === 'TERMINATED' ? 'terminated' : 'closed';
      outcome =
        state === 'terminated' ? 'terminated' : `${description.status.name.toLowerCase()}: ${(err as Error).message}`;
    }
    if (isTarget) this.target = undefined;
    const written = existsSync(join(this.reportsDir, `${workflowId}.json`));
    Object.assign(run, { state, reported: written || (flow === 'rollback' && returned) });
    if (isTarget) this.lastResult = outcome;
    await this.tick();
    return outcome;
  }

  /** Brings the world's clock to the server's and lets the clients write. */
  private async tick(): Promise<void> {
    this.world.setTime((await this.testEnv.currentTimeMs()) + this.skewMs);
    this.world.clientsWrite();
  }

  private async startWorker(): Promise<void> {
    if (this.sharedTaskQueue) return;
    const worker = await Worker.create({
      connection: this.testEnv.nativeConnection,
      taskQueue: this.taskQueue,
      workflowBundle: await workflowBundle(),
      activities: this.activities,
      maxHeartbeatThrottleInterval: '100ms',
      defaultHeartbeatThrottleInterval: '100ms',
      shutdownGraceTime: '50ms',
      // The test server keeps sending a run's tasks to the sticky queue of a worker that died:
      // workers that get killed keep no runs cached (each task replays the history).
      maxCachedWorkflows: 0,
    });
    this.worker = { worker, running: worker.run() };
  }

  private async stopWorker(): Promise<void> {
    const current = this.worker;
    this.worker = undefined;
    if (!current) return;
    current.worker.shutdown();
    await current.running;
  }

  private instrumented(): Record<string, (...args: never[]) => Promise<unknown>> {
    const deps = this.world.deps(this.reportsDir, this.env);
    const real = createActivities({ ...deps, admin: (env, adminUrl) => this.faultedAdmin(deps.admin(env, adminUrl)) });
    const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
    for (const [name, fn] of Object.entries(real) as Array<[string, (...args: never[]) => Promise<unknown>]>) {
      wrapped[name] = async (...args: never[]) => {
        const context = Context.current();
        const counted = context.info.workflowExecution?.workflowId === this.target && context.info.attempt === 1;
        const index = counted ? this.calls.push(name) - 1 : -1;
        const kind = counted ? this.faults.get(index) : undefined;
        await this.tick();
        // A request held by a `late` fault arrives once the call it belonged to is over, retry and all.
        if (counted) await this.deliverHeld('next-call');
        if (kind === 'fail-before')
          throw ApplicationFailure.retryable(`explorer: ${name} failed before its effect`, 'ExplorerFault');
        if (kind === 'hang') return this.lose(name, 'hung');
        if (kind === 'pause' || kind === 'late' || kind === 'stale')
          return this.withRequestFault(name, kind, () => fn(...args));
        const result = await fn(...args);
        this.lastStep = `${name} done`;
        if (kind === 'fail-after')
          throw ApplicationFailure.retryable(`explorer: ${name} did its work but its answer was lost`, 'ExplorerFault');
        if (kind === 'kill') return this.kill(name);
        // Right after the answer went back: the run is stopped between two steps.
        const handle = this.handle;
        if (kind === 'terminate')
          setTimeout(() => void handle?.terminate('explorer: terminated').catch(() => undefined), 20);
        return result;
      };
    }
    return wrapped;
  }

  /**
   * The attempt's answer never comes: the server would wait for the attempt's timeout, then retry.
   * The test server cannot skip time while an activity runs, so the wait is the world's: its clock
   * moves on by the timeout (and stays that far ahead of the server's), and the attempt fails.
   */
  private lose(name: string, why: string): never {
    const { heartbeatTimeoutMs, startToCloseTimeoutMs } = Context.current().info;
    const timeoutMs = Math.min(...[heartbeatTimeoutMs, startToCloseTimeoutMs].filter((t): t is number => !!t));
    this.skewMs += timeoutMs;
    this.lastStep = `${name}: ${why}`;
    throw ApplicationFailure.retryable(`explorer: ${name} ${why}; timed out after ${timeoutMs} ms`, 'ExplorerTimeout');
  }

  /**
   * Runs an attempt whose admin requests are faulted (`pause`, `late`, `stale`); the server times
   * the attempt out whatever it answers, and retries it.
   */
  private async withRequestFault(name: string, kind: FaultKind, work: () => Promise<unknown>): Promise<never> {
    const { activityId } = Context.current().info;
    const fault = new RequestFault(kind, activityId);
    this.requestFault = fault;
    const finished = work().then(
      () => 'finished' as const,
      () => 'finished' as const,
    );
    try {
      const how = await Promise.race([finished, fault.tripped]);
      if (kind === 'pause' && how === 'finished' && !fault.frozen) await this.freeze(fault);
      if (kind === 'stale' && !fault.heldOne && fault.firstChange)
        this.held.push({ when: 'run-end', ...fault.firstChange });
    } finally {
      this.requestFault = undefined;
    }
    return this.lose(name, kind === 'pause' ? 'was paused by its frozen worker' : 'had a request held in the network');
  }

  /** The worker is frozen for longer than the fence lease: the world lives on (clients write), then it thaws. */
  private async freeze(fault: RequestFault): Promise<void> {
    fault.frozen = true;
    this.skewMs += LEASE_MS + 1_000;
    this.lastStep = 'the worker froze';
    await this.tick();
  }

  /** The world's admin API as the schedule's faults let an attempt reach it. */
  private faultedAdmin<Admin extends object>(admin: Admin): Admin {
    return new Proxy(admin, {
      get: (target, property, receiver) => {
        const method = Reflect.get(target, property, receiver) as unknown;
        if (typeof method !== 'function') return method;
        return (...args: unknown[]) => {
          const fault = this.requestFault;
          const mine =
            fault !== undefined &&
            Context.current().info.activityId === fault.activityId &&
            Context.current().info.attempt === 1;
          const call = () => (method as (...a: unknown[]) => unknown).apply(target, args);
          if (!mine) return call();
          fault.requests += 1;
          if (fault.kind === 'pause') {
            if (fault.requests === 2) return this.freeze(fault).then(call);
            return call();
          }
          if (fault.heldOne || !CHANGING_REQUESTS.has(String(property))) return call();
          fault.changing += 1;
          if (fault.kind === 'stale' && fault.changing === 1) {
            fault.firstChange = { what: String(property), deliver: async () => call() };
            return call();
          }
          fault.heldOne = true;
          this.held.push({
            when: fault.kind === 'late' ? 'next-call' : 'run-end',
            what: String(property),
            deliver: async () => call(),
          });
          fault.trip();
          // The attempt never hears back: the server times it out.
          return new Promise(() => undefined);
        };
      },
    });
  }

  /** Requests held in the network arrive (their answers go nowhere). */
  private async deliverHeld(when: 'next-call' | 'run-end'): Promise<void> {
    const arriving = this.held.filter((h) => h.when === when || when === 'run-end');
    this.held = this.held.filter((h) => !arriving.includes(h));
    for (const request of arriving) {
      this.lastStep = `a held ${request.what} request arrived late`;
      await request.deliver().catch(() => undefined);
    }
  }

  /** The work is done; the worker dies before it can answer: it is shut down and a new one takes over. */
  private kill(name: string): never {
    this.killing ??= (async () => {
      await sleep(10);
      await this.stopWorker();
      if (!this.stopping) await this.startWorker();
      this.killing = undefined;
    })();
    return this.lose(name, 'was done when its worker died');
  }
}

/** The admin requests of one faulted attempt: how many it sent, and whether the fault has struck. */
class RequestFault {
  requests = 0;
  /** Requests that change a stack, sent so far. */
  changing = 0;
  /** A `stale` attempt's first changing request: a copy of it arrives at the end if it stays the only one. */
  firstChange?: { what: string; deliver: () => Promise<unknown> };
  frozen = false;
  heldOne = false;
  readonly tripped: Promise<'tripped'>;
  trip!: () => void;

  constructor(
    readonly kind: FaultKind,
    readonly activityId: string,
  ) {
    this.tripped = new Promise((resolve) => {
      this.trip = () => resolve('tripped');
    });
  }
}
