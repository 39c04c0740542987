import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environmentsDir, loadEnvironment, resolveSecret, type Environment } from '../../src/config/environment.ts';
import { createPorts } from '../../src/cloud/factory.ts';
import { createRootLogger } from '../../src/logging.ts';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import type { FenceMode } from '../../src/navcloud/protocol.ts';
import { switchUnderLoad } from '../../src/local/switch-under-load.ts';
import { startTestEnvironment, type TestEnvironment } from './local-env.ts';

/** Short, so the drill stays quick: the shortest lease the environment file allows. */
const LEASE_SECONDS = 10;
/** The worker stays frozen this much longer than the lease. */
const FROZEN_PAST_LEASE_MS = 5_000;
/** What a client may wait at most beyond the lease: a hold of writes, a retry of the fence, a commit. */
const SLACK_MS = 10_000;

/**
 * Issue 18: the worker process frozen (SIGSTOP) for longer than the fence lease right after the old
 * stack is fenced, with plain clients (never retrying) writing through DNS. The old stack's nodes
 * measure the lease themselves and open again; the thawed worker finds its fence lapsed (a new
 * epoch), fences again and copies again, so nothing acknowledged is lost and no client waits much
 * longer than the lease.
 */
describe('the worker frozen right after the fence, on the local profile', () => {
  let t: TestEnvironment;
  let env: Environment;
  let envDir: string;
  const log = createRootLogger('stall-drill-test', { level: 'warn' });

  beforeAll(async () => {
    envDir = mkdtempSync(join(tmpdir(), 'switchyard-stall-envs-'));
    writeFileSync(
      join(envDir, 'dev.yaml'),
      `${readFileSync(join(environmentsDir, 'dev.yaml'), 'utf8')}fenceLeaseSeconds: ${LEASE_SECONDS}\nmaxWritePauseSeconds: 60\n`,
    );
    env = await loadEnvironment('dev', envDir);
    t = await startTestEnvironment(2_000, { environmentsDir: envDir });
  }, 240_000);

  afterAll(async () => {
    const left = await t?.stop();
    rmSync(envDir, { recursive: true, force: true });
    expect(left?.leftoverPids ?? []).toEqual([]);
    expect(left?.leftoverStacks ?? []).toEqual([]);
  });

  it('loses no acknowledged write, ends switched or rolled back, and keeps no client waiting longer than the lease and a few seconds', async () => {
    const ports = createPorts(env, log, t.localEnvironment.state);
    const before = (await ports.dns.current(env.recordName))!.stack;
    const old = (await ports.stacks.describe(before))!.outputs!;
    const admin = createAdminClient({
      adminUrl: old.adminUrl,
      jwtSecret: resolveSecret(env.jwtSecret),
      requestTimeoutMs: 2_000,
    });
    let modeWhenFrozen: FenceMode | undefined;
    let frozenMs = 0;
    const result = await switchUnderLoad({
      client: t.client,
      env,
      state: t.localEnvironment.state,
      log,
      load: { users: 4, writesPerSecond: 8, nonRetrying: { users: 10, writesPerSecond: 10 } },
      onStarted: async () => {
        // Right after the fence: the worker is stopped between taking it and committing.
        const deadline = Date.now() + 180_000;
        while ((await admin.fenceState()).mode !== 'fenced') {
          if (Date.now() > deadline) throw new Error(`${before} was never fenced`);
          await sleep(2);
        }
        const worker = t.localEnvironment.state.processes.worker!;
        process.kill(worker, 'SIGSTOP');
        const frozenAt = Date.now();
        modeWhenFrozen = (await admin.fenceState()).mode;
        try {
          await sleep(LEASE_SECONDS * 1000 + FROZEN_PAST_LEASE_MS);
        } finally {
          process.kill(worker, 'SIGCONT');
          frozenMs = Date.now() - frozenAt;
        }
      },
    });
    const plain = result.clients.nonRetrying!;
    console.log(
      `stall drill: worker frozen ${frozenMs} ms with ${before} ${modeWhenFrozen} (lease ${LEASE_SECONDS} s); switch ${result.report.outcome}` +
        `${result.report.reason ? ` (${result.report.reason})` : ''}; plain clients: ${plain.writesAcknowledged} writes acknowledged, ${plain.writesLost} lost, ` +
        `${plain.failedRequests} of ${plain.requests} requests failed, longest wait ${plain.maxWritePauseMs} ms; retrying clients: ` +
        `${result.clients.writesAcknowledged} acknowledged, ${result.clients.writesLost} lost, longest wait ${result.clients.maxWritePauseMs} ms`,
    );
    expect(modeWhenFrozen).toBe('fenced');
    expect(frozenMs).toBeGreaterThan(LEASE_SECONDS * 1000);
    expect(['switched', 'rolled-back']).toContain(result.report.outcome);
    expect(plain.writesAcknowledged).toBeGreaterThan(0);
    expect(plain.writesLost).toBe(0);
    expect(result.clients.writesLost).toBe(0);
    expect(plain.maxWritePauseMs).toBeLessThanOrEqual(LEASE_SECONDS * 1000 + SLACK_MS);
  }, 420_000);
});
