/*
 * Frozen: the previous release's code, which switches and rollbacks started before patch
 * `switch-protocol-v2` (workflows/patches.ts) finish on. Do not change what it does; delete it
 * once no such run is open (and the first generation of history fixtures with it).
 */
/**
 * What one switch knows about itself and shows the world: the `status` query's answer, the
 * phase timings, the search attributes and the UI's current details, and finally the report.
 */
import { setCurrentDetails, upsertSearchAttributes, workflowInfo, log } from '@temporalio/workflow';
import type { Colour } from '../../src/cloud/ports.ts';
import {
  searchAttributes,
  type Outcome,
  type Phase,
  type SmokeCheck,
  type StackRefSummary,
  type SwitchInput,
  type SwitchReport,
  type SwitchStatus,
} from '../../src/switch/contract.ts';
import { isoAt, workflowNow } from '../clock.ts';

const BEFORE_SWITCHING: readonly Phase[] = [
  'planning',
  'provisioning',
  'restoring',
  'smoke-testing',
  'catching-up',
  'awaiting-approval',
];

export class SwitchRun {
  readonly status: SwitchStatus;
  readonly startedAt = workflowNow();
  private phaseStartedAt = workflowNow();
  private readonly warnings: string[] = [];
  smokeChecks: SmokeCheck[] = [];

  constructor(readonly input: SwitchInput) {
    this.status = { env: input.env, phase: 'planning', phases: [] };
    upsertSearchAttributes([
      { key: searchAttributes.env, value: input.env },
      { key: searchAttributes.version, value: input.version },
      { key: searchAttributes.trigger, value: input.trigger },
    ]);
  }

  get phase(): Phase {
    return this.status.phase;
  }

  /** True until DNS may change: an abort is still possible and undoing is local. */
  get beforeSwitching(): boolean {
    return BEFORE_SWITCHING.includes(this.status.phase);
  }

  enter(phase: Phase, details: string): void {
    this.closePhase();
    this.phaseStartedAt = workflowNow();
    this.status.phase = phase;
    this.status.phases.push({ name: phase, startedAt: isoAt(this.phaseStartedAt), durationMs: 0 });
    upsertSearchAttributes([{ key: searchAttributes.phase, value: phase }]);
    this.describe(details);
    log.info('switch phase', { env: this.input.env, phase });
  }

  /** Words for the UI's current details, headed by the phase. */
  describe(details: string): void {
    setCurrentDetails(`**${this.status.phase}** — ${details}`);
  }

  planned(from: StackRefSummary | undefined, to: { stack: string; colour: Colour }): void {
    this.status.from = from;
    this.status.to = to;
    upsertSearchAttributes([
      { key: searchAttributes.colour, value: to.colour },
      { key: searchAttributes.stack, value: to.stack },
    ]);
  }

  warn(message: string): void {
    this.warnings.push(message);
    log.warn(message, { env: this.input.env, phase: this.status.phase });
  }

  finish(outcome: Outcome, reason?: string): SwitchReport {
    this.enter(outcome === 'switched' ? 'done' : 'failed', reason ?? 'switched');
    this.closePhase();
    if (reason) this.status.error = reason;
    const info = workflowInfo();
    return {
      env: this.input.env,
      workflowId: info.workflowId,
      runId: info.runId,
      outcome,
      ...(reason ? { reason } : {}),
      trigger: this.input.trigger,
      version: this.input.version,
      from: this.status.from,
      to: this.status.to,
      backup: this.status.backup,
      phases: this.status.phases,
      smoke: { checks: this.smokeChecks },
      approval: this.status.approval,
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
      startedAt: isoAt(this.startedAt),
      finishedAt: isoAt(workflowNow()),
    };
  }

  private closePhase(): void {
    const current = this.status.phases.at(-1);
    if (current) current.durationMs = workflowNow() - this.phaseStartedAt;
  }
}
