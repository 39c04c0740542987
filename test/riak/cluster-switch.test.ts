/**
 * A whole switch of the local profile with every stack on the real three-node Riak cluster, under
 * client load, and one Riak node killed while the switch catches up (started again seconds later):
 * no acknowledged write lost, the data check passes. Then the data check on a copy damaged on purpose
 * on the cluster: it names what the new stack lacks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { environmentsDir, loadEnvironment, resolveSecret, type Environment } from '../../src/config/environment.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { createRootLogger } from '../../src/logging.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { compareStacks } from '../../src/navcloud/compare.ts';
import { RiakClient } from '../../server/store/riak/client.ts';
import { parseRiakUrl } from '../../server/store/riak/config.ts';
import { switchUnderLoad } from '../../src/local/switch-under-load.ts';
import { statusQuery } from '../../src/switch/contract.ts';
import { startTestEnvironment, type TestEnvironment } from '../local/local-env.ts';
import {
  APP_STACK_QUORUMS,
  clusterRunning,
  onCluster,
  nodeHttp,
  strike,
  waitSettled,
} from '../support/riak-cluster.ts';

/** Kills Riak node 3 once the switch is catching up, and starts it again `downMs` later. */
async function killDuringCatchUp(client: Client, workflowId: string, downMs: number, events: string[]): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  for (let looks = 0; looks < 1_200; looks++) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.phase === 'catching-up') break;
    if (status && ['switching', 'verifying', 'done', 'failed', 'rolling-back'].includes(status.phase))
      throw new Error(`the switch reached ${status.phase} before catching up`);
    await sleep(250);
  }
  events.push('catching up: killing dev3');
  const undo = await strike('kill', 3);
  await sleep(downMs);
  events.push('starting dev3 again');
  await undo();
  events.push('dev3 back');
}

describe.runIf(clusterRunning)(
  onCluster('a switch on the real Riak cluster, one Riak node killed during catch-up'),
  () => {
    let t: TestEnvironment;
    let env: Environment;
    const log = createRootLogger('riak-cluster-switch-test', { level: 'warn' });

    let envDir: string;

    beforeAll(async () => {
      await waitSettled();
      // dev keeps no old stack; the damaged-copy check needs the one the switch left.
      envDir = mkdtempSync(join(tmpdir(), 'switchyard-riak-cluster-envs-'));
      writeFileSync(
        join(envDir, 'dev.yaml'),
        readFileSync(join(environmentsDir, 'dev.yaml'), 'utf8').replace(/^keepStacks: 0$/m, 'keepStacks: 1'),
      );
      env = await loadEnvironment('dev', envDir);
      expect(env.keepStacks).toBe(1);
      t = await startTestEnvironment(300, {
        store: `riak:${nodeHttp(1)}?${APP_STACK_QUORUMS}`,
        environmentsDir: envDir,
      });
    }, 300_000);

    afterAll(async () => {
      const left = await t?.stop();
      rmSync(envDir, { recursive: true, force: true });
      expect(left?.leftoverPids ?? []).toEqual([]);
      expect(left?.leftoverStacks ?? []).toEqual([]);
    });

    it('switches with no acknowledged write lost and every item verified', async () => {
      const events: string[] = [];
      let fault: Promise<void> | undefined;
      const run = await switchUnderLoad({
        client: t.client,
        env,
        state: t.localEnvironment.state,
        load: { users: 4, writesPerSecond: 10, nonRetrying: { users: 6, writesPerSecond: 6 } },
        log,
        onStarted: (workflowId) => {
          fault = killDuringCatchUp(t.client, workflowId, 8_000, events);
        },
      });
      await fault;
      console.log(
        `switch on the cluster: ${run.report.outcome}; ${run.clients.writesAcknowledged} writes acknowledged, ${run.clients.writesLost} lost, ` +
          `${run.clients.failedRequests} failed requests; verified ${run.report.verification?.itemsCompared} items\n  ${events.join('\n  ')}`,
      );
      expect(events).toContain('dev3 back');
      expect(run.report.outcome, run.report.reason).toBe('switched');
      expect(run.clients.writesAcknowledged).toBeGreaterThan(0);
      expect(run.clients.writesLost).toBe(0);
      expect(run.report.verification).toMatchObject({ mismatches: 0 });
    }, 900_000);

    it('names the items of a copy damaged on the cluster', async () => {
      const ports = createPorts(env, log, t.localEnvironment.state);
      const live = (await ports.dns.current(env.recordName))!.stack;
      const stacks = await ports.stacks.list(env.name);
      const old = stacks.find((stack) => stack.name !== live && stack.outputs)!;
      const admin = (stack: string) =>
        createAdminClient({
          adminUrl: stacks.find((s) => s.name === stack)!.outputs!.adminUrl,
          jwtSecret: resolveSecret(env.jwtSecret),
        });
      expect(old, 'the switch keeps the stack it left (keepStacks)').toBeDefined();
      const before = await compareStacks(admin(old.name), admin(live));
      expect(before.mismatches).toBe(0);
      // Damage the copy behind the store's back: one item gone from the new stack's bucket, one set back.
      const riak = new RiakClient(parseRiakUrl(`${nodeHttp(2)}?${APP_STACK_QUORUMS}&bucket=${live}`));
      const listed: string[] = [];
      for await (const line of admin(old.name).revisionsById())
        if (line.kind === 'revision' && listed.length < 2) listed.push(line.id);
      const [gone, setBack] = listed as [string, string];
      await fetch(`${nodeHttp(2)}/types/navcloud/buckets/${live}/keys/${gone}?rw=all`, { method: 'DELETE' });
      const found = await riak.fetch(live, setBack);
      if (found.kind !== 'found') throw new Error(`${setBack} is not on ${live}`);
      const record = JSON.parse(found.values[0]!.body.toString('utf8')) as { rev: string; copiedRev?: string };
      await riak.store(live, setBack, {
        body: JSON.stringify({ ...record, rev: '0-000000000000', copiedRev: '0-000000000000' }),
        vclock: found.vclock,
        indexes: {},
      });
      riak.close();
      const after = await compareStacks(admin(old.name), admin(live));
      expect(after.mismatches).toBe(2);
      expect(after.firstMismatches.map((m) => [m.id, m.problem]).sort()).toEqual(
        [
          [gone, 'missing'],
          [setBack, 'older'],
        ].sort(),
      );
    }, 300_000);
  },
);
