/** `switch --wait` when things go wrong around the switch rather than in it: no worker, Ctrl-C, a terminated workflow. */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, inject, it } from 'vitest';
import { switchWorkflowId, type SwitchReport } from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import { environmentsDir, environmentYaml, startBin } from './run-cli.ts';

const env = `nowk-${randomBytes(3).toString('hex')}`;
const envs = environmentsDir({ [env]: environmentYaml(env) });
afterAll(() => envs.remove());

it('says when no worker answers, and Ctrl-C stops the watching but not the switch', async () => {
  // Nobody polls this task queue.
  const taskQueue = `nobody-${randomBytes(4).toString('hex')}`;
  const running = startBin(
    ['switch', '--env', env, '--wait', '--environments', envs.dir],
    { TEMPORAL_ADDRESS: inject('temporalAddress'), SWITCHYARD_TASK_QUEUE: taskQueue },
    90_000,
  );
  const deadline = Date.now() + 60_000;
  while (!running.stderr().includes('no worker has answered') && Date.now() < deadline) await sleep(200);
  expect(running.stderr()).toContain(
    `switchyard: no worker has answered for 10 s: is \`switchyard worker\` running for task queue ${taskQueue}?`,
  );

  running.child.kill('SIGINT');
  const result = await running.done;
  expect(result.code).toBe(130);
  expect(result.stderr).toContain(
    `switchyard: stopped following switch-${env}; the switch goes on: watch it with \`switchyard status --env ${env}\``,
  );
  expect(result.stdout).toBe('');

  const client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
  try {
    const handle = client.workflow.getHandle(switchWorkflowId(env));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.terminate('test finished');
  } finally {
    await client.connection.close();
  }
}, 120_000);

it('still prints a report, and exits 1, when the switch is terminated while being followed', async () => {
  const terminatedEnv = `term-${randomBytes(3).toString('hex')}`;
  const dir = environmentsDir({ [terminatedEnv]: environmentYaml(terminatedEnv) });
  const client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
  try {
    const running = startBin(
      ['switch', '--env', terminatedEnv, '--wait', '--json', '--environments', dir.dir],
      {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        SWITCHYARD_TASK_QUEUE: `nobody-${randomBytes(4).toString('hex')}`,
      },
      90_000,
    );
    const handle = client.workflow.getHandle(switchWorkflowId(terminatedEnv));
    const deadline = Date.now() + 60_000;
    while (
      !(await handle.describe().then(
        () => true,
        () => false,
      )) &&
      Date.now() < deadline
    )
      await sleep(200);
    await handle.terminate('operator pulled the plug');

    const result = await running.done;
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as SwitchReport;
    expect(report).toMatchObject({
      env: terminatedEnv,
      workflowId: switchWorkflowId(terminatedEnv),
      outcome: 'failed',
      trigger: 'manual',
      phases: [],
    });
    expect(report.reason).toContain('operator pulled the plug');
    expect(Date.parse(report.finishedAt)).toBeGreaterThanOrEqual(Date.parse(report.startedAt));
  } finally {
    await client.connection.close();
    dir.remove();
  }
}, 120_000);
