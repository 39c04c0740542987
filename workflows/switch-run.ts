/**
 * What one switch knows about itself and shows the world: the `status` query's answer, the
 * approve and abort updates, the phase timings, the search attributes, the UI's current details,
 * the undo steps registered so far, and finally the report.
 */
import {
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Colour } from '../src/cloud/ports.ts';
import {
  abortUpdate,
  approveUpdate,
  searchAttributes,
  statusQuery,
  switchReport,
  type DataVerification,
  type Decision,
  type Outcome,
  type Phase,
  type RehearsalFigures,
  type RestoreProgress,
  type SmokeCheck,
  type StackRefSummary,
  type SwitchInput,
  type SwitchReport,
  type SwitchStatus,
  type WritePause,
} from '../src/switch/contract.ts';
import type { FlipCounts } from '../src/navcloud/protocol.ts';
import type { NotifyEvent } from '../src/config/environment.ts';
import { notifying, quick } from './activities.ts';
import { PATCHES } from './patches.ts';
import { reasonOf, stop } from './failures.ts';
import { isoAt, workflowNow } from './clock.ts';

/** The notification an ending sends: the events are a contract of the `notify:` config. */
const EVENT_OF: Record<Outcome, NotifyEvent> = {
  switched: 'switched',
  'rolled-back': 'rolled-back',
  rehearsed: 'rehearsed',
  failed: 'failed',
  aborted: 'failed',
  cancelled: 'failed',
};

const BEFORE_SWITCHING: readonly Phase[] = [
  'planning',
  'provisioning',
  'restoring',
  'smoke-testing',
  'catching-up',
  'awaiting-approval',
];

/** One step that undoes what an earlier step did; `replace` gives it a new meaning once the switch moved on. */
export interface Undo {
  what: string;
  run: () => Promise<unknown>;
}

/**
 * Where this run has put the writer (the stack that takes writes of its own) and DNS, told apart
 * from the old stack (the one clients were on) and the new one. It starts on the old stack and
 * changes only through SwitchRun's transitions, in this order (a fence that lapsed before the
 * commit goes back to `fenced`):
 *
 *   on-old -fenced-> fenced -committing-> committing -committed-> committed -dnsSwitched-> switched
 *   and, undoing the flip: -pointedBack-> pointed-back, or -notPointedBack-> not-pointed-back
 */
export type Placement =
  /** Writes and clients on the old stack, or on none: there is no old stack. */
  | { name: 'on-old'; writer: 'old'; dns: 'old' }
  /** The old stack is fenced by this run since `since` (workflow clock): writes wait, the write pause runs. */
  | { name: 'fenced'; writer: 'old'; dns: 'old'; since: number }
  /** The commit is asked for: a forward whose answer was lost committed all the same, so the writer may be either. */
  | { name: 'committing'; writer: 'old or new'; dns: 'old'; since: number }
  /** The old stack forwards every request to the new one; DNS still names the old one. */
  | { name: 'committed'; writer: 'new'; dns: 'old' }
  /** DNS sends clients to the new stack. */
  | { name: 'switched'; writer: 'new'; dns: 'new' }
  /** The flip was undone: writer and DNS on the old stack again. `dnsHadMoved`: pointing back found DNS on the new stack. */
  | { name: 'pointed-back'; writer: 'old'; dns: 'old'; dnsHadMoved: boolean }
  /** Undoing the flip failed: where the writer and DNS are, the report's reason says. */
  | { name: 'not-pointed-back'; writer: 'unknown'; dns: 'unknown'; dnsHadMoved: boolean };

export class SwitchRun {
  private readonly status: SwitchStatus;
  private readonly startedAt = workflowNow();
  private phaseStartedAt = workflowNow();
  private readonly warnings: string[] = [];
  private readonly undoSteps: Undo[] = [];
  private readonly beforeSwitchingScope = new CancellationScope();
  private approvedBy: Decision | undefined;
  private abortedBy: Decision | undefined;
  private where: Placement = { name: 'on-old', writer: 'old', dns: 'old' };
  private verification: DataVerification | undefined;

  /** `rehearsal`: what a rehearsal (workflows/rehearsal.ts) measures as it goes, for its report. */
  constructor(
    readonly input: SwitchInput,
    private readonly rehearsal?: RehearsalFigures,
  ) {
    this.status = { env: input.env, phase: 'planning', phases: [] };
    upsertSearchAttributes([
      { key: searchAttributes.env, value: input.env },
      { key: searchAttributes.version, value: input.version },
      { key: searchAttributes.trigger, value: input.trigger },
    ]);
    setHandler(statusQuery, () => this.status);
    setHandler(approveUpdate, (decision) => this.approve(decision), {
      validator: (decision) => this.validateApprove(decision),
    });
    setHandler(abortUpdate, (decision) => this.abort(decision), {
      validator: (decision) => this.validateAbort(decision),
    });
  }

  get env(): string {
    return this.input.env;
  }

  get phase(): Phase {
    return this.status.phase;
  }

  /** True until DNS may change: an abort is still possible and undoing is local. */
  get beforeSwitching(): boolean {
    return BEFORE_SWITCHING.includes(this.status.phase);
  }

  // ------------------------------------------------------------ decisions

  private validateApprove(decision: Decision): void {
    checkDecision(decision);
    if (this.phase !== 'awaiting-approval')
      throw new Error(`switch-${this.env} is not waiting for approval (it is ${this.phase})`);
  }

  private approve(decision: Decision): SwitchStatus {
    this.approvedBy = decision;
    this.status.approval = { decision: 'approved', ...decision, at: isoAt(workflowNow()) };
    return this.status;
  }

  private validateAbort(decision: Decision): void {
    checkDecision(decision);
    if (this.abortedBy) throw new Error(`switch-${this.env} was already aborted by ${this.abortedBy.by}`);
    if (this.phase === 'rolling-back' || this.phase === 'failed' || this.phase === 'done') {
      throw new Error(`switch-${this.env} is already ${this.phase}`);
    }
    if (this.rehearsal && !this.beforeSwitching)
      throw new Error(`the rehearsal of ${this.env} is already removing its stack`);
    if (!this.beforeSwitching) {
      throw new Error(
        `too late to abort switch-${this.env}: it is ${this.phase} and DNS may already point to the new stack; use rollback instead`,
      );
    }
  }

  private abort(decision: Decision): SwitchStatus {
    this.abortedBy = decision;
    if (this.phase === 'awaiting-approval')
      this.status.approval = { decision: 'aborted', ...decision, at: isoAt(workflowNow()) };
    this.beforeSwitchingScope.cancel();
    return this.status;
  }

  /** Runs the steps up to the switch in the scope an abort cancels. */
  async untilSwitching<T>(steps: () => Promise<T>): Promise<T> {
    const result = await this.beforeSwitchingScope.run(steps);
    // An abort accepted while the last step was finishing did not cancel anything.
    if (this.abortedBy) throw stop('Aborted', 'aborted');
    return result;
  }

  /** Waits for `approve` (returns who) or the approval timeout. */
  async approval(timeoutSeconds: number): Promise<Decision> {
    if (!(await condition(() => this.approvedBy !== undefined, timeoutSeconds * 1000)) || !this.approvedBy) {
      throw stop('ApprovalTimeout', `nobody approved or aborted within ${timeoutSeconds} s`);
    }
    return this.approvedBy;
  }

  // ------------------------------------------------------------ where the writer and DNS are

  /** The old stack's fence is asked for (again, when it lapsed before the commit). */
  fenced(since: number): void {
    this.where = { name: 'fenced', writer: 'old', dns: 'old', since };
  }

  /** The commit is about to be asked for: from here on, undoing means pointing back. */
  committing(): void {
    const { since } = this.fencedState('committing');
    this.where = { name: 'committing', writer: 'old or new', dns: 'old', since };
  }

  /** The old stack forwards to the new one: the write pause ends here. */
  committed(): WritePause {
    const { since } = this.fencedState('committed');
    this.where = { name: 'committed', writer: 'new', dns: 'old' };
    return (this.status.writePause = { fenceToForwardMs: workflowNow() - since });
  }

  dnsSwitched(): void {
    this.where = { name: 'switched', writer: 'new', dns: 'new' };
  }

  /** Pointing back ended: what DNS said when it began decides whether clients had moved. */
  pointedBack(dnsHadMoved: boolean): void {
    this.where = { name: 'pointed-back', writer: 'old', dns: 'old', dnsHadMoved };
  }

  notPointedBack(dnsHadMoved: boolean): void {
    this.where = { name: 'not-pointed-back', writer: 'unknown', dns: 'unknown', dnsHadMoved };
  }

  /** How long writes have waited since the fence, while fenced or committing. */
  writePauseMs(): number {
    return workflowNow() - this.pausedSince();
  }

  /** When the old stack's writes began to be held: its fence, taken anew only after a lapse let writes in. */
  pausedSince(): number {
    return this.fencedState('the write pause').since;
  }

  private fencedState(step: string): Extract<Placement, { since: number }> {
    const where = this.where;
    if (where.name !== 'fenced' && where.name !== 'committing')
      throw new Error(`${step} needs the old stack fenced by this run; the run is ${where.name}`);
    return where;
  }

  // ------------------------------------------------------------ undo

  /** Registers what undoes the step about to run; undone newest first if the switch fails. */
  onUndo(what: string, run: () => Promise<unknown>): Undo {
    const step = { what, run };
    this.undoSteps.push(step);
    return step;
  }

  /** From now on, undoing `step` means something else (it keeps its place in the order). */
  replaceUndo(step: Undo, what: string, run: () => Promise<unknown>): void {
    step.what = what;
    step.run = run;
  }

  /**
   * Undoes what was done, newest first, whatever stopped the switch (a failure, an abort, a
   * cancellation), and writes the report. After the DNS change the outcome is rolled-back only if
   * DNS points back.
   */
  async compensate(err: unknown): Promise<SwitchReport> {
    const reason = this.abortedBy ? `aborted by ${this.abortedBy.by}: ${this.abortedBy.comment}` : reasonOf(err);
    return CancellationScope.nonCancellable(async () => {
      this.enter(
        'rolling-back',
        `${reason}; undoing: ${
          this.undoSteps
            .map((u) => u.what)
            .reverse()
            .join(', ') || 'nothing'
        }`,
      );
      for (const step of [...this.undoSteps].reverse()) {
        try {
          await step.run();
        } catch (undoErr) {
          this.warn(`could not ${step.what}: ${reasonOf(undoErr)}`);
        }
      }
      const where = this.where;
      // A switch with an old stack registered pointing back before its commit, so it has run by now.
      if (where.name === 'switched')
        return this.finish('failed', `${reason}; there is no previous stack to point DNS back to`);
      if (where.name === 'not-pointed-back' && where.dnsHadMoved) {
        return this.finish(
          'failed',
          `${reason}; pointing DNS back to ${this.status.from?.stack ?? 'the previous stack'} failed`,
        );
      }
      const outcome: Outcome = this.abortedBy
        ? 'aborted'
        : isCancellation(err)
          ? 'cancelled'
          : where.name === 'pointed-back' && where.dnsHadMoved
            ? 'rolled-back'
            : 'failed';
      return this.finish(outcome, reason);
    });
  }

  // ------------------------------------------------------------ what the world sees

  enter(phase: Phase, details: string): void {
    this.closePhase();
    this.phaseStartedAt = workflowNow();
    this.status.phase = phase;
    this.status.phases.push({ name: phase, startedAt: isoAt(this.phaseStartedAt), durationMs: 0 });
    upsertSearchAttributes([{ key: searchAttributes.phase, value: phase }]);
    this.describe(details);
    log.info('switch phase', { env: this.env, phase });
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

  /** The backup being restored, and how far the restore got (the stack's own count, at most the backup's). */
  restoring(backup: { key: string; items: number }, imported: number): RestoreProgress {
    this.status.backup = { key: backup.key, items: backup.items };
    return (this.status.restore = { items: Math.min(imported, backup.items), total: backup.items });
  }

  smokeTested(checks: SmokeCheck[]): void {
    this.status.smoke = checks;
  }

  /** What the old stack's nodes held and forwarded through the flip, as the drain's last look gave it. */
  flipCounted(counts: FlipCounts | undefined): WritePause | undefined {
    const pause = this.status.writePause;
    if (pause && counts) Object.assign(pause, counts);
    return pause;
  }

  dataVerified(verification: DataVerification): void {
    this.verification = verification;
  }

  warn(message: string): void {
    this.warnings.push(message);
    log.warn(message, { env: this.env, phase: this.status.phase });
  }

  /** Closes the run and writes its report, even when the run was cancelled. */
  async finish(outcome: Outcome, reason?: string): Promise<SwitchReport> {
    return CancellationScope.nonCancellable(async () => {
      await this.notify(EVENT_OF[outcome], this.endingSummary(outcome, reason));
      const report = this.report(outcome, reason);
      try {
        await quick.writeReport(report);
      } catch (err) {
        this.warn(`could not write the report: ${reasonOf(err)}`);
      }
      return report;
    });
  }

  /**
   * Tells the environment's `notify:` targets (runs started before notifications tell nobody). A
   * notification that fails is a warning in the report, never a failed switch.
   */
  async notify(event: NotifyEvent, summary: string): Promise<void> {
    if (!patched(PATCHES.notifications)) return;
    try {
      const { workflowId } = workflowInfo();
      const delivery = await notifying.notify({ env: this.env, event, workflowId, summary, at: isoAt(workflowNow()) });
      for (const failed of delivery.failed)
        this.warn(`notification '${event}' to ${failed.target} failed: ${failed.reason}`);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.warn(`notification '${event}' was not sent: ${reasonOf(err)}`);
    }
  }

  private endingSummary(outcome: Outcome, reason?: string): string {
    const to = this.status.to?.stack ?? 'a new stack';
    const from = this.status.from?.stack;
    if (this.rehearsal) {
      const { lastDelta, predictedWritePauseMs } = this.rehearsal;
      if (outcome !== 'rehearsed')
        return `rehearsal ${outcome}: a switch would not have gone ahead: ${reason ?? outcome}`;
      return (
        `a switch to ${to} would have gone ahead` +
        (lastDelta ? `; last delta ${lastDelta.items} items, predicted write pause ${predictedWritePauseMs} ms` : '')
      );
    }
    if (outcome === 'switched') return `clients are on ${to}${from ? ` (was ${from})` : ''}`;
    if (outcome === 'rolled-back')
      return `${reason ?? 'rolled back'}; clients are back on ${from ?? 'the previous stack'}`;
    return `${outcome}: ${reason ?? outcome}`;
  }

  private report(outcome: Outcome, reason?: string): SwitchReport {
    this.enter(outcome === 'switched' || outcome === 'rehearsed' ? 'done' : 'failed', reason ?? outcome);
    this.closePhase();
    if (reason) this.status.error = reason;
    const { workflowId, runId } = workflowInfo();
    return {
      ...switchReport(this.input, this.status, {
        workflowId,
        runId,
        outcome,
        reason,
        smoke: this.status.smoke ?? [],
        warnings: this.warnings,
        startedAt: isoAt(this.startedAt),
        finishedAt: isoAt(workflowNow()),
      }),
      ...(this.rehearsal ? { rehearsal: this.rehearsal } : {}),
      ...(this.verification ? { verification: this.verification } : {}),
    };
  }

  private closePhase(): void {
    const current = this.status.phases.at(-1);
    if (current) current.durationMs = workflowNow() - this.phaseStartedAt;
  }
}

function checkDecision(decision: Decision): void {
  if (!decision || typeof decision.by !== 'string' || !decision.by.trim())
    throw new Error('a decision needs `by`: who decides');
  if (typeof decision.comment !== 'string') throw new Error('a decision needs `comment`: why');
}
