import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeResourceRecordSetsCommand } from '@aws-sdk/client-route-53';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadEnvironment, resolveSecret, type Environment } from '../../src/config/environment.ts';
import { createPorts, localHostedZone, LOCAL_CREDENTIALS } from '../../src/cloud/factory.ts';
import { route53Client, s3Client } from '../../src/cloud/aws/clients.ts';
import { isRunning } from '../../src/cloud/local/processes.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { createRootLogger } from '../../src/logging.ts';
import { switchUnderLoad, type SwitchUnderLoad } from '../../src/local/switch-under-load.ts';
import type { Ports } from '../../src/cloud/ports.ts';
import { untilPhase } from '../support/phase.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';

/**
 * The fault drills of issue 5, each a real switch of dev under a small client load, in one local
 * environment: the worker crashing mid-switch, a broken new stack, a refused DNS change, a
 * corrupted backup.
 */
describe('fault drills on the local profile', () => {
  let t: TestEnvironment;
  let env: Environment;
  let ports: Ports;
  const log = createRootLogger('drill-test', { level: 'warn' });
  const load = { users: 4, writesPerSecond: 8 };

  beforeAll(async () => {
    env = await loadEnvironment('dev');
    // Enough items that restoring lasts long enough to crash the worker in the middle of it.
    t = await startTestEnvironment(30_000);
    ports = createPorts(env, log, t.localEnvironment.state);
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    expect(left?.leftoverPids ?? []).toEqual([]);
    expect(left?.leftoverStacks ?? []).toEqual([]);
  });

  /** Polls the workflow until an activity of this type is running on a worker (bounded). */
  async function waitForRunningActivity(workflowId: string, type: string): Promise<void> {
    const handle = t.client.workflow.getHandle(workflowId);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const { raw } = await handle.describe();
      // A start time means a worker picked the attempt up (not merely scheduled).
      if (raw.pendingActivities?.some((a) => a.activityType?.name === type && a.lastStartedTime)) return;
      if (raw.workflowExecutionInfo?.closeTime) break;
      await sleep(20);
    }
    throw new Error(`activity ${type} of ${workflowId} was never seen running`);
  }

  /** Every stack dir's node processes that still run, by stack. */
  function runningStacks(): string[] {
    const stacksDir = join(t.dataDir, 'stacks');
    return readdirNames(stacksDir).filter((name) => {
      const stack = JSON.parse(readFileSync(join(stacksDir, name, 'stack.json'), 'utf8')) as {
        nodes: Array<{ id: string }>;
      };
      return stack.nodes.some((n) => {
        try {
          return isRunning(
            Number(readFileSync(join(stacksDir, name, `${n.id.slice(n.id.lastIndexOf('node-'))}.pid`), 'utf8')),
            `SYNC_NODE_ID=${n.id}`,
          );
        } catch {
          return false;
        }
      });
    });
  }

  async function expectOnlyLive(): Promise<string> {
    const live = (await ports.dns.current(env.recordName))!.stack;
    expect((await ports.stacks.list(env.name)).map((s) => s.name)).toEqual([live]);
    expect(runningStacks()).toEqual([live]);
    return live;
  }

  async function expectUnfenced(stack: string): Promise<void> {
    const outputs = (await ports.stacks.describe(stack))!.outputs!;
    const admin = createAdminClient({ adminUrl: outputs.adminUrl, jwtSecret: resolveSecret(env.jwtSecret) });
    for (const node of outputs.nodes) expect((await admin.stats(node)).fenced).toBe(false);
  }

  function expectClientsUnharmed(result: SwitchUnderLoad): void {
    expect(result.clients.failedRequests).toBe(0);
    expect(result.clients.writesLost).toBe(0);
    expect(result.clients.missedEvents).toBe(0);
  }

  // Restoring: killed while the restore activity itself streams the backup, which must resume.
  for (const [phase, activity] of [
    ['restoring', 'restoreBackup'],
    ['draining', undefined],
  ] as const) {
    it(`finishes a switch whose worker was killed during ${phase} and restarted, leaving nothing behind`, async () => {
      const before = (await ports.dns.current(env.recordName))!.stack;
      const result = await switchUnderLoad({
        client: t.client,
        env,
        state: t.localEnvironment.state,
        load,
        log,
        onStarted: async (workflowId) => {
          await untilPhase(t.client.workflow.getHandle(workflowId), [phase]);
          if (activity) await waitForRunningActivity(workflowId, activity);
          await t.localEnvironment.processes.worker.kill();
          await sleep(1_000);
          await t.localEnvironment.processes.worker.start();
        },
      });
      expect(result.report.outcome).toBe('switched');
      expect(result.report.from?.stack).toBe(before);
      expectClientsUnharmed(result);
      expect(await expectOnlyLive()).toBe(result.report.to!.stack);
    }, 300_000);
  }

  it('fails the smoke tests when a node of the new stack dies first: DNS untouched, new stack removed', async () => {
    const before = (await ports.dns.current(env.recordName))!;
    let newStack = '';
    const result = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      load,
      log,
      onStarted: async (workflowId) => {
        const status = await untilPhase(t.client.workflow.getHandle(workflowId), ['restoring']);
        newStack = status.to!.stack;
        const pid = Number(readFileSync(join(t.dataDir, 'stacks', newStack, 'node-2.pid'), 'utf8'));
        process.kill(pid, 'SIGKILL');
      },
    });
    expect(result.report.outcome).toBe('failed');
    expect(result.report.smoke.checks.some((c) => !c.ok)).toBe(true);
    expect(await ports.dns.current(env.recordName)).toEqual(before);
    expect(await ports.stacks.describe(newStack)).toBeUndefined();
    expectClientsUnharmed(result);
    await expectOnlyLive();
    await expectUnfenced(before.stack);
  }, 300_000);

  it('fails cleanly when Route53 refuses the DNS change: the old stack stays live and unfenced', async () => {
    const before = (await ports.dns.current(env.recordName))!;
    const route53 = route53Client({
      region: t.localEnvironment.state.region,
      endpoint: t.localEnvironment.state.motoEndpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    const result = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      load,
      log,
      onStarted: async (workflowId) => {
        await untilPhase(t.client.workflow.getHandle(workflowId), ['smoke-testing', 'catching-up']);
        // Someone else touches the record (same addresses, another TTL) after planning read it:
        // the switch's compare-and-swap batch no longer matches and Route53 refuses it.
        await route53.send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: localHostedZone(env, t.localEnvironment.state),
            ChangeBatch: {
              Changes: [
                {
                  Action: 'UPSERT',
                  ResourceRecordSet: {
                    Name: env.recordName,
                    Type: 'A',
                    TTL: env.ttl + 1,
                    ResourceRecords: (before.target.kind === 'a' ? before.target.addresses : []).map((Value) => ({
                      Value,
                    })),
                  },
                },
              ],
            },
          }),
        );
      },
    });
    expect(result.report.outcome).toBe('failed');
    expect(result.report.reason).toMatch(/DNS|record/i);
    const after = (await ports.dns.current(env.recordName))!;
    expect(after.stack).toBe(before.stack);
    expect(after.target).toEqual(before.target);
    expectClientsUnharmed(result);
    await expectOnlyLive();
    await expectUnfenced(before.stack);
  }, 300_000);

  it('stops before switching when the latest backup is corrupted, naming the backup', async () => {
    const before = (await ports.dns.current(env.recordName))!;
    const latest = (await ports.backups.latest(env.name))!;
    // The manifest's checksum no longer matches the data: what a bit flip in storage looks like to a reader.
    const s3 = s3Client({
      region: t.localEnvironment.state.region,
      endpoint: t.localEnvironment.state.motoEndpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    const manifest = JSON.parse(
      await (
        await s3.send(new GetObjectCommand({ Bucket: env.backups.bucket, Key: latest.key }))
      ).Body!.transformToString(),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: env.backups.bucket,
        Key: latest.key,
        ContentType: 'application/json',
        Body: JSON.stringify({ ...manifest, sha256: 'f'.repeat(64) }),
      }),
    );
    const result = await switchUnderLoad({ client: t.client, env, state: t.localEnvironment.state, load, log });
    expect(result.report.outcome).toBe('failed');
    expect(result.report.reason).toContain(latest.key.replace(/manifest\.json$/, ''));
    expect(result.report.phases.map((p) => p.name)).not.toContain('switching');
    expect(await ports.dns.current(env.recordName)).toEqual(before);
    expectClientsUnharmed(result);
    await expectOnlyLive();
    await expectUnfenced(before.stack);
  }, 300_000);
});

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}
