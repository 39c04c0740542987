/**
 * Every way a command can end other than success, mapped once to the exit codes CI relies on
 * (README.md, exit codes) and to one sentence for a person.
 */
import { CommanderError } from 'commander';
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { ConfigError } from '../config/environment.ts';
import { EXIT } from '../switch/contract.ts';
import { TemporalUnreachableError } from '../temporal/client.ts';

/** A command ends with this exit code after saying why in one sentence. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    readonly exitCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Outcome {
  exitCode: number;
  /** Undefined when the message has already been written (commander prints its own). */
  message?: string;
}

export function outcomeOf(err: unknown): Outcome {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander only because exitOverride is on.
    const benign =
      err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version';
    return { exitCode: benign ? 0 : EXIT.usage };
  }
  if (err instanceof ExitError) return { exitCode: err.exitCode, message: err.message };
  if (err instanceof ConfigError || err instanceof TemporalUnreachableError)
    return { exitCode: EXIT.usage, message: err.message };
  if (err instanceof WorkflowNotFoundError)
    return { exitCode: EXIT.failed, message: `no workflow ${err.workflowId} exists` };
  if (err instanceof ServiceError) {
    const cause = err.cause as { details?: string } | undefined;
    return { exitCode: EXIT.failed, message: `Temporal refused the request: ${cause?.details ?? err.message}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { exitCode: EXIT.failed, message };
}
