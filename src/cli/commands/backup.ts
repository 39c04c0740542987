/** `switchyard backup`: exports the live stack of an environment to its backup store (workflow `backupStack`). */
import { backupWorkflowId, type BackupReport } from '../../switch/contract.ts';
import type { backupStack } from '../../../workflows/backup-stack.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { runToEnd } from '../switches.ts';

export const backupCommand: CommandModule = (program, cli) => {
  program
    .command('backup')
    .description('back up the live stack of an environment now')
    .requiredOption(...ENV_OPTION)
    .option('--json', 'print the backup report as JSON')
    .action((options: { env: string; json?: boolean }) => runBackup(cli, options));
};

async function runBackup(cli: Cli, options: { env: string; json?: boolean }): Promise<void> {
  const environment = await cli.environment(options.env);
  const client = await cli.client();
  const workflowId = backupWorkflowId(environment.name);
  const report: BackupReport = await runToEnd(`backup of ${environment.name}`, workflowId, () =>
    client.workflow.execute<typeof backupStack>('backupStack', {
      workflowId,
      taskQueue: cli.taskQueue,
      args: [{ env: environment.name }],
      staticSummary: `back up the live stack of ${environment.name}`,
    }),
  );
  if (options.json) cli.out(JSON.stringify(report, null, 2));
  else {
    const pruned = report.pruned.length ? `; pruned ${report.pruned.length} older backup(s)` : '';
    cli.out(`backed up ${report.stack} of ${environment.name} to ${report.key} (${report.items} items)${pruned}`);
  }
}
