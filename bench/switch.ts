/**
 * `npm run bench:switch` (issue 5): a switch of `dev` on the local profile with 100,000 items in
 * the backup, 1,000 clients each holding a stream and 200 writes/s across them. Prints the time
 * per phase, the orchestration overhead (the workflow's wall time minus the time its activities
 * ran, and minus the time nothing but its deliberate timers ran) and the clients' figures: retrying
 * clients and, beside them, clients that never retry, the longest write pause any of them saw, and
 * Porcupine's verdict on their history. Sizes: BENCH_ITEMS, BENCH_STREAMS, BENCH_WRITES_PER_SECOND;
 * BENCH_TTL overrides the record's TTL (run it at 2 and at 30), BENCH_VERIFY_ITEMS_PER_SECOND the
 * data check's pace. Figures are printed, never asserted.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { environmentsDir, loadEnvironment } from '../src/config/environment.ts';
import { createRootLogger } from '../src/logging.ts';
import { startLocalEnvironment } from '../src/local/environment.ts';
import { switchUnderLoad } from '../src/local/switch-under-load.ts';
import type { SwitchReport } from '../src/switch/contract.ts';
import { describeWritePause } from '../src/switch/report.ts';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 100_000);
const USERS = Number(process.env.BENCH_STREAMS ?? 1_000);
const WRITES_PER_SECOND = Number(process.env.BENCH_WRITES_PER_SECOND ?? 200);
/** The record's TTL in seconds (dev.yaml's by default): the write pause should not depend on it. */
const TTL = process.env.BENCH_TTL;

const log = createRootLogger('bench-switch', { level: 'warn' });
const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
/** The data check's pace (the environment's default otherwise): the trade between its length and what clients see. */
const VERIFY_RATE = process.env.BENCH_VERIFY_ITEMS_PER_SECOND;
let environments = environmentsDir;
if (TTL !== undefined || VERIFY_RATE !== undefined) {
  for (const [name, value] of [
    ['BENCH_TTL', TTL],
    ['BENCH_VERIFY_ITEMS_PER_SECOND', VERIFY_RATE],
  ]) {
    if (value !== undefined && !/^\d+$/.test(value))
      throw new Error(`${name} must be a whole number, got ${JSON.stringify(value)}`);
  }
  environments = join(dataDir, 'environments');
  mkdirSync(environments);
  let file = readFileSync(join(environmentsDir, 'dev.yaml'), 'utf8');
  if (TTL !== undefined) file = file.replace(/^ttl: \d+$/m, `ttl: ${TTL}`);
  if (VERIFY_RATE !== undefined) file += `verifyItemsPerSecond: ${VERIFY_RATE}\n`;
  writeFileSync(join(environments, 'dev.yaml'), file);
}
const env = await loadEnvironment('dev', environments);
console.log(
  `bench:switch — ${ITEMS} items in the backup, ${USERS} streams, ${WRITES_PER_SECOND} writes/s, ` +
    `DNS TTL ${env.ttl} s, data check at ${env.verifyItemsPerSecond} items/s (data in ${dataDir})`,
);
const setupStarted = Date.now();
const localEnvironment = await startLocalEnvironment({
  dataDir,
  envs: [env.name],
  environmentsDir: environments,
  temporalPort: 0,
  persistTemporal: false,
  dnsPort: 0,
  seedItems: ITEMS,
  log,
});
console.log(`local environment up and seeded in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);
const connection = await Connection.connect({ address: localEnvironment.state.temporalAddress });
let exitCode = 0;
try {
  const client = new Client({ connection });
  // The clients all run in this process: their pauses include its own event-loop delay, printed beside them.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const result = await switchUnderLoad({
    client,
    env,
    state: localEnvironment.state,
    log,
    load: { users: USERS, writesPerSecond: WRITES_PER_SECOND, maxDurationMs: 10 * 60_000 },
  });
  loopDelay.disable();
  const history = await client.workflow.getHandle(result.report.workflowId, result.report.runId).fetchHistory();
  const { report } = result;
  const verified = report.phases.find((p) => p.name === 'verifying');
  const timing = orchestrationTiming(
    history.events ?? [],
    verified ? Date.parse(verified.startedAt) + verified.durationMs : undefined,
  );

  console.log(`\noutcome: ${report.outcome}${report.reason ? ` (${report.reason})` : ''}`);
  console.log(`backup: ${report.backup?.key} (${report.backup?.items} items)`);
  console.log('\nphase               duration');
  for (const phase of report.phases)
    console.log(`${phase.name.padEnd(20)}${(phase.durationMs / 1000).toFixed(2).padStart(8)} s`);
  console.log("\nactivities: start (from the switch's start), duration, name");
  for (const line of timing.timeline) console.log(line);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`\nswitch wall time (workflow start to close):            ${seconds(timing.wallMs)}`);
  console.log(
    `  activities ran for (summed):                         ${seconds(timing.activityMs)} (${timing.activities} executions)`,
  );
  console.log(`  deliberate waits (timers with no activity running):  ${seconds(timing.waitMs)}`);
  console.log(`  orchestration overhead (no activity, no timer):      ${seconds(timing.overheadMs)}`);
  console.log(
    `start to verified (restore, catch-up, flip, data check, verify window): ${seconds(timing.untilVerifiedMs)}`,
  );
  console.log(`  of which deliberate waits (the verify window's floor): ${seconds(timing.waitsUntilVerifiedMs)}`);
  console.log(
    `  without them:                                        ${seconds(timing.untilVerifiedMs - timing.waitsUntilVerifiedMs)}`,
  );
  if (report.writePause) console.log(`write pause (workflow clock): ${describeWritePause(report.writePause)}`);
  if (report.verification)
    console.log(
      `data verified: ${report.verification.itemsCompared} items compared, ${report.verification.mismatches} mismatches`,
    );
  const { nonRetrying, linearizability, ...retrying } = result.clients;
  console.log('\nclients that retry:', JSON.stringify(retrying, null, 2));
  console.log('clients that never retry:', JSON.stringify(nonRetrying, null, 2));
  for (const [who, figures] of [
    ['retrying', retrying],
    ['non-retrying', nonRetrying],
  ] as const) {
    if (figures?.maxWritePauseAt)
      console.log(
        `longest write pause of the ${who} clients (${figures.maxWritePauseMs} ms) began ${whenInSwitch(report.phases, Date.parse(figures.maxWritePauseAt))}`,
      );
  }
  console.log(`Porcupine (per-key linearizability): ${JSON.stringify(linearizability)}`);
  console.log(
    `event-loop delay of the clients' process: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms, max ${(loopDelay.max / 1e6).toFixed(0)} ms (part of every pause above)`,
  );
  console.log('\ntargets:');
  for (const target of result.targets) console.log(`  [${target.ok ? 'x' : ' '}] ${target.name}: ${target.detail}`);
  const working = timing.untilVerifiedMs - timing.waitsUntilVerifiedMs;
  console.log(
    `  [${working < 60_000 ? 'x' : ' '}] restore, catch-up, flip and full verification under 60 s: ${seconds(working)} (deliberate waits apart: ${seconds(timing.waitMs)})`,
  );
  console.log(
    `  [${timing.overheadMs < 1_000 ? 'x' : ' '}] orchestration overhead under 1 s: ${seconds(timing.overheadMs)}`,
  );
  const pause = Math.max(nonRetrying?.maxWritePauseMs ?? 0, retrying.maxWritePauseMs ?? 0);
  console.log(
    `  [${pause <= 500 ? 'x' : ' '}] longest write pause any client saw ≤ 500 ms: ${pause} ms (non-retrying ` +
      `${nonRetrying?.maxWritePauseMs ?? '–'} ms, retrying ${retrying.maxWritePauseMs ?? '–'} ms; DNS TTL ${env.ttl} s)`,
  );
  if (!result.targets.every((t) => t.ok)) exitCode = 1;
} finally {
  await connection.close();
  await localEnvironment.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Span = [from: number, to: number];

/**
 * From the run's history: its wall time; the time activities ran (summed); the deliberate waits
 * (timers running while no activity does: the verify window, the drain); and what is left, the
 * orchestration itself. The same up to `verifiedAt` (the end of the verifying phase).
 */
function orchestrationTiming(events: HistoryEvent[], verifiedAt: number | undefined) {
  const at = (e: HistoryEvent) => {
    const t = e.eventTime;
    return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
  };
  const started = new Map<string, number>();
  const names = new Map<string, string>();
  const timeline: string[] = [];
  const timers = new Map<string, number>();
  const activitySpans: Span[] = [];
  const timerSpans: Span[] = [];
  for (const event of events) {
    if (event.activityTaskStartedEventAttributes)
      started.set(String(event.activityTaskStartedEventAttributes.scheduledEventId), at(event));
    const end =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    const from = end && started.get(String(end.scheduledEventId));
    if (event.activityTaskScheduledEventAttributes)
      names.set(String(event.eventId), event.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    if (from !== undefined && from !== null) {
      activitySpans.push([from, at(event)]);
      timeline.push(
        `${((from - at(events[0]!)) / 1000).toFixed(2).padStart(7)} s  ${((at(event) - from) / 1000).toFixed(2).padStart(6)} s  ${names.get(String(end!.scheduledEventId))}`,
      );
    }
    if (event.timerStartedEventAttributes) timers.set(String(event.eventId), at(event));
    const fired = event.timerFiredEventAttributes ?? event.timerCanceledEventAttributes;
    const timerFrom = fired && timers.get(String(fired.startedEventId));
    if (timerFrom !== undefined && timerFrom !== null) timerSpans.push([timerFrom, at(event)]);
  }
  const first = at(events[0]!);
  const last = at(events[events.length - 1]!);
  const waits = (until: number) => unionMs([...activitySpans, ...timerSpans], until) - unionMs(activitySpans, until);
  const activityMs = activitySpans.reduce((sum, [from, to]) => sum + to - from, 0);
  const waitMs = waits(last);
  const verified = Math.min(verifiedAt ?? last, last);
  return {
    wallMs: last - first,
    activityMs,
    activities: activitySpans.length,
    waitMs,
    timeline,
    overheadMs: last - first - unionMs([...activitySpans, ...timerSpans], last),
    untilVerifiedMs: verified - first,
    waitsUntilVerifiedMs: waits(verified),
  };
}

/** The length of the union of `spans`, cut at `until`. */
function unionMs(spans: Span[], until: number): number {
  let total = 0;
  let reach = -Infinity;
  for (const [from, to] of [...spans].sort((a, b) => a[0] - b[0])) {
    const end = Math.min(to, until);
    if (end <= reach) continue;
    total += end - Math.max(from, reach);
    reach = end;
  }
  return total;
}

/** Where `at` falls in the switch: seconds from its start and the phase. */
function whenInSwitch(phases: SwitchReport['phases'], at: number): string {
  const start = phases[0] ? Date.parse(phases[0].startedAt) : at;
  const phase = [...phases].reverse().find((p) => Date.parse(p.startedAt) <= at);
  const into = phase
    ? ` (${((at - Date.parse(phase.startedAt)) / 1000).toFixed(2)} s into ${phase.name})`
    : ' (before the switch started)';
  return `${((at - start) / 1000).toFixed(2)} s after the switch started${into}`;
}
