/**
 * `switchyard gc --env E`: deletes the stacks of switches and rollbacks that are over (failed,
 * cancelled, terminated), never the live one, one a running switch or rollback owns, or the
 * previous live stack a rollback would return to. Every switch does the same when it starts.
 */
import { statusQuery, EXIT } from '../../switch/contract.ts';
import { collectGarbage } from '../../switch/collect-garbage.ts';
import { resolveSecret } from '../../config/environment.ts';
import { createAdminClient } from '../../navcloud/admin-client.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { findSwitch } from '../switches.ts';
import { readLocalState } from '../../local/state.ts';

interface GcOptions {
  env: string;
  dryRun?: boolean;
  json?: boolean;
}

export const gcCommand: CommandModule = (program, cli) => {
  program
    .command('gc')
    .description(
      'delete the stacks of switches and rollbacks that are over; never the live one or one a running switch owns',
    )
    .requiredOption(...ENV_OPTION)
    .option('--dry-run', 'only list what would be deleted')
    .option('--json', 'print the result as JSON')
    .action((options: GcOptions) => runGc(cli, options));
};

async function runGc(cli: Cli, options: GcOptions): Promise<void> {
  const environment = await cli.environment(options.env);
  // The cloud adapters pull in the AWS SDK: only the commands that need them pay for loading them.
  const { createPorts } = await import('../../cloud/factory.ts');
  const client = await cli.client();
  const jwtSecret = resolveSecret(environment.jwtSecret);
  const result = await collectGarbage({
    env: environment.name,
    recordName: environment.recordName,
    keepStacks: environment.keepStacks,
    ports: createPorts(environment, cli.logger, readLocalState),
    admin: (adminUrl) => createAdminClient({ adminUrl, jwtSecret }),
    dryRun: options.dryRun,
    logger: cli.logger,
    owned: async () => {
      const running = await findSwitch(client, environment.name, true);
      if (!running) return [];
      // A running switch or rollback answers `status` with the stacks it works on.
      const status = await running.handle.query(statusQuery).catch((err: unknown) => {
        throw new ExitError(
          EXIT.busy,
          `${running.description.workflowId} is running and did not say which stacks it owns: ${(err as Error).message}`,
        );
      });
      return [status.from?.stack, status.to?.stack].filter((s): s is string => Boolean(s));
    },
  });
  if (options.json) cli.out(JSON.stringify({ env: environment.name, ...result }, null, 2));
  else {
    const verb = options.dryRun ? 'would delete' : 'deleted';
    cli.out(
      [
        `${environment.recordName} → ${result.live ?? 'nothing'}`,
        result.deleted.length ? `${verb}: ${result.deleted.join(', ')}` : 'nothing to delete',
        ...result.failed.map((f) => `could not delete ${f.stack}: ${f.reason}`),
      ].join('\n'),
    );
  }
  if (result.failed.length) cli.exitCode = EXIT.failed;
}
