/**
 * `switchyard rollback`: points DNS back at the previous stack (workflow `rollback`), carrying the
 * writes the current stack took meanwhile. Refused while a switch of the environment runs.
 */
import { rollbackWorkflowId, type RollbackInput, type RollbackReport, EXIT } from '../../switch/contract.ts';
import type { rollback } from '../../../workflows/rollback.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { busyError, findSwitch, runToEnd } from '../switches.ts';

interface RollbackOptions {
  env: string;
  by?: string;
  comment?: string;
  json?: boolean;
}

export const rollbackCommand: CommandModule = (program, cli) => {
  program
    .command('rollback')
    .description('send clients back to the previous stack, if it still exists')
    .requiredOption(...ENV_OPTION)
    .option('--by <who>', 'who rolls back (default: $USER)')
    .option('--comment <text>', 'why')
    .option('--json', 'print the rollback report as JSON')
    .action((options: RollbackOptions) => runRollback(cli, options));
};

async function runRollback(cli: Cli, options: RollbackOptions): Promise<void> {
  const environment = await cli.environment(options.env);
  const by = options.by ?? cli.io.env.USER;
  if (!by) throw new ExitError(EXIT.usage, '--by is required when USER is not set: say who rolls back');
  const client = await cli.client();
  const running = await findSwitch(client, environment.name, true);
  if (running) throw busyError(environment.name, running.description.workflowId, running.description.startTime);

  const input: RollbackInput = { env: environment.name, by, ...(options.comment ? { comment: options.comment } : {}) };
  const workflowId = rollbackWorkflowId(environment.name);
  const report: RollbackReport = await runToEnd(`rollback of ${environment.name}`, workflowId, () =>
    client.workflow.execute<typeof rollback>('rollback', {
      workflowId,
      taskQueue: cli.taskQueue,
      args: [input],
      staticSummary: `roll ${input.env} back to its previous stack (by ${by})`,
      ...(input.comment ? { staticDetails: `**Why:** ${input.comment}` } : {}),
    }),
  );
  if (options.json) cli.out(JSON.stringify(report, null, 2));
  else if (report.outcome === 'rolled-back')
    cli.out(`rolled ${environment.name} back from ${report.from} to ${report.to} (${workflowId}, by ${report.by})`);
  else cli.err(`switchyard: rollback of ${environment.name} failed: ${report.reason ?? 'no reason given'}`);
  cli.exitCode = report.outcome === 'rolled-back' ? EXIT.switched : EXIT.failed;
}
