/**
 * `switchyard fleet`: the nodes of an environment's stacks (the live one by default): list them,
 * read their logs merged, their statistics, run a command on all of them, restart them rolling.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Environment } from '../../config/environment.ts';
import { EXIT } from '../../switch/contract.ts';
import type { Fleet, FleetScope, NodeRow, StatsRow } from '../../operations/fleet/fleet.ts';
import type { ExecResult, LogLine } from '../../operations/fleet/port.ts';
import { ENV_OPTION, type CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { wholeNumber } from '../options.ts';

interface ScopeOptions {
  env: string;
  stack?: string;
  all?: boolean;
  node?: string;
  json?: boolean;
}

interface LogsOptions extends ScopeOptions {
  since?: string;
  grep?: string;
  follow?: boolean;
}

interface ExecOptions extends ScopeOptions {
  parallel: number;
  timeout: number;
  yes?: boolean;
  by?: string;
}

/** Every subcommand names its environment and, optionally, which stacks and node. */
function scoped(command: Command, withNode = true): Command {
  command
    .requiredOption(...ENV_OPTION)
    .option('--stack <name>', 'one stack of the environment (default: the live one)')
    .option('--all', 'every stack of the environment')
    .option('--json', 'machine-readable output');
  if (withNode) command.option('--node <id>', 'one node (an id from `fleet list`)');
  return command;
}

export const fleetCommand: CommandModule = (program, cli) => {
  const fleet = program
    .command('fleet')
    .description("operate the nodes of an environment's stacks (the live stack unless --stack or --all)");
  scoped(
    fleet.command('list').description('the nodes: stack, colour, live, address, status, version, uptime, open streams'),
    false,
  ).action((options: ScopeOptions) => list(cli, options));
  scoped(fleet.command('logs').description("every node's log merged in time order, each line prefixed by its node"))
    .option('--since <when>', 'only lines since: 30s, 10m, 2h, 1d or an ISO time')
    .option('--grep <pattern>', 'only lines matching this regular expression')
    .option('--follow', 'keep printing new lines until Ctrl-C')
    .action((options: LogsOptions) => logs(cli, options));
  scoped(
    fleet
      .command('stats')
      .description('per node: CPU, resident memory, load, open files, event-loop lag, open streams, requests/s'),
  ).action((options: ScopeOptions) => stats(cli, options));
  scoped(
    fleet
      .command('exec')
      .description('run a shell command on every node, in parallel; the exit status is 1 when any node failed'),
  )
    .argument('[command...]', 'the command, after --')
    .option('--parallel <k>', 'nodes at once', wholeNumber(1, 100), 8)
    .option('--timeout <seconds>', 'per node', wholeNumber(1, 86_400), 60)
    .option('--yes', 'confirm, on an environment with approval: manual')
    .option('--by <who>', 'who runs it, for the log (default: $USER)')
    .action((command: string[], options: ExecOptions) => exec(cli, command, options));
  scoped(
    fleet
      .command('restart')
      .description('rolling restart: each node drained, restarted and ready again before the next'),
  )
    .option('--by <who>', 'who restarts, for the log (default: $USER)')
    .action((options: ScopeOptions & { by?: string }) => restart(cli, options));
};

async function open(
  cli: Cli,
  options: ScopeOptions,
): Promise<{ environment: Environment; fleet: Fleet; scope: FleetScope }> {
  if (options.all && options.stack)
    throw new ExitError(EXIT.usage, '--stack and --all exclude each other: name one stack or ask for all');
  const environment = await cli.environment(options.env);
  // The platforms pull in the AWS SDK: only fleet commands pay for loading them.
  const { createFleet } = await import('../../operations/fleet/factory.ts');
  return {
    environment,
    fleet: createFleet(environment, cli.logger),
    scope: { stack: options.stack, all: options.all, node: options.node },
  };
}

/** FleetInputError (unknown stack or node, nothing live) is the person's to fix: exit 2. */
async function asUsage<T>(work: Promise<T>): Promise<T> {
  const { FleetInputError } = await import('../../operations/fleet/fleet.ts');
  try {
    return await work;
  } catch (err) {
    if (err instanceof FleetInputError) throw new ExitError(EXIT.usage, err.message, { cause: err });
    throw err;
  }
}

async function list(cli: Cli, options: ScopeOptions): Promise<void> {
  const { environment, fleet, scope } = await open(cli, options);
  const rows = await asUsage(fleet.list(scope));
  if (options.json) return cli.out(JSON.stringify({ env: environment.name, nodes: rows }, null, 2));
  cli.out(
    table(
      ['STACK', 'COLOUR', 'LIVE', 'NODE', 'ADDRESS', 'STATUS', 'VERSION', 'UPTIME', 'STREAMS'],
      rows.map((row: NodeRow) => [
        row.stack,
        row.colour,
        row.live ? 'live' : '',
        row.id,
        row.address,
        row.status,
        row.version ?? '-',
        row.uptimeSeconds === undefined ? '-' : duration(row.uptimeSeconds),
        row.openStreams === undefined ? '-' : String(row.openStreams),
      ]),
    ),
  );
  if (rows.some((row) => row.status === 'unreachable' || row.status === 'stopped')) cli.exitCode = EXIT.failed;
}

async function logs(cli: Cli, options: LogsOptions): Promise<void> {
  const { parseSince, readableLine } = await import('../../operations/fleet/lines.ts');
  const since = options.since === undefined ? undefined : parseSince(options.since);
  if (options.since !== undefined && since === undefined)
    throw new ExitError(EXIT.usage, `--since must be like 30s, 10m, 2h, 1d or an ISO time, got '${options.since}'`);
  let grep: RegExp | undefined;
  try {
    grep = options.grep === undefined ? undefined : new RegExp(options.grep);
  } catch (err) {
    throw new ExitError(EXIT.usage, `--grep '${options.grep}' is not a regular expression: ${(err as Error).message}`);
  }
  const { fleet, scope } = await open(cli, options);
  const show = options.json ? (line: LogLine) => JSON.stringify(line) : readableLine(Boolean(cli.io.stdout.isTTY));
  const print = (lines: LogLine[]) => {
    if (lines.length) cli.out(lines.map(show).join('\n'));
  };
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  try {
    await asUsage(fleet.logs(scope, { since, grep, follow: Boolean(options.follow), signal: stop.signal }, print));
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    process.off('SIGINT', interrupt);
  }
}

async function stats(cli: Cli, options: ScopeOptions): Promise<void> {
  const { environment, fleet, scope } = await open(cli, options);
  const rows = await asUsage(fleet.stats(scope));
  if (rows.some((row) => row.problem)) cli.exitCode = EXIT.failed;
  if (options.json) return cli.out(JSON.stringify({ env: environment.name, nodes: rows }, null, 2));
  cli.out(
    table(
      ['NODE', 'CPU', 'RSS', 'LOAD', 'FILES', 'LOOP LAG', 'STREAMS', 'REQ/S'],
      rows.map((row: StatsRow) => [
        row.node,
        row.os ? `${row.os.cpuPercent.toFixed(1)}%` : '-',
        row.os ? `${(row.os.rssBytes / 1024 / 1024).toFixed(0)} MiB` : '-',
        row.os ? row.os.load.map((l) => l.toFixed(2)).join(' ') : '-',
        row.os ? String(row.os.openFiles) : '-',
        row.eventLoopLagMs === undefined ? '-' : `${row.eventLoopLagMs} ms`,
        row.openStreams === undefined ? '-' : String(row.openStreams),
        row.requestRate === undefined ? '-' : row.requestRate.toFixed(1),
      ]),
    ),
  );
  for (const row of rows) if (row.problem) cli.err(`${row.node}: ${row.problem}`);
}

async function exec(cli: Cli, words: string[], options: ExecOptions): Promise<void> {
  const command = words.join(' ').trim();
  if (!command)
    throw new ExitError(
      EXIT.usage,
      'fleet exec needs a command after --, e.g. switchyard fleet exec --env dev -- uptime',
    );
  const by = who(cli, options.by);
  const { environment, fleet, scope } = await open(cli, options);
  if (environment.approval === 'manual' && !options.yes) {
    throw new ExitError(
      EXIT.usage,
      `environment ${environment.name} has approval: manual: add --yes to run '${command}' on its nodes`,
    );
  }
  const log = audit(cli).child({ by, env: environment.name, command });
  const { nodes, results } = await asUsage(
    fleet.exec(scope, command, {
      parallel: options.parallel,
      timeoutSeconds: options.timeout,
      onStart: (targets) =>
        log.info(
          { stacks: [...new Set(targets.map((n) => n.stack))], nodes: targets.map((n) => n.id) },
          'fleet exec started',
        ),
    }),
  );
  const failed = results.filter((r) => r.exitCode !== 0);
  log.info({ nodes: nodes.length, failed: failed.map((r) => r.node) }, 'fleet exec finished');
  if (options.json) cli.out(JSON.stringify({ env: environment.name, command, results }, null, 2));
  else {
    for (const result of results) {
      const prefix = (text: string) =>
        text
          .replace(/\n$/, '')
          .split('\n')
          .map((line) => `${result.node} | ${line}`)
          .join('\n');
      if (result.stdout) cli.out(prefix(result.stdout));
      if (result.stderr) cli.err(prefix(result.stderr));
    }
    cli.out(
      results
        .map(
          (r: ExecResult) => `${r.node}  ${r.timedOut ? `timed out after ${options.timeout} s` : `exit ${r.exitCode}`}`,
        )
        .join('\n'),
    );
  }
  if (failed.length) {
    throw new ExitError(
      EXIT.failed,
      `${failed.length} of ${results.length} nodes failed: ${failed.map((r) => `${r.node} (${r.timedOut ? 'timed out' : `exit ${r.exitCode}`})`).join(', ')}`,
    );
  }
}

async function restart(cli: Cli, options: ScopeOptions & { by?: string }): Promise<void> {
  const by = who(cli, options.by);
  const { environment, fleet, scope } = await open(cli, options);
  const { FleetRestartError } = await import('../../operations/fleet/fleet.ts');
  audit(cli).info(
    { by, env: environment.name, stack: options.stack ?? (options.all ? 'all' : 'live'), node: options.node },
    'fleet restart',
  );
  let restarted: string[];
  try {
    restarted = await asUsage(
      fleet.restart(scope, (node, step) => {
        if (!options.json) cli.err(`${node.id}: ${step}`);
      }),
    );
  } catch (err) {
    if (err instanceof FleetRestartError) {
      if (options.json)
        cli.out(JSON.stringify({ env: environment.name, restarted: err.restarted, stopped: err.message }, null, 2));
      throw new ExitError(EXIT.failed, err.message, { cause: err });
    }
    throw err;
  }
  if (options.json) cli.out(JSON.stringify({ env: environment.name, restarted }, null, 2));
  else cli.out(`restarted ${restarted.length} node(s) one at a time: ${restarted.join(', ')}`);
}

/** --by, else the login: a person is always named in the log. */
function who(cli: Cli, by: string | undefined): string {
  return by ?? cli.io.env.USER ?? userInfo().username;
}

/** Who ran what where: always logged, whatever --verbose says. */
function audit(cli: Cli) {
  return cli.logger.child({ component: 'fleet' }, { level: 'info' });
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  if (seconds < 86_400)
    return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86_400)}d${String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0')}h`;
}
