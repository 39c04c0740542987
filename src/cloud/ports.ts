/**
 * The three ports every switch drives. Each has an `aws` adapter (src/cloud/aws) and a local
 * profile (src/cloud/local: only compute is local; S3 and Route53 are the aws adapters on moto).
 * Adapters throw CloudError (src/cloud/errors.ts) so callers know whether a retry can help.
 */

export type Colour = 'blue' | 'green';
export const otherColour = (c: Colour): Colour => (c === 'blue' ? 'green' : 'blue');

// ---------------------------------------------------------------- StackProvisioner

export interface StackOutputs {
  /** Base URL of the stack's public API (the load balancer; http://IP:PORT locally). */
  endpoint: string;
  /** Base URL for /admin/* calls that any node can answer (fence, import, export, stats). */
  adminUrl: string;
  /** Base URL of every API node: drain and per-node stats must reach each one. */
  nodes: string[];
  /** What the DNS record must point at to send clients here. */
  dnsTarget: DnsTarget;
}

export type StackStatus = 'creating' | 'ready' | 'failed' | 'deleting' | 'deleted';

export interface StackDescription {
  name: string;
  env: string;
  colour: Colour;
  /** The workflow that created the stack (its tag). */
  workflowId: string;
  status: StackStatus;
  /** Native status text, e.g. CREATE_COMPLETE or ROLLBACK_COMPLETE. */
  rawStatus: string;
  createdAt: string;
  /** Present once created: when ready, and while an update runs or after one rolled back (it still serves). */
  outputs?: StackOutputs;
}

export interface CreateStackRequest {
  name: string;
  env: string;
  colour: Colour;
  workflowId: string;
  /** Template path relative to infra/ (aws) or a local stack spec (local). */
  template: string;
  parameters: Record<string, string>;
}

export interface StackProgress {
  rawStatus: string;
  /** Resources finished so far, and the total when it is known. */
  done?: number;
  total?: number;
}

export interface StackProvisioner {
  /** Starts creating; a repeat for the same name and workflow id is a no-op. */
  create(request: CreateStackRequest): Promise<void>;
  /** Polls until ready; throws StackFailedError (non-retryable) naming failed resources. */
  waitUntilReady(
    name: string,
    onProgress?: (p: StackProgress) => void,
    signal?: AbortSignal,
  ): Promise<StackDescription>;
  describe(name: string): Promise<StackDescription | undefined>;
  /** Stacks of an environment, newest first, found by their env tag. */
  list(env: string): Promise<StackDescription[]>;
  /** Starts deleting; deleting a stack that is gone is a no-op. */
  delete(name: string): Promise<void>;
  waitUntilDeleted(name: string, onProgress?: (p: StackProgress) => void, signal?: AbortSignal): Promise<void>;
}

// ---------------------------------------------------------------- BackupStore

export interface BackupManifest {
  /** Key of the manifest object; also the backup's id. */
  key: string;
  /** Key of the gzipped NDJSON data (export lines, see src/navcloud/protocol.ts). */
  dataKey: string;
  env: string;
  sourceStack: string;
  createdAt: string;
  /** Number of item lines in the data. */
  items: number;
  /** SHA-256 (hex) of the uncompressed NDJSON data. */
  sha256: string;
  /** Export cursor: every change up to it is in the backup. */
  cursor: string;
  bytes: number;
}

export interface BackupWrite {
  env: string;
  sourceStack: string;
  cursor: string;
}

export interface BackupStore {
  /** Complete, valid backups of an environment, newest first. Half-written ones are skipped. */
  list(env: string): Promise<BackupManifest[]>;
  latest(env: string): Promise<BackupManifest | undefined>;
  get(key: string): Promise<BackupManifest>;
  /**
   * Streams the uncompressed NDJSON lines. The SHA-256 is checked when the stream ends:
   * a mismatch throws a non-retryable CloudError naming the key.
   */
  read(manifest: BackupManifest, signal?: AbortSignal): AsyncIterable<string>;
  /** Writes data (NDJSON lines) then the manifest last, so a reader never sees a half backup. */
  write(meta: BackupWrite, lines: AsyncIterable<string>): Promise<BackupManifest>;
  /** Deletes all but the newest `keep` backups; returns the deleted keys. */
  prune(env: string, keep: number): Promise<string[]>;
}

// ---------------------------------------------------------------- DnsRouter

/** Where a record points: an alias to a load balancer (aws) or A records (local). */
export type DnsTarget = { kind: 'alias'; dnsName: string; hostedZoneId: string } | { kind: 'a'; addresses: string[] };

export interface DnsRecordState {
  recordName: string;
  ttl: number;
  target: DnsTarget;
  /** The stack the record belongs to (from the ownership TXT record written with it). */
  stack: string;
}

export interface DnsSwitchRequest {
  recordName: string;
  ttl: number;
  /** What the record must still be for the switch to apply; undefined: the record must not exist. */
  expected: DnsRecordState | undefined;
  stack: string;
  target: DnsTarget;
}

export interface DnsRouter {
  current(recordName: string): Promise<DnsRecordState | undefined>;
  /**
   * One atomic change batch, applied only if the record is still `expected`
   * (DELETE of the exact current records + CREATE of the new). A stale expectation throws
   * DnsConflictError (non-retryable) and changes nothing. Returns the change id.
   */
  switch(request: DnsSwitchRequest): Promise<string>;
  waitInSync(changeId: string, onPoll?: () => void, signal?: AbortSignal): Promise<void>;
  /** True when resolvers are answered with the target. */
  verify(recordName: string, target: DnsTarget): Promise<boolean>;
}

/** The adapters one environment's switch uses; built by src/cloud/factory.ts from its profile. */
export interface Ports {
  stacks: StackProvisioner;
  backups: BackupStore;
  dns: DnsRouter;
}
