import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Detached processes are found again by pid alone, so a recycled pid must not be mistaken for
 * ours: a process counts as running only if its environment carries `marker` (e.g. its
 * SYNC_NODE_ID) and it is not a zombie.
 */
export function isRunning(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/** Signals the process group a detached child leads (the pid), ignoring one that is gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * SIGTERM, then SIGKILL for whatever is still running after graceMs. Resolves once every
 * process is gone (bounded: SIGKILL cannot be refused).
 */
export async function stopProcesses(procs: Array<{ pid: number; marker: string }>, graceMs: number): Promise<void> {
  const alive = () => procs.filter((p) => isRunning(p.pid, p.marker));
  for (const p of alive()) signalGroup(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive().length && Date.now() < deadline) await sleep(50);
  for (const p of alive()) signalGroup(p.pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while (alive().length) {
    if (Date.now() > killDeadline)
      throw new Error(
        `processes ${alive()
          .map((p) => p.pid)
          .join(', ')} survived SIGKILL`,
      );
    await sleep(50);
  }
}
