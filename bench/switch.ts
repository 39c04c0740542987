/**
 * `npm run bench:switch` (issue 5): a switch of `dev` on the local profile with 100,000 items in
 * the backup, 1,000 clients each holding a stream and 200 writes/s across them. Prints the time
 * per phase, the orchestration overhead (the workflow's wall time minus the time its activities
 * ran, and minus the time nothing but its deliberate timers ran) and the clients' figures: retrying
 * clients and, beside them, clients that never retry, the longest write pause any of them saw, and
 * Porcupine's verdict on their history. Sizes: BENCH_ITEMS, BENCH_STREAMS, BENCH_WRITES_PER_SECOND;
 * BENCH_TTL overrides the record's TTL (run it at 2 and at 30). Figures are printed, never asserted.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { environmentsDir, loadEnvironment } from '../src/config/environment.ts';
import { createLogger } from '../src/logging.ts';
import { startLocalEnvironment } from '../src/local/environment.ts';
import { switchUnderLoad } from '../src/local/switch-under-load.ts';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 100_000);
const USERS = Number(process.env.BENCH_STREAMS ?? 1_000);
const WRITES_PER_SECOND = Number(process.env.BENCH_WRITES_PER_SECOND ?? 200);
/** The record's TTL in seconds (dev.yaml's by default): the write pause should not depend on it. */
const TTL = process.env.BENCH_TTL;

const log = createLogger('bench-switch', { level: 'warn' });
const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
let environments = environmentsDir;
if (TTL !== undefined) {
  if (!/^\d+$/.test(TTL)) throw new Error(`BENCH_TTL must be a whole number of seconds, got ${JSON.stringify(TTL)}`);
  environments = join(dataDir, 'environments');
  mkdirSync(environments);
  writeFileSync(join(environments, 'dev.yaml'), readFileSync(join(environmentsDir, 'dev.yaml'), 'utf8').replace(/^ttl: \d+$/m, `ttl: ${TTL}`));
}
const env = await loadEnvironment('dev', environments);
console.log(`bench:switch — ${ITEMS} items in the backup, ${USERS} streams, ${WRITES_PER_SECOND} writes/s, DNS TTL ${env.ttl} s (data in ${dataDir})`);
const setupStarted = Date.now();
const local = await startLocalEnvironment({ dataDir, envs: [env.name], environmentsDir: environments, temporalPort: 0, persistTemporal: false, dnsPort: 0, seedItems: ITEMS, log });
console.log(`local environment up and seeded in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);
const connection = await Connection.connect({ address: local.state.temporalAddress });
let exitCode = 0;
try {
  const client = new Client({ connection });
  // The clients all run in this process: their pauses include its own event-loop delay, printed beside them.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const result = await switchUnderLoad({
    client, env, state: local.state, log, fleet: { users: USERS, writesPerSecond: WRITES_PER_SECOND, maxDurationMs: 10 * 60_000 },
  });
  loopDelay.disable();
  const history = await client.workflow.getHandle(result.report.workflowId, result.report.runId).fetchHistory();
  const timing = orchestrationTiming(history.events ?? []);

  console.log(`\noutcome: ${result.report.outcome}${result.report.reason ? ` (${result.report.reason})` : ''}`);
  console.log(`backup: ${result.report.backup?.key} (${result.report.backup?.items} items)`);
  console.log('\nphase               duration');
  for (const phase of result.report.phases) console.log(`${phase.name.padEnd(20)}${(phase.durationMs / 1000).toFixed(2).padStart(8)} s`);
  console.log(`\nswitch wall time (workflow start to close): ${(timing.wallMs / 1000).toFixed(2)} s`);
  console.log(`activities ran for:                        ${(timing.activityMs / 1000).toFixed(2)} s (${timing.activities} executions)`);
  console.log(`wall - activities (includes the deliberate waits: verifying, the drain's TTL): ${((timing.wallMs - timing.activityMs) / 1000).toFixed(2)} s`);
  console.log(`time covered by activities or timers:      ${(timing.coveredMs / 1000).toFixed(2)} s`);
  console.log(`orchestration overhead (wall - covered):   ${((timing.wallMs - timing.coveredMs) / 1000).toFixed(2)} s`);
  const { nonRetrying, linearizability, ...retrying } = result.clients;
  console.log('\nclients that retry:', JSON.stringify(retrying, null, 2));
  console.log('clients that never retry:', JSON.stringify(nonRetrying, null, 2));
  console.log(`Porcupine (per-key linearizability): ${JSON.stringify(linearizability)}`);
  console.log(`event-loop delay of the clients' process: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms (part of every pause above)`);
  console.log('\ntargets:');
  for (const target of result.targets) console.log(`  [${target.ok ? 'x' : ' '}] ${target.name}: ${target.detail}`);
  console.log(`  [${timing.wallMs < 60_000 ? 'x' : ' '}] switch under 60 s: ${(timing.wallMs / 1000).toFixed(1)} s`);
  const overhead = timing.wallMs - timing.coveredMs;
  console.log(`  [${overhead < 2_000 ? 'x' : ' '}] orchestration overhead under 2 s: ${(overhead / 1000).toFixed(2)} s`);
  const pause = Math.max(nonRetrying?.maxWritePauseMs ?? 0, retrying.maxWritePauseMs ?? 0);
  console.log(`  [${pause <= 500 ? 'x' : ' '}] longest write pause any client saw ≤ 500 ms: ${pause} ms (non-retrying ${nonRetrying?.maxWritePauseMs ?? '–'} ms, retrying ${retrying.maxWritePauseMs ?? '–'} ms; DNS TTL ${env.ttl} s)`);
  if (!result.targets.every((t) => t.ok)) exitCode = 1;
} finally {
  await connection.close();
  await local.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Wall time of the run; the time activities ran (summed); and the time covered by activities or
 * timers (deliberate waits such as verifySeconds and the drain's TTL), as a union since they
 * overlap. What the union leaves out of the wall time is the orchestration itself.
 */
function orchestrationTiming(events: HistoryEvent[]) {
  const at = (e: HistoryEvent) => {
    const t = e.eventTime;
    return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
  };
  const started = new Map<string, number>();
  const timers = new Map<string, number>();
  const working: Array<[number, number]> = [];
  let activityMs = 0;
  let activities = 0;
  for (const event of events) {
    if (event.activityTaskStartedEventAttributes) started.set(String(event.activityTaskStartedEventAttributes.scheduledEventId), at(event));
    const end = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const from = end && started.get(String(end.scheduledEventId));
    if (from !== undefined && from !== null) {
      activityMs += at(event) - from;
      activities += 1;
      working.push([from, at(event)]);
    }
    if (event.timerStartedEventAttributes) timers.set(String(event.eventId), at(event));
    const fired = event.timerFiredEventAttributes ?? event.timerCanceledEventAttributes;
    const timerFrom = fired && timers.get(String(fired.startedEventId));
    if (timerFrom !== undefined && timerFrom !== null) working.push([timerFrom, at(event)]);
  }
  working.sort((a, b) => a[0] - b[0]);
  let coveredMs = 0;
  let reach = -Infinity;
  for (const [from, to] of working) {
    if (to <= reach) continue;
    coveredMs += to - Math.max(from, reach);
    reach = to;
  }
  return { wallMs: at(events[events.length - 1]!) - at(events[0]!), activityMs, coveredMs, activities };
}
