/**
 * Following a running switch for `switch --wait`: the `status` query is polled and rendered as one
 * updating line on a terminal, or as a log-style line whenever the phase or the restore's tenth
 * changes when the output is a pipe or file (CI logs stay short and readable).
 */
import type { Writable } from 'node:stream';
import type { SwitchStatus } from '../switch/contract.ts';
import { formatDuration } from '../switch/report.ts';

/** Restore progress in whole tenths (0–10), or undefined when nothing is known yet. */
export function restoreTenth(status: SwitchStatus): number | undefined {
  const restore = status.restore;
  if (!restore || restore.total <= 0) return undefined;
  return Math.min(10, Math.floor((restore.items / restore.total) * 10));
}

export function describeProgress(status: SwitchStatus, elapsedMs: number): string {
  const parts = [`${status.env}: ${status.phase}`];
  if (status.to) parts[0] += ` → ${status.to.stack} (${status.to.colour})`;
  if (status.phase === 'restoring' && status.restore && status.restore.total > 0) {
    const percent = Math.min(100, Math.floor((status.restore.items / status.restore.total) * 100));
    parts.push(`restored ${percent}% (${status.restore.items}/${status.restore.total} items)`);
  }
  parts.push(formatDuration(elapsedMs));
  return parts.join(' · ');
}

export class ProgressReporter {
  private lastKey: string | undefined;
  private lineOpen = false;

  constructor(
    private readonly stream: Writable & { columns?: number },
    private readonly tty: boolean,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  update(status: SwitchStatus, elapsedMs: number): void {
    const line = describeProgress(status, elapsedMs);
    if (this.tty) {
      const width = this.stream.columns ?? 120;
      // \r + erase-line rewrites the one line in place; clipping stops wrapping from breaking that.
      this.stream.write(`\r\x1b[2K${line.length >= width ? `${line.slice(0, width - 2)}…` : line}`);
      this.lineOpen = true;
      return;
    }
    const key = `${status.phase}:${status.phase === 'restoring' ? (restoreTenth(status) ?? '') : ''}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.stream.write(`${this.clock().toISOString()} ${line}\n`);
  }

  /** Ends the updating line so whatever follows starts on a fresh one. */
  finish(): void {
    if (this.lineOpen) this.stream.write('\n');
    this.lineOpen = false;
  }
}
