/**
 * Every write and read the synthetic clients made during a switch, with the times they were sent
 * and answered, for an outside linearizability checker (tools/linearizability, Porcupine): each
 * item is a register holding the load's per-item counter `n`.
 */
import { spawn } from 'node:child_process';
import type { LinearizabilityVerdict } from '../switch/contract.ts';
import { toolPath } from '../tools.ts';

export interface HistoryOperation {
  /** The client (user) that made the request. */
  client: number;
  /** The item id. */
  key: string;
  kind: 'write' | 'read';
  /** The counter written, or read back (0: the item did not exist). */
  value: number;
  /** The item's revision as answered (absent without an answer, or for a missing item). */
  rev?: string;
  /** Microseconds on the history's clock. */
  call: number;
  /** Null for a write whose outcome is unknown (no answer): it may take effect at any time after its call. */
  return: number | null;
}

/** About 200 MB of history at most; a run past it is reported as not checked. */
const MAX_OPERATIONS = 2_000_000;

export class History {
  private readonly origin = performance.now();
  /** Wall-clock time of the history's zero, to line it up with a report's phases. */
  readonly startedAt = new Date().toISOString();
  private clients = 0;
  readonly operations: HistoryOperation[] = [];
  truncated = false;

  /** A client id unique within this history (shared by all loads of one run). */
  newClient(): number {
    return this.clients++;
  }

  /** One clock for every client of the run, in microseconds. */
  now(): number {
    return Math.round((performance.now() - this.origin) * 1000);
  }

  /** The history as the checker reads it. */
  toJSON(): { startedAt: string; operations: HistoryOperation[] } {
    return { startedAt: this.startedAt, operations: this.operations };
  }

  record(operation: HistoryOperation): void {
    if (this.operations.length >= MAX_OPERATIONS) {
      this.truncated = true;
      return;
    }
    this.operations.push(operation);
  }
}

/** Runs the Porcupine checker built by scripts/bootstrap on the history. */
export async function checkLinearizability(history: History): Promise<LinearizabilityVerdict> {
  if (history.truncated) {
    return {
      ok: false,
      result: 'Skipped',
      operations: history.operations.length,
      keys: 0,
      violations: [],
      detail: `history passed ${MAX_OPERATIONS} operations`,
    };
  }
  const child = spawn(toolPath('linearizability'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 2));
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(JSON.stringify(history));
  const code = await exited;
  if (code !== 0 && code !== 1) throw new Error(`linearizability checker exited ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout) as LinearizabilityVerdict;
}
