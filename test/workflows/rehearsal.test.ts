/**
 * `switch --rehearse` on the time-skipping server with the fake world: the rehearsal workflow runs
 * a switch's phases up to the fence without fencing, leaves DNS and the live stack alone, deletes
 * its stack, reports what a switch would have done, and holds the environment's switch lock.
 */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { switchWorkflowId, type SwitchInput, type SwitchReport, abortUpdate } from '../../src/switch/contract.ts';
import { checkEnd } from '../support/invariants.ts';
import { nightlyRefresh, rehearsal, stackSwitch } from '../../workflows/index.ts';
import { FakeWorld, seedWorld, type FakeWorldOptions } from '../support/fake-ports.ts';
import { OLD, runSwitch, seededWorld, workerFor, worldWithClientsWriting } from './harness.ts';
import { untilPhase } from '../support/phase.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';

const testEnv = useTimeSkippingEnvironment();

const input: SwitchInput = { env: 'test', backup: 'latest', trigger: 'ci', version: '2.0.0' };

/** A seeded world in which the live stack takes `late` more writes right after the first catch-up pass. */
function worldWithLateWrites(late: number, options: FakeWorldOptions = {}): FakeWorld {
  let written = false;
  const world: FakeWorld = new FakeWorld({
    ...options,
    onStep: (what) => {
      // The catch-up pass imports the 5 writes the live stack took since the backup.
      if (!written && what.startsWith('import 5 lines into navcloud-test-green-')) {
        written = true;
        world.write(OLD, late, 'late');
      }
      options.onStep?.(what);
    },
  });
  seedWorld(world, 'test');
  return world;
}

const newStackOf = (report: SwitchReport) => report.to?.stack ?? '';
/** Calls of the world that change the live stack or DNS: a rehearsal makes none. */
const touchesLive = (call: string) => /^(fence|forward|unfence|drain|undrain|dns) /.test(call);

describe('a rehearsal', () => {
  it('leaves DNS and the live stack alone, deletes its stack, and reports the last delta and the predicted write pause', async () => {
    const world = worldWithLateWrites(3);
    const { report, reportsDir } = await runSwitch(testEnv(), { world, workflow: rehearsal });

    expect(report.outcome).toBe('rehearsed');
    expect(report.reason).toBeUndefined();
    expect(report.rehearsal).toMatchObject({
      wouldSwitch: true,
      catchUpPasses: [{ items: 5, durationMs: expect.any(Number) }],
      // The 3 writes taken after the catch-up pass are what the fence would have copied.
      lastDelta: { items: 3, durationMs: expect.any(Number) },
    });
    expect(report.rehearsal?.predictedWritePauseMs).toBe(report.rehearsal?.lastDelta?.durationMs);
    expect(report.phases.map((p) => p.name)).toEqual([
      'planning',
      'provisioning',
      'restoring',
      'smoke-testing',
      'catching-up',
      'tearing-down',
      'done',
    ]);

    const next = newStackOf(report);
    // The rehearsal's stack had everything the live stack had when it stopped, and is gone.
    expect(world.state.imported[next]).toEqual(expect.arrayContaining(world.itemIds(OLD)));
    expect(world.stack(next).description.status).toBe('deleted');
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.state.dnsChanges).toBe(0);
    expect(world.state.calls.filter(touchesLive)).toEqual([]);
    expect(world.fenceOf(OLD)).toEqual(['open', 'open']);
    expect(world.stack(OLD).description.status).toBe('ready');
    expect(world.itemIds(OLD)).toHaveLength(30 + 5 + 3);
    expect(world.state.imported[OLD]).toBeUndefined();
    expect(world.state.violations).toEqual([]);
    expect(JSON.parse(readFileSync(join(reportsDir, `${report.workflowId}.json`), 'utf8'))).toEqual(report);
  });

  it('keeps every client write acknowledged and one writer while clients write at every step', async () => {
    const { world, violations } = worldWithClientsWriting();
    const { report } = await runSwitch(testEnv(), { world, workflow: rehearsal });
    expect(report.outcome).toBe('rehearsed');
    expect(world.state.acks?.length).toBeGreaterThan(5);
    expect(world.state.refusedWrites).toBe(0);
    expect(world.state.acks?.every((ack) => ack.stack === OLD)).toBe(true);
    expect(violations).toEqual([]);
    expect(checkEnd(world.snapshot())).toEqual([]);
  });

  it('says a switch would not have gone ahead when a smoke check fails, and deletes its stack', async () => {
    const world = seededWorld().fail('smoke', { message: 'no heartbeat' });
    const { report } = await runSwitch(testEnv(), { world, workflow: rehearsal });
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain('smoke checks failed: stream (no heartbeat)');
    expect(report.rehearsal).toEqual({ wouldSwitch: false, catchUpPasses: [] });
    expect(world.stack(newStackOf(report)).description.status).toBe('deleted');
    expect(world.state.calls.filter(touchesLive)).toEqual([]);
    expect(world.state.dns?.stack).toBe(OLD);
  });

  it('keeps its stack after a failure with --keep-failed, and deletes it after a success all the same', async () => {
    const failing = seededWorld().fail('smoke', { message: 'no heartbeat' });
    const failed = await runSwitch(testEnv(), { world: failing, workflow: rehearsal, input: { keepFailed: true } });
    expect(failed.report.outcome).toBe('failed');
    expect(failing.stack(newStackOf(failed.report)).description.status).toBe('ready');

    const passing = seededWorld();
    const passed = await runSwitch(testEnv(), { world: passing, workflow: rehearsal, input: { keepFailed: true } });
    expect(passed.report.outcome).toBe('rehearsed');
    expect(passing.stack(newStackOf(passed.report)).description.status).toBe('deleted');
  });

  it('still reports rehearsed, with a warning, when its stack cannot be deleted', async () => {
    const world = seededWorld().fail('stacks.delete', { message: 'DELETE_FAILED' });
    const { report } = await runSwitch(testEnv(), { world, workflow: rehearsal });
    expect(report.outcome).toBe('rehearsed');
    expect(report.warnings).toEqual([expect.stringContaining(`kept stack ${newStackOf(report)}`)]);
  });

  it('reports no last delta when DNS sends clients to no stack', async () => {
    const world = new FakeWorld();
    world.addStack('navcloud-test-blue-spare0001', 'blue', { items: 4 });
    world.addBackup('navcloud-test-blue-spare0001', 'backups/test-spare.json');
    const { report } = await runSwitch(testEnv(), { world, workflow: rehearsal });
    expect(report.outcome).toBe('rehearsed');
    expect(report.rehearsal).toEqual({ wouldSwitch: true, catchUpPasses: [] });
    expect(world.state.dns).toBeUndefined();
  });

  it('takes the switch lock: refused while a switch runs, and a switch is refused while it runs', async () => {
    const world = seededWorld().fail('stacks.waitUntilReady', { message: 'hang' });
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    await worker.runUntil(async () => {
      const running = await testEnv().client.workflow.start(rehearsal, {
        taskQueue,
        workflowId: switchWorkflowId('test'),
        args: [input],
      });
      await untilPhase(running, 'provisioning');
      const refused = await testEnv()
        .client.workflow.start(stackSwitch, { taskQueue, workflowId: switchWorkflowId('test'), args: [input] })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
      await running.executeUpdate(abortUpdate, { args: [{ by: 'zoe', comment: 'enough' }] });
      const report = await running.result();
      expect(report.outcome).toBe('aborted');
      expect(report.rehearsal?.wouldSwitch).toBe(false);
    });

    const hold = await testEnv().client.workflow.start(stackSwitch, {
      taskQueue: `nobody-${randomUUID()}`,
      workflowId: switchWorkflowId('test'),
      args: [input],
    });
    try {
      const refused = await testEnv()
        .client.workflow.start(rehearsal, { taskQueue, workflowId: switchWorkflowId('test'), args: [input] })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    } finally {
      await hold.terminate('test over');
    }
  });
});

describe('a night of a schedule set to rehearse', () => {
  it('starts a rehearsal as switch-<env> and ends as it did', async () => {
    const world = seededWorld();
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const night = await worker.runUntil(
      testEnv().client.workflow.execute(nightlyRefresh, {
        taskQueue,
        workflowId: `nightly-refresh-test-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', version: '2.0.0', rehearse: true }],
      }),
    );
    expect(night.outcome).toBe('rehearsed');
    if (night.outcome === 'skipped') throw new Error('skipped');
    expect(night.switch.workflowId).toBe(switchWorkflowId('test'));
    expect(night.report).toMatchObject({ trigger: 'schedule', rehearsal: { wouldSwitch: true } });
    expect(world.state.dnsChanges).toBe(0);
    expect(world.state.calls.filter(touchesLive)).toEqual([]);
  });
});
