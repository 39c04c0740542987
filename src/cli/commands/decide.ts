/**
 * What `approve` and `abort` share: both send a `{ by, comment }` Update to the running switch and
 * report the workflow's refusal (its validator's reason) as a failure.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import { abortUpdate, approveUpdate, EXIT, type Decision } from '../../switch/contract.ts';
import { ENV_OPTION } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';
import { findSwitch } from '../switches.ts';

interface DecideOptions {
  env: string;
  by?: string;
  comment: string;
}

export function decisionCommand(program: Command, cli: Cli, update: 'approve' | 'abort', description: string): void {
  program
    .command(update)
    .description(description)
    .requiredOption(...ENV_OPTION)
    .option('--by <who>', 'who decides (default: $USER)')
    .option('--comment <text>', 'why', '')
    .action((options: DecideOptions) => decide(cli, update, options));
}

async function decide(cli: Cli, update: 'approve' | 'abort', options: DecideOptions): Promise<void> {
  const environment = await cli.environment(options.env);
  const by = options.by ?? cli.io.env.USER;
  if (!by)
    throw new ExitError(
      EXIT.usage,
      `--by is required when USER is not set: say who ${update === 'approve' ? 'approves' : 'aborts'}`,
    );
  const client = await cli.client();
  const found = await findSwitch(client, environment.name, true);
  if (!found)
    throw new ExitError(EXIT.failed, `no switch of ${environment.name} is running, so there is nothing to ${update}`);
  const decision: Decision = { by, comment: options.comment };
  try {
    await found.handle.executeUpdate(update === 'approve' ? approveUpdate : abortUpdate, { args: [decision] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new ExitError(
        EXIT.failed,
        `${found.description.workflowId} refused ${update}: ${err.cause?.message ?? err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
  cli.out(
    `${update === 'approve' ? 'approved' : 'aborted'} ${found.description.workflowId} as ${by}${options.comment ? `: ${options.comment}` : ''}`,
  );
}
