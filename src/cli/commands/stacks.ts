/**
 * `switchyard stacks`: the environment's stacks, newest first, each with its role
 * (src/switch/roles.ts: live, writer, previous) and its fence as the stack itself reports it.
 */
import { resolveSecret } from '../../config/environment.ts';
import { createAdminClient } from '../../navcloud/admin-client.ts';
import { observeStacks } from '../../switch/observe.ts';
import { stackRoles, type Observation, type StackRoles } from '../../switch/roles.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { readLocalState } from '../../local/state.ts';

/** A listing waits this long at most for a stack's admin API: one that does not answer is shown as such. */
const ADMIN_TIMEOUT_MS = 5_000;

export const stacksCommand: CommandModule = (program, cli) => {
  program
    .command('stacks')
    .description('list the stacks of an environment with their roles: live, writer, previous')
    .requiredOption(...ENV_OPTION)
    .option('--json', 'print them as JSON')
    .action((options: { env: string; json?: boolean }) => listStacks(cli, options));
};

async function listStacks(cli: Cli, options: { env: string; json?: boolean }): Promise<void> {
  const environment = await cli.environment(options.env);
  // The cloud adapters pull in the AWS SDK: only the commands that need them pay for loading them.
  const { createPorts } = await import('../../cloud/factory.ts');
  const jwtSecret = resolveSecret(environment.jwtSecret);
  const seen = await observeStacks({
    env: environment.name,
    recordName: environment.recordName,
    ports: createPorts(environment, cli.logger, readLocalState),
    admin: (adminUrl) => createAdminClient({ adminUrl, jwtSecret, requestTimeoutMs: ADMIN_TIMEOUT_MS }),
  });
  const roles = stackRoles(seen);
  const rows = seen.stacks.map((stack) => ({
    name: stack.name,
    colour: stack.colour,
    status: stack.status,
    rawStatus: stack.rawStatus,
    createdAt: stack.createdAt,
    workflowId: stack.workflowId,
    live: stack.name === roles.live?.name,
    roles: rolesOf(stack.name, roles),
    fence: fenceOf(stack.name, seen),
  }));
  const { record } = seen;
  if (options.json) {
    cli.out(
      JSON.stringify(
        {
          env: environment.name,
          recordName: environment.recordName,
          live: roles.live?.name ?? record?.stack ?? null,
          writer: roles.writer?.name ?? null,
          previous: roles.previous?.name ?? null,
          stacks: rows,
        },
        null,
        2,
      ),
    );
    return;
  }
  const lines = [
    `${environment.recordName} → ${record ? record.stack || 'a target of no stack' : 'nothing (no record)'}`,
  ];
  if (rows.length === 0) lines.push(`no stacks of ${environment.name}`);
  for (const row of rows) {
    lines.push(
      `${row.live ? '*' : ' '} ${row.name}  ${row.colour.padEnd(5)}  ${row.status.padEnd(8)} ${row.rawStatus.padEnd(20)} ${row.createdAt}  ${row.workflowId}` +
        `  ${[...row.roles, row.fence].join(', ')}`,
    );
  }
  if (record && !roles.live)
    lines.push(
      `warning: DNS points to ${record.stack || 'a target'}, which is not among the stacks of ${environment.name}`,
    );
  cli.out(lines.join('\n'));
}

function rolesOf(name: string, roles: StackRoles): string[] {
  return (['live', 'writer', 'previous'] as const).filter((role) => roles[role]?.name === name);
}

function fenceOf(name: string, seen: Observation): string {
  const state = seen.states[name];
  const silent = seen.silent?.[name];
  if (silent !== undefined) return `no answer (${silent})`;
  if (!state) return 'no outputs';
  const forwarding = state.fence.mode === 'forwarding' ? ` to ${state.fence.forwardTo}` : '';
  return `${state.fence.mode}${forwarding} (epoch ${state.fence.epoch})${state.draining ? ', draining' : ''}`;
}
