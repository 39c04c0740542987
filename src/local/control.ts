import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { signalGroup } from '../cloud/local/processes.ts';
import type { Logger } from '../logging.ts';
import { removeStacks } from './environment.ts';
import { readLocalState, type LocalState } from './state.ts';

/** True when pid is a live process (not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** The state of a local environment whose supervisor still runs, else undefined. */
export function runningEnvironment(stateFile: string): LocalState | undefined {
  if (!existsSync(stateFile)) return undefined;
  const state = readLocalState(stateFile);
  return alive(state.processes.supervisor!) ? state : undefined;
}

export interface DownResult {
  stopped: string[];
  stacks: string[];
}

/**
 * `switchyard down`: asks the supervisor to stop everything (it deletes its stacks on the way
 * out), then makes sure: any recorded process still running is killed with its group, and any
 * stack folder left under the data directory is deleted with its processes.
 */
export async function stopLocalEnvironment(
  stateFile: string,
  dataDir: string,
  log: Logger,
  graceMs = 60_000,
): Promise<DownResult> {
  const stopped: string[] = [];
  if (existsSync(stateFile)) {
    const state = readLocalState(stateFile);
    const supervisor = state.processes.supervisor!;
    if (alive(supervisor) && supervisor !== process.pid) {
      process.kill(supervisor, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (alive(supervisor) && Date.now() < deadline) await sleep(100);
      stopped.push(`supervisor (pid ${supervisor})`);
    }
    for (const [name, pid] of Object.entries(state.processes)) {
      if (name === 'supervisor' || pid === process.pid || !alive(pid)) continue;
      signalGroup(pid, 'SIGKILL');
      stopped.push(`${name} (pid ${pid}, killed)`);
    }
    dataDir = state.dataDir;
    rmSync(stateFile, { force: true });
  }
  const stacks = await removeStacks(dataDir ?? dirname(stateFile), log);
  return { stopped, stacks };
}
