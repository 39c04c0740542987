/**
 * Switchyard's own Prometheus metrics, recorded in the worker from each switch's report (the
 * writeReport activity), so workflow code stays untouched and a replay records nothing.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SwitchReport } from '../switch/contract.ts';

const minutes = (...m: number[]) => m.map((n) => n * 60);

export class SwitchMetrics {
  readonly registry = new Registry();

  private readonly switches = new Counter({
    name: 'switchyard_switches_total',
    help: 'Switches that ended, by environment and outcome (switched, failed, rolled-back, aborted).',
    labelNames: ['env', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly phases = new Histogram({
    name: 'switchyard_switch_phase_seconds',
    help: 'How long each phase of a switch took, by environment and phase.',
    labelNames: ['env', 'phase'] as const,
    buckets: [1, 5, 15, 30, ...minutes(1, 2, 5, 10, 20, 30, 60, 120, 240, 480, 720)],
    registers: [this.registry],
  });

  private readonly writePause = new Histogram({
    name: 'switchyard_write_pause_seconds',
    help: "How long writes waited during a switch: from the old stack's fence to its forwarding (runs from before the flip measured it: their switching phase).",
    labelNames: ['env'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });

  private readonly flipRequests = new Counter({
    name: 'switchyard_flip_requests_total',
    help: 'Requests the old stacks of switches held through their fence or forwarded to the new stack, by environment and what happened (held, hold-timed-out, forwarded).',
    labelNames: ['env', 'handling'] as const,
    registers: [this.registry],
  });

  private readonly restoreRate = new Histogram({
    name: 'switchyard_restore_items_per_second',
    help: 'Restore throughput of a switch: backup items imported per second of its restoring phase.',
    labelNames: ['env'] as const,
    buckets: [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000],
    registers: [this.registry],
  });

  private readonly restored = new Counter({
    name: 'switchyard_restored_items_total',
    help: 'Backup items restored into new stacks, by environment.',
    labelNames: ['env'] as const,
    registers: [this.registry],
  });

  constructor() {
    // The worker process itself: heap, event-loop lag, open handles.
    collectDefaultMetrics({ register: this.registry, prefix: 'switchyard_worker_' });
  }

  record(report: SwitchReport): void {
    const { env } = report;
    this.switches.inc({ env, outcome: report.outcome });
    for (const phase of report.phases) this.phases.observe({ env, phase: phase.name }, phase.durationMs / 1000);
    const switching = report.phases.find((p) => p.name === 'switching');
    const pauseMs = report.writePause?.fenceToForwardMs ?? switching?.durationMs;
    if (pauseMs !== undefined) this.writePause.observe({ env }, pauseMs / 1000);
    const counts = report.writePause;
    if (counts?.requestsForwarded !== undefined) {
      this.flipRequests.inc({ env, handling: 'held' }, counts.requestsHeld ?? 0);
      this.flipRequests.inc({ env, handling: 'hold-timed-out' }, counts.holdsTimedOut ?? 0);
      this.flipRequests.inc({ env, handling: 'forwarded' }, counts.requestsForwarded);
    }
    const restoring = report.phases.find((p) => p.name === 'restoring');
    if (report.backup && restoring) {
      this.restored.inc({ env }, report.backup.items);
      if (restoring.durationMs > 0)
        this.restoreRate.observe({ env }, report.backup.items / (restoring.durationMs / 1000));
    }
  }
}
