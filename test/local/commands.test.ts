/**
 * Every `switchyard` command once, from the outside, as a new user runs them: the real bin
 * against one local environment that `switchyard up` started in the background, on free ports,
 * and that `switchyard down` stops at the end.
 */
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { repoRoot } from '../../src/config/environment.ts';
import { createRootLogger } from '../../src/logging.ts';
import { freePort } from '../../src/net.ts';
import { alive, stopLocalEnvironment } from '../../src/local/control.ts';
import { readLocalState, type LocalState } from '../../src/local/state.ts';
import { switchWorkflowId, type RollbackReport } from '../../src/switch/contract.ts';
import { runBin, startBin, type CliRun } from '../cli/run-cli.ts';
import { untilPhase } from '../support/phase.ts';
import { tempDir } from '../support/temp-dir.ts';

const dir = tempDir('switchyard-commands-').path;
const stateFile = join(dir, 'local.json');
const environments = join(dir, 'environments');
const workflowId = switchWorkflowId('dev');
let state: LocalState;
let connection: Connection;
let client: Client;
let rolledBackFrom: string;

/** The real bin with this environment's state file, environments and Temporal. */
function switchyard(...args: string[]): Promise<CliRun> {
  return runBin(
    [...args, '--environments', environments],
    {
      SWITCHYARD_LOCAL_STATE: stateFile,
      LOG_LEVEL: 'warn',
      USER: 'newcomer',
      ...(state ? { TEMPORAL_ADDRESS: state.temporalAddress } : {}),
    },
    280_000,
  );
}

function expectOk(run: CliRun): void {
  expect(run.stderr).not.toMatch(/^switchyard:/m);
  expect(run.code).toBe(0);
}

/** Starts a switch that waits for approval and answers once it does, with the stack it built. */
async function switchAwaitingApproval(): Promise<string> {
  const started = await switchyard('switch', '--env', 'dev', '--approval', 'manual');
  expectOk(started);
  expect(started.stdout).toMatch(new RegExp(`^started ${workflowId} \\(run [0-9a-f-]+\\)`));
  const status = await untilPhase(client.workflow.getHandle(workflowId), 'awaiting-approval', 180_000);
  return status.to!.stack;
}

describe('every switchyard command on the local profile, through the bin', () => {
  beforeAll(() => {
    // dev as shipped, but quick to verify and drain, and keeping the previous stack for `rollback`.
    const dev = readFileSync(resolve(repoRoot, 'infra/environments/dev.yaml'), 'utf8')
      .replace(/^verifySeconds: .*$/m, 'verifySeconds: 0')
      .replace(/^drainSeconds: .*$/m, 'drainSeconds: 1')
      .replace(/^keepStacks: .*$/m, 'keepStacks: 1');
    mkdirSync(environments);
    writeFileSync(join(environments, 'dev.yaml'), dev);
  });

  afterAll(async () => {
    await connection?.close();
    // Whatever a failed assertion left running.
    await stopLocalEnvironment(stateFile, dir, createRootLogger('commands-test', { level: 'warn' }));
  });

  it('up starts the environment in the background, says where everything is, and a second up finds it', async () => {
    const [temporalPort, uiPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const ports = ['--temporal-port', String(temporalPort), '--ui-port', String(uiPort), '--dns-port', String(dnsPort)];
    const up = await switchyard('up', ...ports, '--seed-items', '50');
    expectOk(up);
    expect(up.stdout).toContain(`Temporal Web UI     http://127.0.0.1:${uiPort}`);
    expect(up.stdout).toMatch(
      /dev: sync\.dev\.navcloud\.test -> navcloud-dev-blue-[0-9a-f]{8} \(127\.\d+\.\d+\.1, 127\.\d+\.\d+\.2\), port 7070/,
    );
    state = readLocalState(stateFile);
    expect(state.readyAt).toBeDefined();
    expect(state.dnsServer).toBe(`127.0.0.1:${dnsPort}`);
    expect(Object.values(state.processes).every(alive)).toBe(true);
    // The public name resolves, through the responder, to the seeded stack the summary named.
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([state.dnsServer]);
    for (const address of await resolver.resolve4('sync.dev.navcloud.test')) expect(up.stdout).toContain(address);

    const again = await switchyard('up', ...ports);
    expectOk(again);
    expect(again.stdout).toContain(`supervisor pid ${state.processes.supervisor}`);
    connection = await Connection.connect({ address: state.temporalAddress });
    client = new Client({ connection });
  }, 300_000);

  it('stacks lists the seeded stack as live, and backup backs it up', async () => {
    const stacks = await switchyard('stacks', '--env', 'dev', '--json');
    expectOk(stacks);
    const listed = JSON.parse(stacks.stdout) as { live: string; stacks: Array<{ name: string; live: boolean }> };
    expect(listed.stacks).toEqual([expect.objectContaining({ name: listed.live, live: true })]);

    const backup = await switchyard('backup', '--env', 'dev');
    expectOk(backup);
    expect(backup.stdout).toMatch(new RegExp(`^backed up ${listed.live} of dev to \\S+ \\(50 items\\)`));
  }, 120_000);

  it('switch, status and abort: an aborted switch removes its own stack', async () => {
    const stack = await switchAwaitingApproval();
    const status = await switchyard('status', '--env', 'dev');
    expectOk(status);
    expect(status.stdout).toContain('awaiting-approval');

    const abort = await switchyard('abort', '--env', 'dev', '--comment', 'trying abort');
    expectOk(abort);
    await client.workflow.getHandle(workflowId).result();
    const stacks = JSON.parse((await switchyard('stacks', '--env', 'dev', '--json')).stdout) as {
      stacks: Array<{ name: string }>;
    };
    expect(stacks.stacks.map((s) => s.name)).not.toContain(stack);
  }, 300_000);

  it('approve lets a switch finish, and rollback sends clients back to the stack before it', async () => {
    const before = (JSON.parse((await switchyard('stacks', '--env', 'dev', '--json')).stdout) as { live: string }).live;
    const stack = await switchAwaitingApproval();
    const approve = await switchyard('approve', '--env', 'dev', '--comment', 'looks good');
    expectOk(approve);
    expect(await client.workflow.getHandle(workflowId).result()).toMatchObject({ outcome: 'switched', to: { stack } });

    const rollback = await switchyard('rollback', '--env', 'dev', '--json');
    expectOk(rollback);
    expect(JSON.parse(rollback.stdout) as RollbackReport).toMatchObject({
      outcome: 'rolled-back',
      from: stack,
      to: before,
      by: 'newcomer',
    });
    rolledBackFrom = stack;
  }, 400_000);

  it('gc removes the stack of a terminated switch, which nothing else would until the next switch, and keeps the one rolled back from', async () => {
    const stack = await switchAwaitingApproval();
    await client.workflow.getHandle(workflowId).terminate('left behind for gc');
    const gc = await switchyard('gc', '--env', 'dev', '--json');
    expectOk(gc);
    const collected = JSON.parse(gc.stdout) as { deleted: string[]; kept: string[] };
    expect(collected.deleted).toEqual([stack]);
    // keepStacks: 1 keeps the stack the rollback left, where another rollback would return.
    expect(collected.kept).toContain(rolledBackFrom);
  }, 300_000);

  it('schedule sets, shows, pauses, unpauses and deletes the nightly refresh', async () => {
    expectOk(await switchyard('schedule', 'set', '--env', 'dev', '--cron', '0 3 * * *'));
    const show = await switchyard('schedule', 'show', '--env', 'dev');
    expectOk(show);
    expect(show.stdout).toContain("'0 3 * * *'");
    expect((await switchyard('schedule', 'pause', '--env', 'dev', '--note', 'holiday')).stdout).toContain('paused');
    expect((await switchyard('schedule', 'unpause', '--env', 'dev')).stdout).toContain('unpaused');
    expectOk(await switchyard('schedule', 'delete', '--env', 'dev'));
  }, 120_000);

  it("fleet lists the live stack's nodes", async () => {
    const fleet = await switchyard('fleet', 'list', '--env', 'dev', '--json');
    expectOk(fleet);
    const { nodes } = JSON.parse(fleet.stdout) as { nodes: Array<{ live: boolean; status: string }> };
    expect(nodes).toHaveLength(2);
    expect(nodes.every((n) => n.live && n.status === 'ready')).toBe(true);
  }, 120_000);

  it('worker serves its probe until SIGTERM, then exits 0', async () => {
    const probePort = await freePort();
    const worker = startBin(
      ['worker', '--probe-port', String(probePort), '--environments', environments],
      {
        SWITCHYARD_LOCAL_STATE: stateFile,
        LOG_LEVEL: 'warn',
        TEMPORAL_ADDRESS: state.temporalAddress,
        SWITCHYARD_TASK_QUEUE: `commands-${randomBytes(4).toString('hex')}`,
      },
      180_000,
    );
    const deadline = Date.now() + 150_000;
    let healthy = false;
    while (!healthy && Date.now() < deadline && worker.child.exitCode === null) {
      healthy = await fetch(`http://127.0.0.1:${probePort}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!healthy) await new Promise((r) => setTimeout(r, 250));
    }
    expect(healthy, worker.stderr()).toBe(true);
    worker.child.kill('SIGTERM');
    expect((await worker.done).code).toBe(0);
  }, 200_000);

  it('demo switches dev and back under client load, using the running environment', async () => {
    const demo = await switchyard('demo', '--env', 'dev', '--users', '4', '--writes-per-second', '8');
    expect(demo.stderr).toContain(`Using the running local environment (supervisor pid ${state.processes.supervisor})`);
    expect(demo.stdout).toContain('Demo passed');
    expect(demo.code).toBe(0);
  }, 400_000);

  it('down stops every process and stack, and a second down says nothing was running', async () => {
    const pids = Object.values(state.processes);
    const down = await switchyard('down');
    expectOk(down);
    expect(down.stdout).toContain(`stopped supervisor (pid ${state.processes.supervisor})`);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(stateFile)).toBe(false);
    expect(readdirSync(join(dir, 'stacks')).filter((n) => !n.startsWith('.'))).toEqual([]);

    const again = await switchyard('down');
    expectOk(again);
    expect(again.stdout).toContain('was not running');
  }, 120_000);
});
