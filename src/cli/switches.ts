/**
 * Finding an environment's switch. The CLI starts it as `switch-<env>`; a schedule starts it with
 * the scheduled time appended to that id, so a switch is also looked up by its SwitchEnv attribute.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { repoRoot } from '../config/environment.ts';
import { EXIT, switchWorkflowId } from '../switch/contract.ts';
import { switchesOfEnvQuery } from '../temporal/switch-attributes.ts';
import { ExitError } from './errors.ts';

export interface FoundSwitch {
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

async function describeById(client: Client, workflowId: string): Promise<FoundSwitch | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

async function newestListed(client: Client, env: string, runningOnly: boolean): Promise<FoundSwitch | undefined> {
  for await (const execution of client.workflow.list({ query: switchesOfEnvQuery(env, runningOnly), pageSize: 1 })) {
    const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
    return { handle, description: await handle.describe() };
  }
  return undefined;
}

/** The running switch of `env`, else (unless runningOnly) the newest finished one. */
export async function findSwitch(client: Client, env: string, runningOnly: boolean): Promise<FoundSwitch | undefined> {
  const direct = await describeById(client, switchWorkflowId(env));
  if (direct?.description.status.name === 'RUNNING') return direct;
  const running = await newestListed(client, env, true);
  if (running || runningOnly) return running;
  const listed = await newestListed(client, env, false);
  if (!direct) return listed;
  if (!listed) return direct;
  return listed.description.startTime > direct.description.startTime ? listed : direct;
}

export function busyError(env: string, workflowId: string, startTime?: Date): ExitError {
  const started = startTime ? `, started ${startTime.toISOString()}` : '';
  return new ExitError(EXIT.busy,
    `a switch of ${env} is already running (${workflowId}${started}); watch it with \`switchyard status --env ${env}\``);
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
