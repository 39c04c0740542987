/**
 * The `switchyard` command (README.md) as a library: runCli runs one command line; nothing runs on
 * import. Exit codes are a contract with CI: 0 switched, 1 failed or rolled back, 2 usage or
 * configuration error, 3 another switch of the environment is running.
 */
import { Command } from 'commander';
import { ServiceError } from '@temporalio/client';
import { EXIT } from '../switch/contract.ts';
import type { CommandModule } from './command.ts';
import { Cli, type CliIo } from './context.ts';
import { outcomeOf } from './errors.ts';
import { upCommand } from './commands/up.ts';
import { downCommand } from './commands/down.ts';
import { demoCommand } from './commands/demo.ts';
import { workerCommand } from './commands/worker.ts';
import { switchCommand } from './commands/switch.ts';
import { statusCommand } from './commands/status.ts';
import { approveCommand } from './commands/approve.ts';
import { abortCommand } from './commands/abort.ts';
import { scheduleCommand } from './commands/schedule.ts';
import { stacksCommand } from './commands/stacks.ts';
import { rollbackCommand } from './commands/rollback.ts';
import { backupCommand } from './commands/backup.ts';
import { fleetCommand } from './commands/fleet.ts';
import { gcCommand } from './commands/gc.ts';

/** Every command, in the order `--help` lists them. */
const commands: CommandModule[] = [
  upCommand,
  downCommand,
  demoCommand,
  workerCommand,
  switchCommand,
  statusCommand,
  approveCommand,
  abortCommand,
  rollbackCommand,
  backupCommand,
  stacksCommand,
  gcCommand,
  scheduleCommand,
  fleetCommand,
];

const UNAVAILABLE = 14;

function buildProgram(cli: Cli): Command {
  const program = new Command('switchyard')
    .description('Blue/green stack switches of the NavCloud sync service, on Temporal')
    .option('--verbose', 'debug logs, and stack traces with errors')
    .option(
      '--environments <dir>',
      'directory of <env>.yaml files (default: infra/environments, or SWITCHYARD_ENVIRONMENTS)',
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => cli.io.stdout.write(text),
      writeErr: (text) => cli.io.stderr.write(text),
      // commander's "error: …" line is already one sentence; name the tool and point at help.
      outputError: (text, write) =>
        write(
          `switchyard: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')} (see \`switchyard --help\`)\n`,
        ),
    })
    .hook('preAction', (_program, action) => {
      const globals = action.optsWithGlobals<{ verbose?: boolean; environments?: string }>();
      cli.verbose = !!globals.verbose;
      if (globals.environments) cli.environmentsDir = globals.environments;
    });
  for (const register of commands) register(program, cli);
  return program;
}

/**
 * Runs one `switchyard` command line with `io` as its standard streams and environment and
 * answers its exit code; bin/switchyard.js is the process around it, tests call it in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const cli = new Cli(io);
  const program = buildProgram(cli);
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
    return cli.exitCode;
  } catch (err) {
    const unavailable =
      err instanceof ServiceError && (err.cause as { code?: number } | undefined)?.code === UNAVAILABLE;
    const outcome = unavailable
      ? { exitCode: EXIT.usage, message: `Temporal is not reachable at ${cli.temporalAddress}` }
      : outcomeOf(err);
    if (outcome.message) cli.err(`switchyard: ${outcome.message}`);
    if (cli.verbose && outcome.message && err instanceof Error && err.stack) cli.err(err.stack);
    return outcome.exitCode;
  } finally {
    await cli.close();
  }
}
