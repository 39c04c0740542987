/**
 * The CLI end to end through runCli (the real bin is run in test/local/commands.test.ts) against the shared dev server
 * and C1's test worker process (test/support/test-worker.ts) over a file-backed fake world.
 * Exit codes 0 (switched), 1 (aborted, failed), 3 (another switch is running); 2 is in arguments.test.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { PHASES, switchWorkflowId, type SwitchReport } from '../../src/switch/contract.ts';
import { createClient } from '../../src/temporal/client.ts';
import { FakeWorld, seedStackName } from '../support/fake-ports.ts';
import { untilPhase } from '../support/phase.ts';
import { startTestWorker } from '../support/test-worker-process.ts';
import { environmentsDir, environmentYaml, runCli, startCli, type CliRun } from './run-cli.ts';
import { tempDir } from '../support/temp-dir.ts';

const env = `cli-${randomBytes(3).toString('hex')}`;
// Its own task queue: no other test's worker takes these switches, and this worker takes no one else's.
const taskQueue = `cli-e2e-${randomBytes(4).toString('hex')}`;
const stateDir = tempDir('switchyard-cli-e2e-').path;
const envs = environmentsDir({ [env]: environmentYaml(env) });
let worker: ChildProcess | undefined;
let client: Client;

const cliEnv = () => ({
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  SWITCHYARD_TASK_QUEUE: taskQueue,
  USER: 'ci-bot',
});
const cli = (...args: string[]) => runCli([...args, '--environments', envs.dir], cliEnv());

function startWorker(): Promise<ChildProcess> {
  return startTestWorker({
    SWITCHYARD_TASK_QUEUE: taskQueue,
    SWITCHYARD_TEST_STATE_DIR: stateDir,
    SWITCHYARD_TEST_SEED_ENV: env,
    SWITCHYARD_TEST_ENV: JSON.stringify({ verifySeconds: 0, drainSeconds: 0, ttl: 1 }),
    // The first two switches pass their smoke tests, the third fails them.
    SWITCHYARD_TEST_FAIL: JSON.stringify({
      smoke: { after: 2, retryable: false, message: 'stream check saw no heartbeat' },
    }),
  });
}

function reportOf(run: CliRun): SwitchReport {
  return JSON.parse(run.stdout) as SwitchReport;
}

/** The fields every report has (SwitchReport, src/switch/contract.ts). */
function expectReportShape(report: SwitchReport) {
  expect(report).toMatchObject({ env, workflowId: switchWorkflowId(env) });
  expect(['switched', 'failed', 'rolled-back', 'aborted']).toContain(report.outcome);
  if (report.outcome !== 'switched') expect(report.reason).toEqual(expect.any(String));
  expect(report.from).toMatchObject({ stack: expect.any(String), colour: expect.stringMatching(/^(blue|green)$/) });
  expect(report.to).toMatchObject({ stack: expect.any(String), colour: expect.stringMatching(/^(blue|green)$/) });
  expect(report.backup).toMatchObject({ key: expect.any(String), items: expect.any(Number) });
  expect(report.phases.length).toBeGreaterThan(0);
  for (const phase of report.phases) {
    expect(PHASES).toContain(phase.name);
    expect(Number.isNaN(Date.parse(phase.startedAt))).toBe(false);
    expect(phase.durationMs).toBeGreaterThanOrEqual(0);
  }
  for (const check of report.smoke.checks)
    expect(check).toMatchObject({ name: expect.any(String), ok: expect.any(Boolean), durationMs: expect.any(Number) });
}

beforeAll(async () => {
  client = await createClient({ TEMPORAL_ADDRESS: inject('temporalAddress') });
  worker = await startWorker();
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    setTimeout(() => worker?.kill('SIGKILL'), 15_000).unref();
    await exited;
  }
  await client?.connection.close();
  envs.remove();
});

describe.sequential('switchyard exit codes end to end', () => {
  let firstNewStack: string;

  it('exits 3 for a second switch while one waits for approval, and 0 once approved', async () => {
    // Manual approval (the environment approves automatically) holds the switch still for the busy check and approve.
    const waiting = startCli(
      [
        'switch',
        '--env',
        env,
        '--version',
        '2.0.0',
        '--approval',
        'manual',
        '--wait',
        '--json',
        '--environments',
        envs.dir,
      ],
      cliEnv(),
    );
    const status = await untilPhase(client.workflow.getHandle(switchWorkflowId(env)), 'awaiting-approval');
    firstNewStack = status.to!.stack;
    // Its progress line for the phase, before the phase ends: one line per phase the follower saw.
    const awaiting = new RegExp(`^\\S+Z ${env}: awaiting-approval → ${firstNewStack} \\(green\\)`, 'm');
    for (const deadline = Date.now() + 30_000; !awaiting.test(waiting.stderr()) && Date.now() < deadline;)
      await sleep(100);
    // What the Web UI shows for it, set by the CLI when it started the switch.
    const started = await client.workflow.getHandle(switchWorkflowId(env)).describe();
    expect(await started.staticSummary()).toBe(`switch ${env} to version 2.0.0 (trigger manual)`);
    expect(await started.staticDetails()).toContain('- **Approval:** manual, asked for by this switch');

    const second = await cli('switch', '--env', env);
    expect(second.code).toBe(3);
    expect(second.stderr.trim()).toMatch(
      new RegExp(
        `^switchyard: a switch of ${env} is already running \\(switch-${env}, started \\d{4}-\\d\\d-\\d\\dT[^)]+\\); watch it with \`switchyard status --env ${env}\`$`,
      ),
    );

    // A night of the schedule meets the same switch-<env> id, so it skips its switch.
    const set = await cli('schedule', 'set', '--env', env, '--cron', '0 4 * * *');
    expect(set.code).toBe(0);
    expect(set.stdout.trim()).toBe(`created nightly-refresh-${env}: '0 4 * * *' (UTC)`);
    const waitingRun = (await client.workflow.getHandle(switchWorkflowId(env)).describe()).runId;
    const triggered = await cli('schedule', 'trigger', '--env', env);
    expect(triggered.code).toBe(3);
    expect(triggered.stderr.trim()).toMatch(
      new RegExp(
        `^switchyard: nightly-refresh-${env}-\\S+ started no switch: a switch of ${env} is already running \\(switch-${env}, started `,
      ),
    );
    expect((await client.workflow.getHandle(switchWorkflowId(env)).describe()).runId).toBe(waitingRun);
    expect((await cli('schedule', 'delete', '--env', env)).code).toBe(0);

    const shown = await cli('status', '--env', env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`${env}: awaiting-approval → ${firstNewStack}`);

    const approved = await cli('approve', '--env', env, '--comment', 'release 2.0.0');
    expect(approved.code).toBe(0);
    expect(approved.stdout.trim()).toBe(`approved switch-${env} as ci-bot: release 2.0.0`);

    const result = await waiting.done;
    expect(result.code).toBe(0);
    const report = reportOf(result);
    expectReportShape(report);
    expect(report).toMatchObject({
      outcome: 'switched',
      version: '2.0.0',
      trigger: 'manual',
      from: { stack: seedStackName(env), colour: 'blue' },
      to: { stack: firstNewStack, colour: 'green' },
      approval: { decision: 'approved', by: 'ci-bot', comment: 'release 2.0.0' },
    });
    // Progress went to stderr as plain lines (not a TTY), one per phase change; stdout is only the report.
    expect(result.stderr).toMatch(awaiting);
    expect(result.stderr).toMatch(new RegExp(`^\\S+Z ${env}: draining`, 'm'));
    expect(new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload().dns?.stack).toBe(firstNewStack);
    // The write pause and what the old stack held and forwarded (the fake's nodes: 2 held, 1 ran out, 5 forwarded each).
    expect(report.writePause).toMatchObject({
      requestsHeld: expect.any(Number),
      requestsForwarded: expect.any(Number),
    });
    const after = await cli('status', '--env', env);
    expect(after.stdout).toMatch(
      /^write pause: \d+ ms; the old stack held \d+ writes \(\d+ ran out and were refused\) and forwarded \d+ requests$/m,
    );
  }, 120_000);

  it('exits 1 when the switch is aborted, recording who and why, and the approval command is refused afterwards', async () => {
    const waiting = cli('switch', '--env', env, '--approval', 'manual', '--wait', '--json');
    await untilPhase(client.workflow.getHandle(switchWorkflowId(env)), 'awaiting-approval');
    const shown = await cli('status', '--env', env, '--json');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      workflowId: switchWorkflowId(env),
      execution: 'RUNNING',
      status: { env, phase: 'awaiting-approval', from: { stack: firstNewStack } },
    });
    const aborted = await cli('abort', '--env', env, '--by', 'ana', '--comment', 'wrong version');
    expect(aborted.code).toBe(0);

    const result = await waiting;
    expect(result.code).toBe(1);
    const report = reportOf(result);
    expectReportShape(report);
    expect(report).toMatchObject({
      outcome: 'aborted',
      approval: { decision: 'aborted', by: 'ana', comment: 'wrong version' },
    });

    const late = await cli('approve', '--env', env);
    expect(late.code).toBe(1);
    expect(late.stderr.trim()).toBe(`switchyard: no switch of ${env} is running, so there is nothing to approve`);
    expect(new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload().dns?.stack).toBe(firstNewStack);
  }, 120_000);

  it('exits 1 with a Markdown report naming the reason when smoke tests fail, the new stack deleted', async () => {
    const callsBefore = new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload().calls.length;
    const result = await cli('switch', '--env', env, '--wait');
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')[0]).toBe(`# Switch of ${env}: failed`);
    expect(result.stdout).toMatch(/\| Reason \| .*stream check saw no heartbeat/);
    expect(result.stdout).toContain(`| From | ${firstNewStack} (green) |`);
    const failedStack = /\| To \| (\S+) \(blue\) \|/.exec(result.stdout)?.[1];
    const world = new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload();
    expect(world.dns?.stack).toBe(firstNewStack);
    expect(world.calls.slice(callsBefore)).toContain(`delete ${failedStack}`);
    expect(world.violations).toEqual([]);
  }, 120_000);

  it('prints the workflow and run id and exits 0 without --wait', async () => {
    // With CI set, the switch says CI started it.
    const started = await runCli(['switch', '--env', env, '--json', '--environments', envs.dir], {
      ...cliEnv(),
      CI: 'true',
    });
    expect(started.code).toBe(0);
    const ids = JSON.parse(started.stdout) as { workflowId: string; runId: string };
    expect(ids.workflowId).toBe(switchWorkflowId(env));
    const result = (await client.workflow.getHandle(ids.workflowId, ids.runId).result()) as SwitchReport;
    // The smoke tests still fail: the point is that this run is the one the CLI named.
    expect(result.outcome).toBe('failed');
    expect(result.workflowId).toBe(ids.workflowId);
    expect(result.trigger).toBe('ci');
  }, 120_000);

  it('backs up the live stack and exits 0', async () => {
    const result = await cli('backup', '--env', env, '--json');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { env: string; stack: string; key: string; items: number };
    expect(report).toMatchObject({ env, stack: firstNewStack, key: expect.any(String) });
    expect(report.items).toBeGreaterThan(0);
    expect(await (await client.workflow.getHandle(`backup-${env}`).describe()).staticSummary()).toBe(
      `back up the live stack of ${env}`,
    );
  }, 120_000);

  it('rolls back to the previous stack and exits 0', async () => {
    const result = await cli('rollback', '--env', env, '--comment', 'release 2.0.0 is slow');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // A rollback runs under the environment's switch id: the one lock a switch and a rollback share.
    expect(result.stdout.trim()).toBe(
      `rolled ${env} back from ${firstNewStack} to ${seedStackName(env)} (switch-${env}, by ci-bot)`,
    );
    expect(new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload().dns?.stack).toBe(seedStackName(env));
    const rollback = await client.workflow.getHandle(switchWorkflowId(env)).describe();
    expect(rollback.type).toBe('rollback');
    expect(await rollback.staticSummary()).toBe(`roll ${env} back to its previous stack (by ci-bot)`);
    expect(await rollback.staticDetails()).toBe('**Why:** release 2.0.0 is slow');
  }, 120_000);

  // Last: a kept stack that failed its smoke tests must not be around for the rollback above to pick.
  it('keeps the new stack of a failed switch with --keep-failed', async () => {
    const callsBefore = new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload().calls.length;
    const result = await cli('switch', '--env', env, '--wait', '--json', '--keep-failed');
    expect(result.code).toBe(1);
    const report = reportOf(result);
    expect(report.outcome).toBe('failed');
    const world = new FakeWorld({ stateFile: join(stateDir, 'world.json') }).reload();
    expect(world.calls.slice(callsBefore).some((call) => call.startsWith(`create ${report.to!.stack} `))).toBe(true);
    expect(world.calls.slice(callsBefore)).not.toContain(`delete ${report.to!.stack}`);
    expect(world.dns?.stack).toBe(seedStackName(env));
  }, 120_000);
});
