/**
 * The `rollback` and `backupStack` workflows on the time-skipping server with the fake world.
 */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { SwitchReport } from '../../src/switch/contract.ts';
import { backupStack, rollback, stackSwitch } from '../../workflows/index.ts';
import { OLD, seededWorld, workerFor } from './harness.ts';
import { useTimeSkippingEnvironment } from './time-skipping-suite.ts';
import { cursorOf } from '../support/fake-ports.ts';

const testEnv = useTimeSkippingEnvironment();

describe('rollback', () => {
  it('points DNS back at the previous stack with the writes the current one took', async () => {
    const world = seededWorld();
    world.state.writesAfterSwitch = 3;
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const { switched, rolledBack } = await worker.runUntil(async () => {
      const switched: SwitchReport = await testEnv().client.workflow.execute(stackSwitch, {
        taskQueue,
        workflowId: `switch-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2' }],
      });
      const rolledBack = await testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'alice', comment: 'bad release' }],
      });
      return { switched, rolledBack };
    });
    const current = switched.to!.stack;
    expect(rolledBack).toMatchObject({ outcome: 'rolled-back', from: current, to: OLD, by: 'alice' });
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.fenced(OLD)).toBe(false);
    expect(world.stack(OLD).draining).toBe(false);
    expect(world.fenced(current)).toBe(true);
    expect(world.stack(current).draining).toBe(true);
    // The switch drained OLD's nodes; the rollback unfences OLD and undrains every node of it before DNS points back.
    const nodes = (stack: string) => world.stack(stack).description.outputs!.nodes;
    const calls = world.state.calls;
    // Writer first, DNS last: the previous stack undrained (it still forwards), the current one
    // caught up from, fenced, its nodes settled and copied from, then one hand-over: the commit on the current stack
    // (its fence renewed, then it forwards to the previous one), and only then the previous stack
    // opens. Then DNS.
    const rollbackCalls = calls.slice(calls.indexOf(`dns ${current}`));
    expect(rollbackCalls).toEqual([
      `dns ${current}`,
      ...nodes(OLD).map((node) => `drain ${node}`),
      ...nodes(OLD).map((node) => `undrain ${node}`),
      `fence ${current}`,
      ...nodes(current).map((node) => `settled ${node}`),
      `fence ${current}`,
      `forward ${current} to ${OLD}`,
      `unfence ${OLD}`,
      `dns ${OLD}`,
      ...nodes(current).map((node) => `drain ${node}`),
    ]);
    const afterSwitch = world.itemIds(current).filter((id) => id.startsWith('after-switch'));
    expect(afterSwitch).toHaveLength(3);
    expect(world.itemIds(OLD)).toEqual(expect.arrayContaining(afterSwitch));
    expect(world.state.violations).toEqual([]);
  });

  it('leaves the writer where DNS still points when DNS cannot be pointed back, and a later rollback still finds the previous stack', async () => {
    const world = seededWorld();
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const { switched, failed, retried } = await worker.runUntil(async () => {
      const switched: SwitchReport = await testEnv().client.workflow.execute(stackSwitch, {
        taskQueue,
        workflowId: `switch-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2' }],
      });
      world.fail('dns.switch', { stack: OLD, times: 1, message: 'Route53 throttled the change' });
      const failed = await testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'dana' }],
      });
      const afterFailure = {
        dns: world.state.dns?.stack,
        old: world.fenceOf(OLD),
        oldDraining: world.stack(OLD).draining,
        current: world.fenceOf(switched.to!.stack),
      };
      const retried = await testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'dana' }],
      });
      return { switched, failed: { report: failed, ...afterFailure }, retried };
    });
    const current = switched.to!.stack;
    expect(failed.report).toMatchObject({
      outcome: 'failed',
      from: current,
      to: OLD,
      reason: expect.stringContaining('Route53 throttled the change'),
    });
    expect(failed.dns).toBe(current);
    // One writer, the one DNS names: the previous stack forwards to it again, and is drained again for a later rollback.
    expect(failed.current).toEqual(['open', 'open']);
    expect(failed.old).toEqual(['forwarding', 'forwarding']);
    expect(failed.oldDraining).toBe(true);
    expect(retried).toMatchObject({ outcome: 'rolled-back', from: current, to: OLD });
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.fenced(OLD)).toBe(false);
    expect(world.stack(OLD).draining).toBe(false);
    expect(world.state.violations).toEqual([]);
  });

  it('keeps the stack it leaves forwarding when DNS points back but is never seen in sync', async () => {
    const world = seededWorld();
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const { switched, report } = await worker.runUntil(async () => {
      const switched: SwitchReport = await testEnv().client.workflow.execute(stackSwitch, {
        taskQueue,
        workflowId: `switch-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '2' }],
      });
      world.fail('dns.waitInSync', { retryable: false, message: 'change never reached INSYNC' });
      const report = await testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'erin' }],
      });
      return { switched, report };
    });
    const current = switched.to!.stack;
    expect(report).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining(
        `DNS points to ${OLD}, which takes the writes again, and ${current} forwards to it`,
      ),
    });
    expect(world.state.dns?.stack).toBe(OLD);
    // Only one of the two stacks may take writes: the one DNS now names.
    expect(world.fenced(current)).toBe(true);
    expect(world.fenced(OLD)).toBe(false);
    expect(world.stack(OLD).draining).toBe(false);
  });

  it('never returns to a stack kept after a failed switch', async () => {
    const world = seededWorld().fail('smoke', { message: 'stream check failed' });
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const report = await worker.runUntil(async () => {
      const failed: SwitchReport = await testEnv().client.workflow.execute(stackSwitch, {
        taskQueue,
        workflowId: `switch-${randomUUID()}`,
        args: [{ env: 'test', backup: 'latest', trigger: 'ci', version: '3', keepFailed: true }],
      });
      expect(world.stack(failed.to!.stack).description.status).toBe('ready');
      return testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'bob' }],
      });
    });
    expect(report.outcome).toBe('failed');
    expect(world.state.dns?.stack).toBe(OLD);
  });

  it('fails with the reason and changes nothing when there is no previous stack', async () => {
    const world = seededWorld();
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const report = await worker.runUntil(
      testEnv().client.workflow.execute(rollback, {
        taskQueue,
        workflowId: `rollback-${randomUUID()}`,
        args: [{ env: 'test', by: 'bob' }],
      }),
    );
    expect(report).toMatchObject({
      outcome: 'failed',
      from: OLD,
      reason: 'no previous stack of test exists, is ready and served clients before',
    });
    expect(world.state.dns?.stack).toBe(OLD);
    expect(world.state.calls.filter((c) => c.startsWith('fence') || c.startsWith('dns'))).toEqual([]);
  });
});

describe('backupStack', () => {
  it('exports the live stack into a new backup and prunes to backups.keep', async () => {
    const world = seededWorld({ env: { backups: { bucket: 'b', prefix: 'backups/', keep: 2 } } });
    world.addBackup(OLD, 'backups/second.json');
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const report = await worker.runUntil(
      testEnv().client.workflow.execute(backupStack, {
        taskQueue,
        workflowId: `backup-${randomUUID()}`,
        args: [{ env: 'test' }],
      }),
    );
    expect(report.stack).toBe(OLD);
    expect(report.items).toBe(35);
    expect(report.pruned).toEqual(['backups/test-seed.json']);
    const newest = world.state.backups[0]!;
    expect(newest.manifest.key).toBe(report.key);
    expect(newest.manifest.cursor).toBe(cursorOf(world.stack(OLD).seq));
    expect(world.state.backups.map((b) => b.manifest.key)).toEqual([report.key, 'backups/second.json']);
  });

  it('fails with a clear reason when no stack is live', async () => {
    const world = seededWorld();
    delete world.state.dns;
    const { worker, taskQueue } = await workerFor(testEnv().nativeConnection, world);
    const failure = await worker.runUntil(
      testEnv()
        .client.workflow.execute(backupStack, {
          taskQueue,
          workflowId: `backup-${randomUUID()}`,
          args: [{ env: 'test' }],
        })
        .catch((e: unknown) => e),
    );
    expect(String((failure as Error & { cause?: Error }).cause?.message)).toContain(
      'environment test has no ready stack behind its DNS record',
    );
  });
});
