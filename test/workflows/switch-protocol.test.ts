/**
 * The switch protocol's safety on the time-skipping server with the fake world: one test per
 * finding of the review of the switch (fence lease and forward, pointing DNS back, the live stack
 * in any state, tear-down by role, one lock, heartbeats, reports of every run, history size).
 */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { MAX_VERIFY_SECONDS } from '../../src/config/environment.ts';
import { switchWorkflowId, type SwitchReport, abortUpdate, rollbackWorkflowId } from '../../src/switch/contract.ts';
import { rollback, stackSwitch } from '../../workflows/index.ts';
import { RESTORE_LOOK_FIRST_MS, nextRestoreLookMs } from '../../workflows/switch-phases.ts';
import { checkEnd, checkStep } from '../support/invariants.ts';
import type { FakeWorld } from '../support/fake-ports.ts';
import { OLD, runSwitch, seededWorld, workerFor, worldWithClientsWriting } from './harness.ts';
import { untilPhase } from '../support/phase.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';
import { forwardAsIs } from '../support/fence.ts';

const testEnv = useTimeSkippingEnvironment();

const newStackOf = (report: SwitchReport) => report.to?.stack ?? '';

/** The invariants at the end, once the runs closed and a lease went by (every fence of a dead run lapsed). */
function violationsAtEnd(world: FakeWorld): string[] {
  world.setTime(world.now() + 120_000);
  return checkEnd(world.snapshot()).map((v) => `${v.invariant}: ${v.message}`);
}

describe('pointing DNS back (one undo, registered before the flip, reading DNS first)', () => {
  it('keeps the old stack forwarding when the failed new stack does not answer the fence: never two writers', async () => {
    const world = seededWorld().fail('probe', { stack: 'green' }).fail('admin.fence', { stack: 'green' });
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain(`pointing DNS back to ${OLD} failed`);
    expect(world.state.dns?.stack).toBe(newStackOf(report));
    // Unfencing the old stack here would let it take writes beside the new one, which DNS still names.
    expect(world.fenceOf(OLD)).toEqual(['forwarding', 'forwarding']);
    expect(world.state.calls).not.toContain(`unfence ${OLD}`);
    expect(checkStep(world.snapshot())).toEqual([]);
    expect(violationsAtEnd(world)).toEqual([]);
  });

  it('keeps the old stack forwarding when the writes of the new one cannot be copied back', async () => {
    const world = seededWorld()
      .fail('probe', { stack: 'green' })
      .fail('admin.export', { stack: 'green', message: 'export broke' });
    world.state.writesAfterSwitch = 3;
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('failed');
    expect(world.fenceOf(OLD)).toEqual(['forwarding', 'forwarding']);
    expect(world.state.calls).not.toContain(`unfence ${OLD}`);
    // The three writes the new stack took are still there: it stays (fenced with a lease that lapses), DNS names it.
    expect(world.stack(newStackOf(report)).description.status).toBe('ready');
    expect(world.itemIds(newStackOf(report)).filter((id) => id.startsWith('after-switch'))).toHaveLength(3);
    expect(violationsAtEnd(world)).toEqual([]);
  });

  it('commits with forward before DNS moves, so the old stack sends every request on', async () => {
    const { report, world } = await runSwitch(testEnv());
    expect(report.outcome).toBe('switched');
    const calls = world.state.calls;
    const next = newStackOf(report);
    expect(calls.indexOf(`fence ${OLD}`)).toBeLessThan(calls.indexOf(`forward ${OLD} to ${next}`));
    expect(calls.indexOf(`forward ${OLD} to ${next}`)).toBeLessThan(calls.indexOf(`dns ${next}`));
    expect(world.fenceOf(OLD)).toEqual(['forwarding', 'forwarding']);
  });

  it('does not switch DNS when the store refuses forward (its fence lapsed), and leaves the old stack writable', async () => {
    const world = seededWorld().fail('admin.forward', { message: 'fence-lapsed', stack: OLD });
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain('fence-lapsed');
    expect(world.state.dnsChanges).toBe(0);
    expect(world.fenceOf(OLD)).toEqual(['open', 'open']);
    expect(world.stack(newStackOf(report)).description.status).toBe('deleted');
    expect(violationsAtEnd(world)).toEqual([]);
  });
});

describe('with clients writing at every step, through DNS and through a cached answer', () => {
  it('a switch keeps one writer and loses no acknowledged write', async () => {
    const { world, violations } = worldWithClientsWriting();
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(world.state.acks?.length).toBeGreaterThan(10);
    expect(violations).toEqual([]);
    expect(violationsAtEnd(world)).toEqual([]);
  });

  it('a switch rolled back after verifying keeps one writer and loses no acknowledged write', async () => {
    const { world, violations } = worldWithClientsWriting();
    world.fail('probe', { stack: 'green' });
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('rolled-back');
    expect(violations).toEqual([]);
    expect(violationsAtEnd(world)).toEqual([]);
  });

  it('a switch followed by a rollback keeps one writer and loses no acknowledged write', async () => {
    const { world, violations } = worldWithClientsWriting();
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const rolledBack = await worker.runUntil(async () => {
      await testEnv().client.workflow.execute(stackSwitch, {
        taskQueue,
        workflowId: `switch-test-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2' }],
      });
      return testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'ann' }],
      });
    });
    expect(rolledBack.outcome).toBe('rolled-back');
    expect(violations).toEqual([]);
    expect(violationsAtEnd(world)).toEqual([]);
  });
});

describe('the fence lease', () => {
  it('fences for fenceLeaseSeconds and renews the lease while the last delta is copied', async () => {
    // A lease of 3 s renews every second; each import into the new stack takes 1.5 s of real time.
    const leases: number[] = [];
    let smoked = false;
    let wroteLate = false;
    const world: FakeWorld = seededWorld({
      env: { fenceLeaseSeconds: 3 },
      importDelayMs: 1_500,
      onStep: (what) => {
        if (what === `fence ${OLD}`) leases.push((world.state.stacks[OLD]?.fence?.leaseMs ?? 0) / 1000);
        smoked ||= what.startsWith('smoke');
        // While the first catch-up pass imports, the old stack takes more writes: the last delta has them.
        if (smoked && !wroteLate && what.startsWith('import')) {
          wroteLate = true;
          world.write(OLD, 3, 'late');
        }
      },
    });
    const { report } = await runSwitch(testEnv(), { world, env: { fenceLeaseSeconds: 3 } });
    expect(report.outcome).toBe('switched');
    // The fence, at least one renewal during the 1.5 s copy, and forward's own renewal.
    expect(leases.length).toBeGreaterThanOrEqual(3);
    expect(leases.every((seconds) => seconds === 3)).toBe(true);
    expect(world.itemIds(newStackOf(report))).toEqual(expect.arrayContaining(world.itemIds(OLD)));
  });
});

describe('the live stack', () => {
  it('is caught up from and fenced while its CloudFormation update rolled back (it still serves)', async () => {
    const world = seededWorld({ awsShaped: true });
    const old = world.stack(OLD);
    old.description = { ...old.description, status: 'failed', rawStatus: 'UPDATE_ROLLBACK_COMPLETE' };
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(report.from?.stack).toBe(OLD);
    expect(world.state.calls).toContain(`fence ${OLD}`);
    // The 5 writes made since the backup reached the new stack.
    expect(world.itemIds(newStackOf(report))).toEqual(world.itemIds(OLD));
    expect(report.warnings?.join()).toContain('UPDATE_ROLLBACK_COMPLETE');
    expect(violationsAtEnd(world)).toEqual([]);
  });

  it('is the stack the one DNS names forwards to, when a run died between its commit and DNS', async () => {
    const world = seededWorld();
    const writer = 'navcloud-test-green-died0001';
    world.addStack(writer, 'green');
    // The run that died had copied everything of OLD into it before the commit (the verification after the flip compares them).
    Object.assign(world.stack(writer), { items: structuredClone(world.stack(OLD).items), seq: world.stack(OLD).seq });
    await forwardAsIs(world.admin(`fake://${OLD}`), `http://fake/${writer}`);
    world.write(writer, 4, 'after-commit');
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(report.from?.stack).toBe(writer);
    expect(world.itemIds(newStackOf(report))).toEqual(
      expect.arrayContaining(world.itemIds(writer).filter((id) => id.startsWith('after-commit'))),
    );
    expect(world.state.calls).not.toContain(`delete ${writer}`);
  });

  it("is found by the record's target when the ownership record is missing", async () => {
    const world = seededWorld();
    world.state.dns = { ...world.state.dns!, stack: '' };
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(report.from?.stack).toBe(OLD);
    expect(world.itemIds(newStackOf(report))).toEqual(world.itemIds(OLD));
  });

  it('switches DNS on Route53-shaped records (alias names with a trailing dot) and back again', async () => {
    const world = seededWorld({ awsShaped: true }).fail('probe', { stack: 'green' });
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('rolled-back');
    expect(world.state.dns?.stack).toBe(OLD);
  });
});

describe('tearing down by role', () => {
  it('keeps the previous live stack first, even when a stack kept after a failed switch is newer', async () => {
    const world = seededWorld();
    const keptFailed = 'navcloud-test-green-kept0001';
    world.addStack(keptFailed, 'green', { createdAt: new Date(Date.UTC(2026, 0, 20)).toISOString() });
    const { report } = await runSwitch(testEnv(), { world, env: { keepStacks: 1 } });
    expect(report.outcome).toBe('switched');
    expect(world.state.calls).not.toContain(`delete ${OLD}`);
    expect(world.stack(OLD).description.status).toBe('ready');
    expect(world.state.calls).toContain(`delete ${keptFailed}`);
  });

  it('removes stacks left by runs that are over before creating its own', async () => {
    const world = seededWorld();
    const leftover = 'navcloud-test-green-dead0001';
    world.addStack(leftover, 'green');
    const stack = world.stack(leftover);
    stack.description = { ...stack.description, status: 'failed', rawStatus: 'ROLLBACK_COMPLETE' };
    const { report } = await runSwitch(testEnv(), { world });
    const calls = world.state.calls;
    expect(calls.indexOf(`delete ${leftover}`)).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf(`delete ${leftover}`)).toBeLessThan(
      calls.findIndex((c) => c.startsWith(`create ${newStackOf(report)}`)),
    );
  });
});

describe('admin calls per node', () => {
  it('says so when the old stack lists no nodes to drain, instead of draining nothing in silence', async () => {
    const world = seededWorld();
    const old = world.stack(OLD);
    old.description = { ...old.description, outputs: { ...old.description.outputs!, nodes: [] } };
    const { report } = await runSwitch(testEnv(), { world });
    expect(report.outcome).toBe('switched');
    expect(report.warnings?.join()).toContain('list no nodes: drain and its evidence are per node');
  });
});

describe('one lock per environment', () => {
  it('refuses to start a rollback while a switch of the environment runs (the start itself is the lock)', async () => {
    const world = seededWorld().fail('stacks.waitUntilReady', { message: 'hang' });
    let refusal: unknown;
    await runSwitch(testEnv(), {
      world,
      workflowId: switchWorkflowId('test'),
      during: async (handle) => {
        await untilPhase(handle, 'provisioning');
        refusal = await testEnv()
          .client.workflow.start(rollback, {
            taskQueue: 'nobody',
            workflowId: rollbackWorkflowId('test'),
            args: [{ env: 'test', by: 'zoe' }],
          })
          .catch((e: unknown) => e);
        await handle.executeUpdate(abortUpdate, { args: [{ by: 'zoe', comment: 'done' }] });
      },
    });
    expect(refusal).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  });
});

describe('a report for every closed run', () => {
  it('a switch cancelled while restoring undoes its work, reports cancelled, and deleted the stack only once the import stopped', async () => {
    const steps: string[] = [];
    const world = seededWorld({ importDelayMs: 400, onStep: (what) => steps.push(what) });
    const { report, reportsDir } = await runSwitch(testEnv(), {
      world,
      during: async (handle) => {
        await untilPhase(handle, 'restoring');
        await new Promise((r) => setTimeout(r, 100));
        await handle.cancel();
      },
    });
    expect(report.outcome).toBe('cancelled');
    expect(existsSync(join(reportsDir, `${report.workflowId}.json`))).toBe(true);
    const next = newStackOf(report);
    const deleted = steps.indexOf(`delete ${next}`);
    expect(deleted).toBeGreaterThan(0);
    expect(steps.slice(deleted).some((s) => s.startsWith('import') && s.endsWith(next))).toBe(false);
  });

  it('a switch cancelled while draining still tears down nothing it should keep and writes its report', async () => {
    const world = seededWorld();
    world.state.busyUntilStatsCall = 1_000_000;
    const { report, reportsDir } = await runSwitch(testEnv(), {
      world,
      env: { ttl: 60, drainSeconds: 900, verifySeconds: 0 },
      during: async (handle) => {
        await untilPhase(handle, 'draining');
        await handle.cancel();
      },
    });
    expect(report.outcome).toBe('switched');
    expect(report.warnings?.join()).toContain('cancelled');
    const written = JSON.parse(readFileSync(join(reportsDir, `${report.workflowId}.json`), 'utf8')) as SwitchReport;
    expect(written.outcome).toBe('switched');
    expect(world.state.dns?.stack).toBe(newStackOf(report));
  });
});

describe('history size', () => {
  it('stays under 10,240 events with the longest verification allowed and a day of draining, leaving room for a 12-hour restore', async () => {
    // The old stack stays busy, so the drain waits its whole drainSeconds (a day).
    const world = seededWorld();
    world.state.busyUntilStatsCall = 1_000_000;
    const { report, handle } = await runSwitch(testEnv(), {
      world,
      env: { verifySeconds: MAX_VERIFY_SECONDS, ttl: 60, drainSeconds: 86_400 },
    });
    expect(report.outcome).toBe('switched');
    const events = (await handle.fetchHistory()).events?.length ?? 0;
    // A look at restore progress costs a timer (2 events), an activity (3) and two workflow tasks (6).
    let looks = 0;
    for (
      let at = RESTORE_LOOK_FIRST_MS, every = RESTORE_LOOK_FIRST_MS;
      at <= 12 * 3_600_000;
      every = nextRestoreLookMs(every), at += every
    )
      looks += 1;
    const restoreEvents = looks * 11;
    console.log(
      `history: ${events} events for a switch verifying ${MAX_VERIFY_SECONDS} s and draining a day; a 12-hour restore adds ${looks} looks, about ${restoreEvents} events`,
    );
    expect(events + restoreEvents).toBeLessThan(10_240);
  }, 300_000);
});
