/**
 * Shared plumbing of the workflow tests: the bundled workflows, a quiet runtime, a fake world
 * seeded with a live stack and a backup, a worker bound to that world, and a switch run on it.
 * Scripts run outside vitest (the fixtures' regenerate.ts) import this file too, so it imports
 * nothing of vitest: the hooks are in time-skipping-suite.ts.
 */
import { randomUUID } from 'node:crypto';

import { fileURLToPath } from 'node:url';
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Environment } from '../../src/config/environment.ts';
import { searchAttributes, type SwitchInput } from '../../src/switch/contract.ts';
import { checkStep } from '../support/invariants.ts';
import { toolPath } from '../../src/tools.ts';
import { createActivities } from '../../activities/index.ts';
import { stackSwitch, type rehearsal } from '../../workflows/index.ts';
import { FakeWorld, seedStackName, seedWorld, type FakeWorldOptions } from '../support/fake-ports.ts';
import { tempDir } from '../support/temp-dir.ts';

export const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

let runtimeInstalled = false;
/** Worker logs only errors: the injected failures would otherwise fill the tests' output. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  runtimeInstalled = true;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  return bundle;
}

export const OLD = seedStackName('test');

/** A world where `OLD` is live with 30 items, backed up, and took 5 more writes since the backup. */
export function seededWorld(options: FakeWorldOptions = {}): FakeWorld {
  const world = new FakeWorld(options);
  seedWorld(world, 'test');
  return world;
}

/** A seeded world whose clients write at every step, with what the invariants found wrong after each step. */
export function worldWithClientsWriting(): { world: FakeWorld; violations: string[] } {
  const violations: string[] = [];
  // The clients' writes are steps too: without the guard every write would set off another.
  let inStep = false;
  const world: FakeWorld = seededWorld({
    onStep: () => {
      if (inStep) return;
      inStep = true;
      world.clientsWrite();
      violations.push(...checkStep(world.snapshot()).map((v) => `${v.invariant}: ${v.message}`));
      inStep = false;
    },
  });
  return { world, violations };
}

export async function workerFor(connection: NativeConnection, world: FakeWorld, env: Partial<Environment> = {}) {
  const taskQueue = `switch-test-${randomUUID()}`;
  const reportsDir = tempDir('switch-reports-').path;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities(world.deps(reportsDir, env)),
    // Cancellation reaches an activity with a heartbeat's answer: keep that quick in tests.
    maxHeartbeatThrottleInterval: '100ms',
    defaultHeartbeatThrottleInterval: '100ms',
  });
  return { worker, taskQueue, reportsDir };
}

/** The time-skipping server from .tools, with Switchyard's search attributes registered like the dev server's. */
export async function timeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: toolPath('temporal-test-server') } },
  });
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.values(searchAttributes).map(({ name }) => [
        name,
        proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  return env;
}

/**
 * A sleep of this length returns at once while time skips, and after this long in real time while
 * it is held: long enough that a loaded machine does not pass a skipped sleep off as a held one.
 */
const TIME_PROBE_MS = 3_000;
/** More locks than runs leave behind (a step and a workflow task each). */
const MAX_HELD_LOCKS = 4;

/**
 * The time-skipping server holds time still for each activity and workflow task a run has
 * pending, and a run that closes with some still pending releases none of them: one is left where
 * a terminate found a step or a workflow task pending, none where the run waited on a timer. With
 * every run closed, this counts the locks left by probing (a sleep that takes its own length in
 * real time is held) and releases them; answers how many it released. One released too many lets
 * time skip while later runs' steps run, and the server refuses a later unlock ('Unbalanced lock
 * and unlock calls'), which the client retries; one too few runs every later timer in real time.
 */
export async function releaseTimeHeldByClosedRuns(testEnv: TestWorkflowEnvironment): Promise<number> {
  for (let released = 0; ; released++) {
    const started = Date.now();
    await testEnv.sleep(TIME_PROBE_MS);
    if (Date.now() - started < TIME_PROBE_MS) return released;
    if (released === MAX_HELD_LOCKS)
      throw new Error(`time still does not skip after releasing ${released} locks of closed runs`);
    await testEnv.connection.testService!.unlockTimeSkipping({});
  }
}

export interface Run {
  /** A seeded world unless given. */
  world?: FakeWorld;
  env?: Partial<Environment>;
  /** Merged over a CI switch of `test` to version 2.0.0 from the latest backup. */
  input?: Partial<SwitchInput>;
  /** A random one unless given: the switch lock is a fixed id. */
  workflowId?: string;
  /** A rehearsal takes the switch's input and reports as a switch does. */
  workflow?: typeof stackSwitch | typeof rehearsal;
  /** Drives the running workflow (queries, updates, cancel) before its result is awaited. */
  during?: (handle: WorkflowHandle<typeof stackSwitch>) => Promise<void>;
  /**
   * The test's signal: when the test times out, what the switch was waiting on is printed and the
   * switch is terminated, so that its pending activities stop holding the time-skipping server's
   * clock for the tests (and retries) after it.
   */
  signal?: AbortSignal;
}

/** Runs a switch (or a rehearsal) to its end on a worker of its own; the handle is there to read its history. */
export async function runSwitch(testEnv: TestWorkflowEnvironment, options: Run = {}) {
  const world = options.world ?? seededWorld();
  const { worker, taskQueue, reportsDir } = await workerFor(testEnv.nativeConnection, world, options.env);
  const { report, handle } = await worker.runUntil(async () => {
    const handle = await testEnv.client.workflow.start(options.workflow ?? stackSwitch, {
      taskQueue,
      workflowId: options.workflowId ?? `switch-test-${randomUUID()}`,
      args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2.0.0', ...options.input }],
    });
    if (options.signal?.aborted) void giveUp(handle, world);
    else options.signal?.addEventListener('abort', () => void giveUp(handle, world), { once: true });
    await options.during?.(handle);
    return { report: await handle.result(), handle };
  });
  return { report, world, reportsDir, handle };
}

async function giveUp(handle: WorkflowHandle, world: FakeWorld): Promise<void> {
  try {
    const { raw, historyLength } = await handle.describe();
    const pending = (raw.pendingActivities ?? []).map((a) => `${a.activityType?.name} (attempt ${a.attempt})`);
    console.error(
      `switch ${handle.workflowId} given up after ${historyLength} events; pending activities: ${pending.join(', ') || 'none'}; ` +
        `last calls on the world: ${world.state.calls.slice(-5).join(' | ')}`,
    );
    await handle.terminate('the test timed out');
  } catch (err) {
    console.error(`switch ${handle.workflowId} could not be given up: ${String(err)}`);
  }
}

type History = proto.temporal.api.history.v1.IHistory;
const { History } = proto.temporal.api.history.v1;

/**
 * Histories as JSON fixtures. The SDK's historyToJSON cannot be used here: @temporalio/common
 * carries its own protobufjs, whose JSON extension rejects @temporalio/proto's types.
 */
export function historyToFixture(history: History): string {
  return JSON.stringify(
    History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String }),
    null,
    1,
  );
}

export function historyFromFixture(text: string): History {
  return History.fromObject(JSON.parse(text) as Record<string, unknown>);
}
