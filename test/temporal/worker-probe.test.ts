import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NativeConnection } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { SwitchReport } from '../../src/switch/contract.ts';
import { SwitchMetrics } from '../../src/temporal/switch-metrics.ts';
import { startWorkerProbe } from '../../src/temporal/worker-probe.ts';
import { createRootLogger } from '../../src/logging.ts';
import { freePort } from '../../src/net.ts';
import { createActivities } from '../../activities/index.ts';
import { FakeWorld } from '../support/fake-ports.ts';
import { tempDir } from '../support/temp-dir.ts';

const report = (outcome: SwitchReport['outcome'], env = 'qa'): SwitchReport => ({
  env,
  workflowId: `switch-${env}`,
  outcome,
  trigger: 'ci',
  version: '1.4.2',
  backup: { key: 'b1', items: 12_000 },
  phases: [
    { name: 'planning', startedAt: '2026-11-28T19:00:00.000Z', durationMs: 400 },
    { name: 'restoring', startedAt: '2026-11-28T19:00:01.000Z', durationMs: 6_000 },
    { name: 'switching', startedAt: '2026-11-28T19:05:00.000Z', durationMs: 1_500 },
  ],
  smoke: { checks: [] },
  startedAt: '2026-11-28T19:00:00.000Z',
  finishedAt: '2026-11-28T19:06:00.000Z',
});

describe('switch metrics', () => {
  it('the writeReport activity records outcome, phase durations, write pause and restore throughput, on either profile', async () => {
    const metrics = new SwitchMetrics();
    for (const profile of ['local', 'aws'] as const) {
      const activities = createActivities({ ...new FakeWorld().deps(tempDir('reports-').path, { profile }), metrics });
      await new MockActivityEnvironment().run(activities.writeReport, report('switched'));
    }
    const activities = createActivities({ ...new FakeWorld().deps(tempDir('reports-').path), metrics });
    await new MockActivityEnvironment().run(activities.writeReport, {
      ...report('rolled-back'),
      writePause: { fenceToForwardMs: 300, requestsHeld: 6, holdsTimedOut: 1, requestsForwarded: 40 },
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain('switchyard_switches_total{env="qa",outcome="switched"} 2');
    expect(text).toContain('switchyard_switches_total{env="qa",outcome="rolled-back"} 1');
    expect(text).toContain('switchyard_switch_phase_seconds_sum{env="qa",phase="restoring"} 18');
    expect(text).toContain('switchyard_switch_phase_seconds_count{env="qa",phase="planning"} 3');
    // Two reports without a measured pause count their switching phase (1.5 s); one measured 0.3 s.
    expect(text).toContain('switchyard_write_pause_seconds_sum{env="qa"} 3.3');
    expect(text).toContain('switchyard_flip_requests_total{env="qa",handling="held"} 6');
    expect(text).toContain('switchyard_flip_requests_total{env="qa",handling="hold-timed-out"} 1');
    expect(text).toContain('switchyard_flip_requests_total{env="qa",handling="forwarded"} 40');
    // 12,000 items in 6 s, three times.
    expect(text).toContain('switchyard_restore_items_per_second_sum{env="qa"} 6000');
    expect(text).toContain('switchyard_restored_items_total{env="qa"} 36000');
    expect(text).toMatch(/^switchyard_worker_process_cpu_seconds_total \d/m);
  });
});

describe('the worker probe', () => {
  let connection: NativeConnection;
  beforeAll(async () => {
    connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    await connection?.close();
  });

  it("answers 503 naming what is not ready while the worker has not started, and serves metrics without the SDK's", async () => {
    const metrics = new SwitchMetrics();
    const probe = await startWorkerProbe(
      { host: '127.0.0.1', port: 0 },
      {
        connection,
        worker: () => undefined,
        metrics,
        logger: createRootLogger('probe-test', { level: 'silent' }),
        sdkMetricsUrl: `http://127.0.0.1:${await freePort()}/metrics`,
      },
    );
    try {
      const res = await fetch(`${probe.url}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        ok: false,
        worker: 'not started',
        pollers: { workflow: 'none', activity: 'none' },
        temporal: 'reachable',
      });
      const scrape = await fetch(`${probe.url}/metrics`);
      expect(scrape.headers.get('content-type')).toContain('text/plain');
      const text = await scrape.text();
      expect(text).toContain('# TYPE switchyard_switches_total counter');
      expect(text).toMatch(/^# Temporal SDK metrics unavailable: /m);
      expect((await fetch(`${probe.url}/healthz`, { method: 'POST' })).status).toBe(404);
    } finally {
      await probe.close();
    }
  });
});
