/** `switchyard stacks`: the environment's stacks, newest first, and which one DNS sends clients to. */
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { readLocalState } from '../../local/state.ts';

export const stacksCommand: CommandModule = (program, cli) => {
  program.command('stacks')
    .description('list the stacks of an environment and which one is live')
    .requiredOption(...ENV_OPTION)
    .option('--json', 'print them as JSON')
    .action((options: { env: string; json?: boolean }) => listStacks(cli, options));
};

async function listStacks(cli: Cli, options: { env: string; json?: boolean }): Promise<void> {
  const environment = await cli.environment(options.env);
  // The cloud adapters pull in the AWS SDK: only this command pays for loading them.
  const { createPorts } = await import('../../cloud/factory.ts');
  const ports = createPorts(environment, cli.logger, readLocalState);
  const [stacks, record] = await Promise.all([ports.stacks.list(environment.name), ports.dns.current(environment.recordName)]);
  const rows = stacks.map((stack) => ({
    name: stack.name,
    colour: stack.colour,
    status: stack.status,
    rawStatus: stack.rawStatus,
    createdAt: stack.createdAt,
    workflowId: stack.workflowId,
    live: stack.name === record?.stack,
  }));
  if (options.json) {
    cli.out(JSON.stringify({ env: environment.name, recordName: environment.recordName, live: record?.stack ?? null, stacks: rows }, null, 2));
    return;
  }
  const lines = [`${environment.recordName} → ${record ? record.stack : 'nothing (no record)'}`];
  if (rows.length === 0) lines.push(`no stacks of ${environment.name}`);
  for (const row of rows) {
    lines.push(`${row.live ? '*' : ' '} ${row.name}  ${row.colour.padEnd(5)}  ${row.status.padEnd(8)} ${row.rawStatus.padEnd(20)} ${row.createdAt}  ${row.workflowId}`);
  }
  if (record && !rows.some((row) => row.live)) lines.push(`warning: DNS points to ${record.stack}, which is not among the stacks of ${environment.name}`);
  cli.out(lines.join('\n'));
}
