/**
 * The switch's public contract: workflow input, the `status` query's answer and the report CI
 * archives (DESIGN §5–§6). Pure types and constants: workflow code imports this file too.
 */
import type { Colour } from '../cloud/ports.ts';

export const TASK_QUEUE = 'switchyard';
export const switchWorkflowId = (env: string) => `switch-${env}`;
export const scheduleId = (env: string) => `nightly-refresh-${env}`;

export const PHASES = [
  'planning', 'provisioning', 'restoring', 'smoke-testing', 'catching-up', 'awaiting-approval',
  'switching', 'verifying', 'draining', 'tearing-down', 'done', 'rolling-back', 'failed',
] as const;
export type Phase = (typeof PHASES)[number];

export type Trigger = 'ci' | 'schedule' | 'manual';
/** `rehearsed`: a rehearsal (`switch --rehearse`) found that a switch would have gone ahead. */
export type Outcome = 'switched' | 'failed' | 'rolled-back' | 'aborted' | 'cancelled' | 'rehearsed';

/** Search attributes the dev server registers and every switch upserts (DESIGN §5). */
export const SEARCH_ATTRIBUTES = {
  SwitchEnv: 'Keyword',
  SwitchPhase: 'Keyword',
  SwitchColor: 'Keyword',
  SwitchStack: 'Keyword',
  SwitchVersion: 'Keyword',
  SwitchTrigger: 'Keyword',
} as const;

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
  error?: string;
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
  /** The first items that differ: `missing` on the new stack, or there with an `older` revision. */
  firstMismatches: Array<{ id: string; problem: 'missing' | 'older'; oldRev: string; newRev?: string }>;
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
  /** How long the old stack held writes: from asking for the fence until it forwarded (workflow clock). */
  writePause?: { fenceToForwardMs: number };
  /** The data verification after the flip (absent when there was no old stack or it never ran). */
  verification?: DataVerification;
}

/** Exit codes are a contract with CI (DESIGN §6). */
export const EXIT = { switched: 0, failed: 1, usage: 2, busy: 3 } as const;
