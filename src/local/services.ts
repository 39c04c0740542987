import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { signalGroup } from '../cloud/local/processes.ts';

/**
 * One process of the local environment (moto, RabbitMQ, the worker). Each leads its own
 * process group, so stopping it takes its helpers too (RabbitMQ's Erlang children), and its
 * output goes to a log file under `.data/logs`.
 */
export interface Service {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<string>;
  running(): boolean;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once: a crash, for fault drills. */
  kill(): Promise<void>;
}

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

const live = new Set<Service>();
// A supervisor that dies must not leave its services behind.
process.once('exit', () => {
  for (const service of live) if (service.running()) signalGroup(service.pid, 'SIGKILL');
});

export function spawnService(spec: ServiceSpec): Service {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const log = openSync(spec.logFile, 'a');
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command})`);
  const pid = child.pid;
  let done = false;
  const exited = new Promise<string>((res) => {
    child.once('exit', (code, signal) => {
      done = true;
      res(signal ?? String(code));
    });
  });
  const service: Service = {
    name: spec.name,
    pid,
    logFile: spec.logFile,
    exited,
    running: () => !done,
    async stop(graceMs = 10_000) {
      if (!done) {
        signalGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      // Helpers the leader started may linger a moment after it.
      signalGroup(pid, 'SIGKILL');
      live.delete(service);
    },
    async kill() {
      signalGroup(pid, 'SIGKILL');
      await exited;
      live.delete(service);
    },
  };
  live.add(service);
  return service;
}

/** Thrown by a readiness probe that knows the service will never come up, to stop waiting at once. */
export class ServiceFailedError extends Error {
  override name = 'ServiceFailedError';
}

/** One probe may take this long; one that hangs (a half-open listener during boot) counts as "not ready yet". */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Polls `probe` until it says ready; fails early, naming the log, if the service exits first. Each
 * probe gets a signal that aborts after PROBE_TIMEOUT_MS (or at the deadline), and is abandoned then,
 * so the wait never outlasts `timeoutMs` by more than a moment.
 */
export async function waitReady(
  service: Service,
  what: string,
  timeoutMs: number,
  probe: (signal: AbortSignal) => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!service.running())
      throw new Error(`${what} exited with ${await service.exited} before it was ready; see ${service.logFile}`);
    const signal = AbortSignal.timeout(Math.max(1, Math.min(PROBE_TIMEOUT_MS, deadline - Date.now())));
    const aborted = new Promise<boolean>((res) => signal.addEventListener('abort', () => res(false), { once: true }));
    const ready = await Promise.race([
      probe(signal).catch((err: unknown) => {
        if (err instanceof ServiceFailedError) throw err;
        return false;
      }),
      aborted,
    ]);
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms; see ${service.logFile}`);
    await sleep(100);
  }
}

/** What a restartable process must offer: its pid (leading its own process group), a crash and a clean stop. */
export interface RunningProcess {
  pid: number;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A process of the local environment that is started again after it died, as a real deployment's
 * supervisor (systemd, ECS) would: the same command, ports and data. Fault drills and
 * `npm run chaos` crash it (kill), freeze it (SIGSTOP to pid()) and bring it back (start).
 */
export class SupervisedProcess {
  private current: RunningProcess | undefined;

  constructor(
    readonly name: string,
    /** Starts the process and resolves once it serves. */
    private readonly launch: () => Promise<RunningProcess>,
    /** Told each new pid (the state file keeps it for `down`). */
    private readonly started: (pid: number) => void = () => undefined,
  ) {}

  /** The running process's pid; undefined after kill() until start(). */
  pid(): number | undefined {
    return this.current?.pid;
  }

  async start(): Promise<void> {
    if (this.current) throw new Error(`${this.name} is already running (pid ${this.current.pid})`);
    this.current = await this.launch();
    this.started(this.current.pid);
  }

  /** SIGKILL to its group: a crash. */
  async kill(): Promise<void> {
    await this.current?.kill();
    this.current = undefined;
  }

  async stop(): Promise<void> {
    await this.current?.stop();
    this.current = undefined;
  }
}
