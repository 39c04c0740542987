/**
 * `switch --rehearse` holds the environment's one lock, as a switch does: against the shared dev
 * server with nobody polling the task queue, the run that got there first keeps running and the
 * other is refused with exit 3.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { switchWorkflowId } from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import { environmentsDir, environmentYaml, runCli } from './run-cli.ts';

const env = `reh-${randomBytes(3).toString('hex')}`;
const envs = environmentsDir({ [env]: environmentYaml(env) });
let client: Client;
const cliEnv = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), SWITCHYARD_TASK_QUEUE: `nobody-${randomBytes(4).toString('hex')}` });
const cli = (...args: string[]) => runCli([...args, '--environments', envs.dir], cliEnv(), 60_000);
const busy = new RegExp(`^switchyard: a switch of ${env} is already running \\(switch-${env}, started [^)]+\\); watch it with \`switchyard status --env ${env}\`$`);

beforeAll(async () => {
  client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
});
afterAll(async () => {
  await client?.connection.close();
  envs.remove();
});

async function terminateRunning(): Promise<void> {
  await client.workflow.getHandle(switchWorkflowId(env)).terminate('test over');
}

it('refuses a rehearsal while a switch runs (exit 3), and a switch while a rehearsal runs', async () => {
  const started = await cli('switch', '--env', env, '--json');
  expect(started.code).toBe(0);
  const refused = await cli('switch', '--env', env, '--rehearse', '--wait', '--json');
  expect(refused.code).toBe(3);
  expect(refused.stderr.trim()).toMatch(busy);
  expect(refused.stdout).toBe('');
  expect((await client.workflow.getHandle(switchWorkflowId(env)).describe()).type).toBe('stackSwitch');
  await terminateRunning();

  const rehearsing = await cli('switch', '--env', env, '--rehearse');
  expect(rehearsing.code).toBe(0);
  const description = await client.workflow.getHandle(switchWorkflowId(env)).describe();
  expect(description.type).toBe('rehearsal');
  expect(await description.staticSummary()).toMatch(new RegExp(`^rehearse switching ${env} to version \\S+ \\(trigger manual\\): no fence, DNS untouched$`));
  const second = await cli('switch', '--env', env);
  expect(second.code).toBe(3);
  expect(second.stderr.trim()).toMatch(busy);
  await terminateRunning();
}, 120_000);
