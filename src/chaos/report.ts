/** What `npm run chaos` prints: one line per run, the command that replays a failed one, a table per fault kind. */
import type { ClientFigures } from '../switch/contract.ts';
import type { JudgeName } from './judges.ts';
import { describeFault } from './plan.ts';
import type { RunResult } from './run.ts';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** The longest write pause any client saw, retrying or not. */
export function longestPause(clients: ClientFigures): number {
  return Math.max(clients.maxWritePauseMs ?? 0, clients.nonRetrying?.maxWritePauseMs ?? 0);
}

const verdictOf = (result: RunResult, judge: JudgeName) => result.verdicts.find((v) => v.judge === judge)!;

/**
 * One line per run, e.g.:
 *   #3 seed 42 rollback worker:stop 12.3s@8.1s → rolled-back in 21.0s | plain 3/1204 failed | pause 10.2s | lost 0
 *   | linearizable yes | one writer yes | streams yes | recovered yes | PASS   (all on one line)
 */
export function runLine(result: RunResult): string {
  const { plan, evidence } = result;
  const plain = evidence.clients.nonRetrying;
  const lost = evidence.clients.writesLost + (plain?.writesLost ?? 0);
  const yes = (judge: JudgeName) => (verdictOf(result, judge).ok ? 'yes' : 'NO');
  const faults = result.strikes.map((s) => `${describeFault(s.fault)}${s.struck ? '' : ' (not struck)'}`).join(' + ');
  return [
    `#${plan.run} seed ${plan.seed} ${plan.action.padEnd(8)} ${faults} → ${result.end} in ${seconds(evidence.closedAfterMs)}`,
    `plain ${plain?.failedRequests ?? 0}/${plain?.requests ?? 0} failed`,
    `pause ${seconds(longestPause(evidence.clients))}`,
    `lost ${lost}`,
    `linearizable ${yes('linearizable')}`,
    `one writer ${yes('one writer')}`,
    `streams ${yes('streams')}`,
    `recovered ${yes('recovered')}`,
    result.ok ? 'PASS' : 'FAIL',
  ].join(' | ');
}

/** What a failed run's judges said, and the command that runs the same plan again. */
export function failureLines(result: RunResult, replay: string): string[] {
  return [
    `    clients were on ${result.from} when it began${result.prepared ? ` (${result.prepared})` : ''}`,
    ...result.verdicts.filter((v) => !v.ok).map((v) => `    ${v.judge}: ${v.detail}`),
    ...(result.reason ? [`    the run's own reason: ${result.reason}`] : []),
    ...result.strikes.map((s) => `    fault ${describeFault(s.fault)}: ${s.detail}`),
    ...(result.history ? [`    the clients' history: ${result.history}`] : []),
    `    replay: ${replay}`,
  ];
}

/**
 * One row per fault kind (target:mode) that struck; a run with two counts under both, a run whose
 * faults all came after it was over under `none struck`.
 */
export function faultTable(results: RunResult[]): string {
  const rows = new Map<
    string,
    {
      runs: number;
      failed: number;
      lost: number;
      nonLinearizable: number;
      twoWriters: number;
      streams: number;
      unrecovered: number;
      pauseMs: number;
    }
  >();
  for (const result of results) {
    const struck = result.strikes.filter((s) => s.struck).map((s) => `${s.fault.target}:${s.fault.mode}`);
    for (const kind of struck.length ? new Set(struck) : ['none struck']) {
      const row = rows.get(kind) ?? {
        runs: 0,
        failed: 0,
        lost: 0,
        nonLinearizable: 0,
        twoWriters: 0,
        streams: 0,
        unrecovered: 0,
        pauseMs: 0,
      };
      row.runs++;
      if (!result.ok) row.failed++;
      row.lost += result.evidence.clients.writesLost + (result.evidence.clients.nonRetrying?.writesLost ?? 0);
      if (!verdictOf(result, 'linearizable').ok) row.nonLinearizable++;
      if (!verdictOf(result, 'one writer').ok) row.twoWriters++;
      if (!verdictOf(result, 'streams').ok) row.streams++;
      if (!verdictOf(result, 'recovered').ok) row.unrecovered++;
      row.pauseMs = Math.max(row.pauseMs, longestPause(result.evidence.clients));
      rows.set(kind, row);
    }
  }
  const head = [
    'fault',
    'runs',
    'failed',
    'lost writes',
    'not linearizable',
    'two writers',
    'stream faults',
    'not recovered',
    'longest pause',
  ];
  const body = [...rows.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, r]) => [
      kind,
      String(r.runs),
      String(r.failed),
      String(r.lost),
      String(r.nonLinearizable),
      String(r.twoWriters),
      String(r.streams),
      String(r.unrecovered),
      seconds(r.pauseMs),
    ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body]
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}
