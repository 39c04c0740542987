/**
 * What workflows and activities exchange. Pure types: workflow code imports this file.
 */
import type { Colour, DnsRecordState, DnsTarget, StackDescription, StackOutputs } from '../src/cloud/ports.ts';

/** The part of an environment file a switch decides with (secrets stay in activities). */
export interface SwitchSettings {
  profile: 'aws' | 'local';
  recordName: string;
  ttl: number;
  approval: 'auto' | 'manual';
  approvalTimeoutSeconds: number;
  verifySeconds: number;
  drainSeconds: number;
  keepStacks: number;
  catchUpFenceBelow: number;
}

export interface LiveStack {
  record: DnsRecordState;
  /** Undefined when DNS names a stack that no longer exists. */
  stack?: StackDescription;
}

export interface Plan {
  settings: SwitchSettings;
  live?: LiveStack;
}

export interface CreateStackInput {
  env: string;
  name: string;
  colour: Colour;
  workflowId: string;
  version: string;
}

export interface RestoreInput {
  env: string;
  backupKey: string;
  adminUrl: string;
}

export interface RestoreResult {
  items: number;
  applied: number;
  skipped: number;
  cursor: string;
  /** Line the last attempt started from: above zero when it resumed from a checkpoint. */
  resumedFrom: number;
}

/** Heartbeat details of restoreBackup: lines of the backup already imported. */
export interface RestoreCheckpoint {
  linesDone: number;
  total: number;
}

export interface CopyInput {
  env: string;
  fromAdminUrl: string;
  toAdminUrl: string;
  since: string;
}

export interface CopyResult {
  copied: number;
  /** Cursor of the source's export end: the next pass starts here. */
  cursor: string;
}

export interface DnsSwitchInput {
  env: string;
  expected: DnsRecordState | undefined;
  stack: string;
  target: DnsTarget;
}

/** What the record says after a switch; `changeId` null when it already said so. */
export interface DnsSwitchResult {
  changeId: string | null;
  record: DnsRecordState;
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export interface StackActivity {
  openStreams: number;
  requestRate: number;
  /** Nodes that did not answer; they count as quiet only when the node is gone for good. */
  unreachable: number;
}

export interface BackupSummary {
  key: string;
  items: number;
  cursor: string;
  sourceStack: string;
}

export type StackRef = Pick<StackDescription, 'name' | 'colour'> & { outputs: StackOutputs };
