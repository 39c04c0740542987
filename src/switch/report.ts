/**
 * The switch report as people and CI read it: Markdown for a terminal or a CI summary, JSON for
 * archiving (README.md). The report itself is produced by the workflow; this only renders it.
 */
import type {
  SwitchReport,
  StackRefSummary,
  ClientFigures,
  CopyFigures,
  RehearsalFigures,
  WritePause,
} from './contract.ts';

/** 850 ms, 12.3 s, 4m 05s, 1h 02m: short enough for a progress line, exact enough for a report. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const totalSeconds = Math.floor(ms / 1_000);
  const hours = Math.floor(totalSeconds / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, '0')}m`;
  return `${minutes}m ${String(seconds).padStart(2, '0')}s`;
}

/** Table cells must not break the table: pipes escaped, line breaks flattened. */
function cell(value: string): string {
  return value.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function stack(ref: StackRefSummary | undefined): string {
  return ref ? `${ref.stack} (${ref.colour})` : '–';
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

const CLIENT_FIGURES: Array<[keyof ClientFigures, string]> = [
  ['requests', 'Requests'],
  ['failedRequests', 'Failed requests (after retries)'],
  ['writesAcknowledged', 'Writes acknowledged'],
  ['writesLost', 'Writes lost'],
  ['streams', 'Streams'],
  ['streamsReconnected', 'Stream reconnections (each after a loss)'],
  ['maxReconnectMs', 'Longest reconnect (ms)'],
  ['duplicateEvents', 'Duplicate events'],
  ['missedEvents', 'Missed events'],
  ['maxWritePauseMs', 'Longest write pause (ms)'],
];

function clientRows(clients: ClientFigures): string[][] {
  return CLIENT_FIGURES.filter(([key]) => clients[key] !== undefined).map(([key, label]) => [
    label,
    String(clients[key]),
  ]);
}

export function renderMarkdown(report: SwitchReport): string {
  const took = Date.parse(report.finishedAt) - Date.parse(report.startedAt);
  const summary: string[][] = [
    ['Workflow', report.runId ? `${report.workflowId} (run ${report.runId})` : report.workflowId],
    ['Outcome', report.outcome],
  ];
  if (report.reason) summary.push(['Reason', report.reason]);
  summary.push(
    ['Trigger', report.trigger],
    ['Version', report.version],
    ['From', stack(report.from)],
    ['To', stack(report.to)],
    ['Backup', report.backup ? `${report.backup.key} (${report.backup.items} items)` : '–'],
    ['Started', report.startedAt],
    ['Finished', `${report.finishedAt} (took ${formatDuration(took)})`],
  );
  if (report.writePause) summary.push(['Write pause (fence to forward)', describeWritePause(report.writePause)]);
  if (report.verification) {
    const { itemsCompared, mismatches, firstMismatches } = report.verification;
    const first = firstMismatches.map((m) => `${m.id} (${m.problem})`).join(', ');
    summary.push([
      'Data verified',
      `${itemsCompared} items compared, ${mismatches} mismatched${first ? `: ${first}` : ''}`,
    ]);
  }
  if (report.approval) {
    const { decision, by, comment, at } = report.approval;
    summary.push(['Approval', `${decision} by ${by} at ${at}${comment ? `: ${comment}` : ''}`]);
  }

  const lines = [
    `# ${report.rehearsal ? 'Rehearsal of a switch' : 'Switch'} of ${report.env}: ${report.outcome}`,
    '',
    ...table(['', ''], summary),
  ];
  if (report.warnings?.length)
    lines.push('', '## Warnings', '', ...report.warnings.map((warning) => `- ${warning.replace(/\r?\n/g, ' ')}`));
  lines.push('', '## Phases', '');
  lines.push(
    ...(report.phases.length
      ? table(
          ['Phase', 'Started', 'Duration'],
          report.phases.map((p) => [p.name, p.startedAt, formatDuration(p.durationMs)]),
        )
      : ['No phase ran.']),
  );
  lines.push('', '## Smoke checks', '');
  lines.push(
    ...(report.smoke.checks.length
      ? table(
          ['Check', 'Result', 'Duration', 'Detail'],
          report.smoke.checks.map((c) => [
            c.name,
            c.ok ? 'ok' : 'FAILED',
            formatDuration(c.durationMs),
            c.detail ?? '',
          ]),
        )
      : ['No smoke check ran.']),
  );
  if (report.rehearsal) lines.push('', '## What a switch would have done', '', ...rehearsalLines(report.rehearsal));
  if (report.clients) {
    const clients = report.clients;
    lines.push('', '## Synthetic clients', '');
    lines.push(...table(['Figure', 'Value'], clientRows(clients)));
    if (clients.nonRetrying)
      lines.push(
        '',
        '### Clients that never retry',
        '',
        ...table(['Figure', 'Value'], clientRows(clients.nonRetrying)),
      );
    const verdict = clients.linearizability;
    if (verdict)
      lines.push(
        '',
        `Porcupine (per-key linearizability): ${verdict.result} over ${verdict.operations} operations on ` +
          `${verdict.keys} items${verdict.violations.length ? `; violations: ${verdict.violations.join(', ')}` : ''}`,
      );
  }
  return `${lines.join('\n')}\n`;
}

function rehearsalLines(rehearsal: RehearsalFigures): string[] {
  const { lastDelta, predictedWritePauseMs } = rehearsal;
  const rows = [
    ['Would have switched', rehearsal.wouldSwitch ? 'yes' : 'no'],
    ...rehearsal.catchUpPasses.map((pass, i) => [`Catch-up pass ${i + 1}`, copied(pass)]),
    ['Last delta (what the fence would have copied)', lastDelta ? copied(lastDelta) : '– (no stack served clients)'],
    ['Predicted write pause', predictedWritePauseMs === undefined ? '–' : formatDuration(predictedWritePauseMs)],
  ];
  return table(['Figure', 'Value'], rows);
}

function copied(copy: CopyFigures): string {
  return `${copy.items} items in ${formatDuration(copy.durationMs)}`;
}

export function renderJson(report: SwitchReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The pause, and what the old stack held and forwarded once the drain looked at it. */
export function describeWritePause(pause: WritePause): string {
  const counts =
    pause.requestsForwarded === undefined
      ? ''
      : `; the old stack held ${count(pause.requestsHeld ?? 0, 'write')}${pause.holdsTimedOut ? ` (${pause.holdsTimedOut} ran out and were refused)` : ''} ` +
        `and forwarded ${count(pause.requestsForwarded, 'request')}`;
  return `${formatDuration(pause.fenceToForwardMs)}${counts}`;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}
