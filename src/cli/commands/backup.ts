/** `switchyard backup`: exports the live stack of an environment to its backup store (workflow `backupStack`). */
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { backupWorkflowId, type BackupReport } from '../../../workflows/definitions.ts';
import type { backupStack } from '../../../workflows/backup-stack.ts';
import { EXIT } from '../../switch/contract.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { rootCause } from '../switches.ts';

export const backupCommand: CommandModule = (program, cli) => {
  program.command('backup')
    .description('back up the live stack of an environment now')
    .requiredOption(...ENV_OPTION)
    .option('--json', 'print the backup report as JSON')
    .action((options: { env: string; json?: boolean }) => runBackup(cli, options));
};

async function runBackup(cli: Cli, options: { env: string; json?: boolean }): Promise<void> {
  const environment = await cli.environment(options.env);
  const client = await cli.client();
  const workflowId = backupWorkflowId(environment.name);
  let report: BackupReport;
  try {
    report = await client.workflow.execute<typeof backupStack>('backupStack', {
      workflowId, taskQueue: cli.taskQueue, args: [{ env: environment.name }],
      staticSummary: `back up the live stack of ${environment.name}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new ExitError(EXIT.busy, `a backup of ${environment.name} is already running (${workflowId})`);
    }
    if (err instanceof WorkflowFailedError) throw new ExitError(EXIT.failed, `backup of ${environment.name} failed: ${rootCause(err)}`, { cause: err });
    throw err;
  }
  if (options.json) cli.out(JSON.stringify(report, null, 2));
  else {
    const pruned = report.pruned.length ? `; pruned ${report.pruned.length} older backup(s)` : '';
    cli.out(`backed up ${report.stack} of ${environment.name} to ${report.key} (${report.items} items)${pruned}`);
  }
}
