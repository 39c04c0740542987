/**
 * The orchestrator's client contract, shared by workflow code and every client: task queue, the
 * switch's and the schedule's ids, search-attribute keys, what a switch carries from its start
 * (input, summary), its `status` query and its `approve` and `abort` updates, the report CI
 * archives (docs/architecture.md), and the ids, inputs and results of the rollback, backup and
 * nightly-refresh workflows. Pure: workflow code imports it; clients load no other workflow module.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Colour } from '../cloud/ports.ts';

export const TASK_QUEUE = 'switchyard';
/**
 * The fence lease of an environment file that names none (`fenceLeaseSeconds`), and of runs
 * planned before leases existed: declared once, for the configuration and the workflows.
 */
export const DEFAULT_FENCE_LEASE_SECONDS = 60;
/** The longest a flip may hold writes (fence to commit) when the environment file names none (`maxWritePauseSeconds`). */
export const DEFAULT_MAX_WRITE_PAUSE_SECONDS = 30;
export const switchWorkflowId = (env: string) => `switch-${env}`;
export const scheduleId = (env: string) => `nightly-refresh-${env}`;

export const PHASES = [
  'planning',
  'provisioning',
  'restoring',
  'smoke-testing',
  'catching-up',
  'awaiting-approval',
  'switching',
  'verifying',
  'draining',
  'tearing-down',
  'done',
  'rolling-back',
  'failed',
] as const;
export type Phase = (typeof PHASES)[number];

export type Trigger = 'ci' | 'schedule' | 'manual';
/** `rehearsed`: a rehearsal (`switch --rehearse`) found that a switch would have gone ahead. */
export type Outcome = 'switched' | 'failed' | 'rolled-back' | 'aborted' | 'cancelled' | 'rehearsed';

/**
 * Search attributes of a switch: set by its starter (env, trigger, version) and by the switch as it
 * goes (phase, colour, stack). The dev server registers them; a hosted namespace needs them too.
 */
export const searchAttributes = {
  env: defineSearchAttributeKey('SwitchEnv', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('SwitchPhase', SearchAttributeType.KEYWORD),
  colour: defineSearchAttributeKey('SwitchColor', SearchAttributeType.KEYWORD),
  stack: defineSearchAttributeKey('SwitchStack', SearchAttributeType.KEYWORD),
  version: defineSearchAttributeKey('SwitchVersion', SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey('SwitchTrigger', SearchAttributeType.KEYWORD),
};

export interface SwitchInput {
  env: string;
  /** 'latest' or a backup manifest key. */
  backup: string;
  approval?: 'auto' | 'manual';
  keepFailed?: boolean;
  trigger: Trigger;
  /** Application version being rolled out (a template parameter of the stack). */
  version: string;
}

export function switchStartAttributes(input: Pick<SwitchInput, 'env' | 'trigger' | 'version'>): SearchAttributePair[] {
  return [
    { key: searchAttributes.env, value: input.env },
    { key: searchAttributes.trigger, value: input.trigger },
    { key: searchAttributes.version, value: input.version },
  ];
}

/**
 * Start options of a stackSwitch, for a client start and for a child start alike: its id, the
 * search attributes the UI and visibility queries see before a worker picks it up, and the UI's
 * fixed summary and details (in SDK 1.24 only the starter can set them, not the workflow).
 */
export function switchStartOptions(input: SwitchInput) {
  return {
    workflowId: switchWorkflowId(input.env),
    typedSearchAttributes: switchStartAttributes(input),
    staticSummary: `switch ${input.env} to version ${input.version} (trigger ${input.trigger})`,
    staticDetails: [
      `- **Environment:** ${input.env}`,
      `- **Version:** ${input.version}`,
      `- **Backup:** ${input.backup}`,
      `- **Approval:** ${input.approval ? `${input.approval}, asked for by this switch` : `as the environment file of ${input.env} says`}`,
      `- **Trigger:** ${input.trigger}`,
      ...(input.keepFailed ? ['- **Keep failed:** the new stack is kept if the switch fails before DNS changes'] : []),
      '',
      `Follow it with \`switchyard status --env ${input.env}\`; decide with \`switchyard approve --env ${input.env}\` or \`switchyard abort --env ${input.env}\`.`,
    ].join('\n'),
  };
}

/** Start options of a rehearsal: the switch's id (one lock per environment) and attributes, its own summary. */
export function rehearsalStartOptions(input: SwitchInput) {
  return {
    ...switchStartOptions(input),
    staticSummary: `rehearse switching ${input.env} to version ${input.version} (trigger ${input.trigger}): no fence, DNS untouched`,
  };
}

export interface Decision {
  by: string;
  comment: string;
}

export interface PhaseTiming {
  name: Phase;
  startedAt: string;
  durationMs: number;
}

export interface SmokeCheck {
  name: string;
  ok: boolean;
  durationMs: number;
  detail?: string;
}

export interface StackRefSummary {
  stack: string;
  colour: Colour;
}

export interface RestoreProgress {
  items: number;
  total: number;
}

export interface SwitchStatus {
  env: string;
  phase: Phase;
  from?: StackRefSummary;
  to?: StackRefSummary;
  backup?: { key: string; items: number };
  restore?: RestoreProgress;
  smoke?: SmokeCheck[];
  phases: PhaseTiming[];
  approval?: { decision: 'approved' | 'aborted'; by: string; comment: string; at: string };
  /** From the moment the old stack forwards; its counts from the drain's looks at it on. */
  writePause?: WritePause;
  error?: string;
}

export const statusQuery = defineQuery<SwitchStatus>('status');
/** Approve a switch that waits for approval (`approval: manual`). */
export const approveUpdate = defineUpdate<SwitchStatus, [Decision]>('approve');
/** Abort a switch before it reaches `switching`; refused afterwards, with the reason. */
export const abortUpdate = defineUpdate<SwitchStatus, [Decision]>('abort');

/**
 * The write pause of a switch: from asking the old stack for its fence until it forwarded
 * (workflow clock), and what the old stack's nodes held and forwarded meanwhile and after, as
 * their stats gave it at the last look while draining.
 */
export interface WritePause {
  fenceToForwardMs: number;
  /** Writes the old stack held through its fence (they were then forwarded, or refused when the hold ran out). */
  requestsHeld?: number;
  /** Of those, the holds that ran out and were answered 503. */
  holdsTimedOut?: number;
  /** Requests the old stack relayed to the new one: clients whose DNS cache still named it. */
  requestsForwarded?: number;
}

/** Figures from synthetic clients that ran alongside a switch (demo, benchmarks). */
export interface LinearizabilityVerdict {
  ok: boolean;
  result: 'Ok' | 'Illegal' | 'Unknown' | 'Skipped';
  operations: number;
  keys: number;
  /** Items whose history is not linearizable. */
  violations: string[];
  detail?: string;
}

export interface ClientFigures {
  requests: number;
  failedRequests: number;
  writesAcknowledged: number;
  writesLost: number;
  streams: number;
  streamsReconnected: number;
  maxReconnectMs: number;
  duplicateEvents: number;
  missedEvents: number;
  /** Longest time any client waited from a write not yet acknowledged to an acknowledged one. */
  maxWritePauseMs?: number;
  /** When the longest write pause began: the phase it fell in tells what caused it. */
  maxWritePauseAt?: string;
  /** Clients that never retry, run beside the retrying ones above (demo, benchmarks). */
  nonRetrying?: ClientFigures;
  /** Porcupine's per-key linearizability verdict on every client's writes and reads. */
  linearizability?: LinearizabilityVerdict;
}

/** One copy of writes from the live stack into the new one, measured by the activity that copied. */
export interface CopyFigures {
  items: number;
  durationMs: number;
}

/**
 * What a rehearsal measured (docs/rehearsals.md). The delta a switch would have copied under the
 * fence is copied here without it, right where the fence would have been taken.
 */
export interface RehearsalFigures {
  /** Every step up to the fence passed: a switch would have gone ahead (outcome `rehearsed`). */
  wouldSwitch: boolean;
  /** The catch-up passes, as a switch runs them. */
  catchUpPasses: CopyFigures[];
  /** The last delta: what the fence would have copied. Absent when no stack served clients. */
  lastDelta?: CopyFigures;
  /** How long writes would have been held: the last delta's copy (a switch adds one fence and one forward call). */
  predictedWritePauseMs?: number;
}

/** The comparison of every item of the old (frozen) stack with the new one, while verifying. */
export interface DataVerification {
  itemsCompared: number;
  mismatches: number;
  /**
   * The first items that differ: `missing` on the new stack, there with an `older` revision, or
   * `diverged` (another revision that is not a change of a copy of the old one).
   */
  firstMismatches: Array<{ id: string; problem: 'missing' | 'older' | 'diverged'; oldRev: string; newRev?: string }>;
}

export interface SwitchReport {
  env: string;
  workflowId: string;
  runId?: string;
  outcome: Outcome;
  reason?: string;
  trigger: Trigger;
  version: string;
  from?: StackRefSummary;
  to?: StackRefSummary;
  backup?: { key: string; items: number };
  phases: PhaseTiming[];
  smoke: { checks: SmokeCheck[] };
  approval?: SwitchStatus['approval'];
  /** What went wrong without changing the outcome (a drain that timed out, a stack kept). */
  warnings?: string[];
  startedAt: string;
  finishedAt: string;
  clients?: ClientFigures;
  /** Only in the report of a rehearsal: what a switch would have done. */
  rehearsal?: RehearsalFigures;
  writePause?: WritePause;
  /** The data verification after the flip (absent when there was no old stack or it never ran). */
  verification?: DataVerification;
}

/** How a switch ended, beside what its status shows. */
export interface SwitchEnding {
  workflowId: string;
  runId?: string;
  outcome: Outcome;
  reason?: string;
  smoke: SmokeCheck[];
  warnings?: string[];
  startedAt: string;
  finishedAt: string;
}

/**
 * The report of a switch: the workflow builds it when it ends, and the CLI from the last status
 * of a switch that ended by throwing (terminated, timed out, a bug), so CI always has one.
 */
export function switchReport(
  input: SwitchInput,
  status: Pick<SwitchStatus, 'from' | 'to' | 'backup' | 'phases' | 'approval' | 'writePause'>,
  end: SwitchEnding,
): SwitchReport {
  return {
    env: input.env,
    workflowId: end.workflowId,
    runId: end.runId,
    outcome: end.outcome,
    ...(end.reason ? { reason: end.reason } : {}),
    trigger: input.trigger,
    version: input.version,
    from: status.from,
    to: status.to,
    backup: status.backup,
    phases: status.phases,
    smoke: { checks: end.smoke },
    approval: status.approval,
    ...(end.warnings?.length ? { warnings: end.warnings } : {}),
    startedAt: end.startedAt,
    finishedAt: end.finishedAt,
    ...(status.writePause ? { writePause: status.writePause } : {}),
  };
}

/** The command that approves a switch waiting for approval (the UI's details, notifications). */
export function approveCommandFor(env: string): string {
  return `switchyard approve --env ${env} --comment "<why>"`;
}

/** Exit codes are a contract with CI (README.md). */
export const EXIT = { switched: 0, failed: 1, usage: 2, busy: 3 } as const;

// ---------------------------------------------------------------- the other workflows

/**
 * A rollback runs under the environment's switch id: Temporal refuses to start a second run of an
 * id while one is open, so a switch and a rollback of one environment never overlap (one lock,
 * taken atomically by the start itself, not checked and then acted on).
 */
export const rollbackWorkflowId = (env: string) => switchWorkflowId(env);
export const backupWorkflowId = (env: string) => `backup-${env}`;

export interface RollbackInput {
  env: string;
  by: string;
  comment?: string;
  /** The stack to return to; by default the newest ready stack that served clients and was drained by a switch. */
  to?: string;
}

export interface RollbackReport {
  env: string;
  workflowId: string;
  outcome: 'rolled-back' | 'failed' | 'cancelled';
  reason?: string;
  from?: string;
  to?: string;
  by: string;
  startedAt: string;
  finishedAt: string;
}

export interface BackupReport {
  env: string;
  stack: string;
  key: string;
  items: number;
  pruned: string[];
}

/** What the schedule gives each night's `nightlyRefresh`: the switch to start, its trigger is `schedule`. */
export type NightlyRefreshInput = Pick<SwitchInput, 'env' | 'version' | 'backup'> & {
  /** Each night rehearses the switch (workflows/rehearsal.ts) instead of switching. */
  rehearse?: boolean;
};

export type NightlyRefreshResult =
  /** A switch of the environment (`running`) was already going: this night started none. */
  | { env: string; outcome: 'skipped'; running: string; reason: string }
  /** The switch this night started, and how it ended. */
  | {
      env: string;
      outcome: Outcome;
      switch: { workflowId: string; runId: string };
      reason?: string;
      report: SwitchReport;
    };
