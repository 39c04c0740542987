/**
 * The switch's query and updates, and the ids, input and results of the other workflows. The
 * switch's id and search-attribute keys are in src/switch/contract.ts. Pure: safe for workflow
 * code and clients.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { switchWorkflowId, type Decision, type Outcome, type SwitchInput, type SwitchReport, type SwitchStatus } from '../src/switch/contract.ts';

export const statusQuery = defineQuery<SwitchStatus>('status');
/** Approve a switch that waits for approval (`approval: manual`). */
export const approveUpdate = defineUpdate<SwitchStatus, [Decision]>('approve');
/** Abort a switch before it reaches `switching`; refused afterwards, with the reason. */
export const abortUpdate = defineUpdate<SwitchStatus, [Decision]>('abort');

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
  | { env: string; outcome: Outcome; switch: { workflowId: string; runId: string }; reason?: string; report: SwitchReport };
