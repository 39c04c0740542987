/**
 * What workflows and activities exchange. Pure types: workflow code imports this file.
 */
import type { FenceMode, FlipCounts } from '../src/navcloud/protocol.ts';
import type { Colour, DnsRecordState, DnsTarget, StackDescription, StackOutputs } from '../src/cloud/ports.ts';
import type { Observation } from '../src/switch/roles.ts';

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
  /** Absent in runs planned before fence leases existed: the activities then use the environment's. */
  fenceLeaseSeconds?: number;
  /** Absent in runs planned before the write pause had a ceiling. */
  maxWritePauseSeconds?: number;
}

export interface LiveStack {
  record: DnsRecordState;
  /**
   * The stack the record sends clients to, found by the ownership record's name or, when that is
   * missing, by its DNS target; in any state (an update that rolled back still serves). Undefined
   * when no stack of the environment is there.
   */
  stack?: StackDescription;
  /** The stack DNS names, when it forwards every request to `stack` (a run died after its commit). */
  forwardedBy?: string;
}

export interface Plan {
  settings: SwitchSettings;
  live?: LiveStack;
  /** The look at the environment `live` was decided from (absent in runs planned before stack roles). */
  observed?: Observation;
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
  /** The source is fenced: renew its lease (of this many seconds) from a timer while copying. */
  renewFenceSeconds?: number;
}

export interface FenceInput {
  env: string;
  adminUrl: string;
  leaseSeconds?: number;
}

export interface ForwardInput {
  env: string;
  /** The fenced stack that forwards. */
  adminUrl: string;
  /** Base URL every request is forwarded to. */
  to: string;
  /** Where the last copy out of the fenced stack ended: a fence that still holds has taken nothing since. */
  cursor: string;
  leaseSeconds?: number;
}

export interface HandOverInput {
  env: string;
  /** Admin URL of the stack that stops taking writes: it is fenced and will forward. */
  from: string;
  /** Admin URL of the stack that takes the writes: it is unfenced. */
  to: string;
  /** Base URL of `to` that `from` forwards every request to. */
  toEndpoint: string;
  /** Where the last copy out of `from` ended: a fence that still holds has taken nothing since. */
  cursor: string;
  leaseSeconds?: number;
}

export interface StackState {
  items: number;
  cursor: string;
  fenced: boolean;
  draining: boolean;
  /** Base URL every request goes to while the stack forwards. */
  forwardTo?: string;
  /** The fence's mode and epoch (absent in runs recorded before fencing tokens). */
  fence?: { mode: FenceMode; epoch: number };
}

/** A fence a run holds: the epoch its next change of the fence expects. */
export interface HeldFence {
  epoch: number;
}

export interface TakeFenceInput {
  env: string;
  adminUrl: string;
  leaseSeconds: number;
}

/** A copy out of a fenced stack while its lease is renewed, for at most `writePauseLeftMs`. */
export interface FencedCopyInput {
  env: string;
  fromAdminUrl: string;
  toAdminUrl: string;
  since: string;
  fence: HeldFence;
  leaseSeconds: number;
  /** What is left of maxWritePauseSeconds when the copy is asked for: renewals stop there, and the copy fails. */
  writePauseLeftMs: number;
  /**
   * The fenced stack's nodes: each settles the writes the fence caught before the copy starts
   * (absent in runs scheduled before settling, whose copies may be refused as behind more often).
   */
  fromNodes?: string[];
}

export interface FencedCopyResult extends CopyResult {
  /** The fence as the last renewal left it. */
  fence: HeldFence;
}

/** The commit of a flip: the fenced stack forwards to `to`, if nothing was acknowledged past `cursor`. */
export interface CommitInput {
  env: string;
  adminUrl: string;
  /** Base URL every request is forwarded to. */
  to: string;
  fence: HeldFence;
  cursor: string;
  leaseSeconds: number;
}

/** Handing the writer over: `from` (fenced, copied up to `cursor`) commits to forward to `to`, then `to` opens. */
export interface HandOverWriterInput {
  env: string;
  /** Admin URL and base URL of the stack that stops taking writes. */
  from: string;
  fromEndpoint: string;
  /** Admin URL and base URL of the stack that takes them: it forwards to `from` until it opens. */
  to: string;
  toEndpoint: string;
  fence: HeldFence;
  cursor: string;
  leaseSeconds: number;
}

export interface ReleaseFenceInput {
  env: string;
  adminUrl: string;
  expected: { epoch: number; mode: FenceMode };
}

export interface CopyResult {
  copied: number;
  /** How long the copy took on the worker (absent in runs recorded before it was measured). */
  durationMs?: number;
  /** Cursor of the source's export end: the next pass starts here. */
  cursor: string;
}

export interface DnsSwitchInput {
  env: string;
  /** What the record must still be (null: no record); the adapter's change batch compares it. */
  expected?: DnsRecordState | null;
  /**
   * Runs started before the adapter's compare-and-swap took the whole record name only the stack;
   * their expectation is the record as it is now if it still belongs to that stack.
   */
  expectedStack?: string | null;
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
  /** Requests the nodes that answered held and forwarded since they started (absent in histories from before it was counted). */
  flip?: FlipCounts;
}

export interface BackupSummary {
  key: string;
  items: number;
  cursor: string;
  sourceStack: string;
}

export type StackRef = Pick<StackDescription, 'name' | 'colour'> & { outputs: StackOutputs };
