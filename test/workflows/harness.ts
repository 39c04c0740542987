/**
 * Shared plumbing of the workflow tests: the bundled workflows, a quiet runtime, a fake world
 * seeded with a live stack and a backup, and a worker bound to that world.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import proto from '@temporalio/proto';
import type { Environment } from '../../src/config/environment.ts';
import { searchAttributes } from '../../src/switch/contract.ts';
import { toolPath } from '../../src/tools.ts';
import { createActivities } from '../../activities/index.ts';
import { FakeWorld, seedStackName, seedWorld } from '../support/fake-ports.ts';

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
export function seededWorld(env: Partial<Environment> = {}): FakeWorld {
  const world = new FakeWorld({ env });
  seedWorld(world, 'test');
  return world;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function workerFor(connection: NativeConnection, world: FakeWorld, env: Partial<Environment> = {}) {
  const taskQueue = `switch-test-${randomUUID()}`;
  const reportsDir = tempDir('switch-reports-');
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
    searchAttributes: Object.fromEntries(Object.values(searchAttributes).map(({ name }) => [name, proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  return env;
}

type History = proto.temporal.api.history.v1.IHistory;
const { History } = proto.temporal.api.history.v1;

/**
 * Histories as JSON fixtures. The SDK's historyToJSON cannot be used here: @temporalio/common
 * carries its own protobufjs, whose JSON extension rejects @temporalio/proto's types.
 */
export function historyToFixture(history: History): string {
  return JSON.stringify(History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1);
}

export function historyFromFixture(text: string): History {
  return History.fromObject(JSON.parse(text) as Record<string, unknown>);
}
