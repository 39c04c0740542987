/**
 * A Switchyard worker process over the file-backed fake world (test/support/fake-ports.ts), for
 * tests that kill and restart the worker or drive it through the CLI. Configured by environment:
 *
 *   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE   where Temporal is (as for the real worker)
 *   SWITCHYARD_TASK_QUEUE                  task queue (default `switchyard`)
 *   SWITCHYARD_TEST_STATE_DIR              required: world.json (the fake world) and reports/ live here
 *   SWITCHYARD_TEST_SEED_ENV               seed a world for this environment when world.json is missing
 *                                          (live stack navcloud-<env>-blue-seed0001, a backup, later writes)
 *   SWITCHYARD_TEST_SEED_ITEMS             items in that seed (default 30)
 *   SWITCHYARD_TEST_FAIL                   JSON { "<failure point>": { message, retryable, times, stack, after } }
 *                                          or a comma-separated list of failure points
 *   SWITCHYARD_TEST_ENV                    JSON overrides of the fake environment (verifySeconds, approval...)
 *   SWITCHYARD_TEST_ENV_DIR                read real environment files from this directory instead
 *   SWITCHYARD_TEST_IMPORT_DELAY_MS        pause per POST /admin/import batch (default 0)
 *   SWITCHYARD_TEST_BATCH_LINES            lines per import batch (default 10)
 *
 * Prints `worker ready` on stdout once it polls; exits 0 after SIGINT/SIGTERM.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Environment } from '../../src/config/environment.ts';
import { loadEnvironment } from '../../src/config/environment.ts';
import { runWorker } from '../../src/temporal/worker.ts';
import { createRootLogger } from '../../src/logging.ts';
import { FAILURE_POINTS, FakeWorld, seedWorld, type Failure, type FailurePoint } from './fake-ports.ts';

function parseFailures(text: string | undefined): Partial<Record<FailurePoint, Failure>> {
  if (!text) return {};
  const trimmed = text.trim();
  const failures: Partial<Record<FailurePoint, Failure>> = trimmed.startsWith('{')
    ? (JSON.parse(trimmed) as Partial<Record<FailurePoint, Failure>>)
    : Object.fromEntries(trimmed.split(',').map((point) => [point.trim(), {}]));
  for (const point of Object.keys(failures)) {
    if (!(FAILURE_POINTS as readonly string[]).includes(point)) {
      throw new Error(`SWITCHYARD_TEST_FAIL names ${point}; expected one of ${FAILURE_POINTS.join(', ')}`);
    }
  }
  return failures;
}

const stateDir = process.env.SWITCHYARD_TEST_STATE_DIR;
if (!stateDir) throw new Error('SWITCHYARD_TEST_STATE_DIR must name a directory for the fake world');
mkdirSync(stateDir, { recursive: true });
const envOverrides = JSON.parse(process.env.SWITCHYARD_TEST_ENV ?? '{}') as Partial<Environment>;
const world = new FakeWorld({
  stateFile: join(stateDir, 'world.json'),
  importDelayMs: Number(process.env.SWITCHYARD_TEST_IMPORT_DELAY_MS ?? 0),
  env: envOverrides,
});
const seedEnv = process.env.SWITCHYARD_TEST_SEED_ENV;
if (seedEnv && world.state.calls.length === 0 && Object.keys(world.state.stacks).length === 0) {
  seedWorld(world, seedEnv, Number(process.env.SWITCHYARD_TEST_SEED_ITEMS ?? 30));
}
for (const [point, failure] of Object.entries(parseFailures(process.env.SWITCHYARD_TEST_FAIL))) {
  world.fail(point as FailurePoint, failure);
}

const deps = world.deps(join(stateDir, 'reports'));
deps.importBatchLines = Number(process.env.SWITCHYARD_TEST_BATCH_LINES ?? 10);
const envDir = process.env.SWITCHYARD_TEST_ENV_DIR;
if (envDir) deps.loadEnvironment = (name) => loadEnvironment(name, envDir);

await runWorker({
  taskQueue: process.env.SWITCHYARD_TASK_QUEUE,
  deps,
  logger: createRootLogger('test-worker'),
  heartbeatThrottleMs: 200,
  onRunning: () => process.stdout.write('worker ready\n'),
});
