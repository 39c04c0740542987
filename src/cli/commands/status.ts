/** `switchyard status`: what the environment's current (or last) switch is doing, from its `status` query. */
import { statusQuery, EXIT, type SwitchStatus } from '../../switch/contract.ts';
import { describeWritePause, formatDuration } from '../../switch/report.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { describeProgress } from '../progress.ts';
import { findSwitch } from '../switches.ts';

const QUERY_DEADLINE_MS = 5_000;

export const statusCommand: CommandModule = (program, cli) => {
  program
    .command('status')
    .description('show the current or last switch of an environment')
    .requiredOption(...ENV_OPTION)
    .option('--json', 'print the status as JSON')
    .action((options: { env: string; json?: boolean }) => runStatus(cli, options));
};

async function runStatus(cli: Cli, options: { env: string; json?: boolean }): Promise<void> {
  const environment = await cli.environment(options.env);
  const client = await cli.client();
  const found = await findSwitch(client, environment.name, false);
  if (!found) throw new ExitError(EXIT.failed, `no switch of ${environment.name} has been started`);
  const { description, handle } = found;
  let status: SwitchStatus;
  try {
    status = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery));
  } catch (err) {
    throw new ExitError(
      EXIT.failed,
      `${description.workflowId} is ${description.status.name} but its status query did not answer (is a worker running?)`,
      { cause: err },
    );
  }
  const execution = {
    workflowId: description.workflowId,
    runId: description.runId,
    execution: description.status.name,
    startedAt: description.startTime.toISOString(),
    ...(description.closeTime ? { closedAt: description.closeTime.toISOString() } : {}),
  };
  if (options.json) {
    cli.out(JSON.stringify({ ...execution, status }, null, 2));
    return;
  }
  const elapsed = (description.closeTime ?? new Date()).getTime() - description.startTime.getTime();
  const lines = [
    `${execution.workflowId} (run ${execution.runId}): ${execution.execution}, started ${execution.startedAt}`,
    describeProgress(status, elapsed),
  ];
  if (status.from) lines.push(`from: ${status.from.stack} (${status.from.colour})`);
  if (status.to) lines.push(`to: ${status.to.stack} (${status.to.colour})`);
  if (status.backup) lines.push(`backup: ${status.backup.key} (${status.backup.items} items)`);
  if (status.writePause) lines.push(`write pause: ${describeWritePause(status.writePause)}`);
  for (const phase of status.phases)
    lines.push(`  ${phase.name.padEnd(18)} ${phase.startedAt}  ${formatDuration(phase.durationMs)}`);
  for (const check of status.smoke ?? [])
    lines.push(`  smoke ${check.ok ? 'ok    ' : 'FAILED'} ${check.name}${check.detail ? `: ${check.detail}` : ''}`);
  if (status.approval)
    lines.push(
      `${status.approval.decision} by ${status.approval.by} at ${status.approval.at}${status.approval.comment ? `: ${status.approval.comment}` : ''}`,
    );
  if (status.error) lines.push(`error: ${status.error}`);
  cli.out(lines.join('\n'));
}
