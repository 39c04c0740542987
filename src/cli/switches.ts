/**
 * Finding an environment's switch: whoever starts it (the CLI, CI, a night of the schedule) starts
 * it as `switch-<env>`, so the id finds the running one, or else the last one.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { repoRoot } from '../config/environment.ts';
import { EXIT, switchWorkflowId } from '../switch/contract.ts';
import { ExitError } from './errors.ts';

export interface FoundSwitch {
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

/** The running switch of `env`, else (unless runningOnly) the last one; the handle is bound to that run. */
export async function findSwitch(client: Client, env: string, runningOnly: boolean): Promise<FoundSwitch | undefined> {
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(switchWorkflowId(env)).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  if (runningOnly && description.status.name !== 'RUNNING') return undefined;
  return { handle: client.workflow.getHandle(description.workflowId, description.runId), description };
}

/** Exit 3: a switch of `env` runs; `what` says what was refused or skipped because of it. */
export function busyError(env: string, workflowId: string, startTime?: Date, what?: string): ExitError {
  const started = startTime ? `, started ${startTime.toISOString()}` : '';
  return new ExitError(
    EXIT.busy,
    `${what ? `${what}: ` : ''}a switch of ${env} is already running (${workflowId}${started}); watch it with \`switchyard status --env ${env}\``,
  );
}

/** Without --version a switch rolls out the sync server of this checkout, whose version package.json names. */
export function defaultVersion(): string {
  const pkg = JSON.parse(readFileSync(resolve(repoRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The innermost message of a failure chain: what actually went wrong, in its own words. */
export function rootCause(err: Error): string {
  let cause: Error = err;
  while (cause.cause instanceof Error && cause.cause.message) cause = cause.cause;
  return cause.message || err.message;
}

/**
 * A one-off workflow (a backup, a rollback) run to its end: its id already running is exit 3,
 * its failure exit 1 with the root cause. `what` names it: "backup of dev".
 */
export async function runToEnd<T>(what: string, workflowId: string, execute: () => Promise<T>): Promise<T> {
  try {
    return await execute();
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new ExitError(EXIT.busy, `a ${what} is already running (${workflowId})`);
    if (err instanceof WorkflowFailedError)
      throw new ExitError(EXIT.failed, `${what} failed: ${rootCause(err)}`, { cause: err });
    throw err;
  }
}
