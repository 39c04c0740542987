import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { searchAttributes } from '../switch/contract.ts';
import { toolPath } from '../tools.ts';
import { waitForPort } from '../net.ts';

export interface DevServerOptions {
  host?: string;
  port: number;
  uiPort?: number;
  /** SQLite file for persistence; omitted: in memory. */
  dbFile?: string;
  logFile: string;
  namespace?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** SIGKILL: a crash (with a dbFile, what it had persisted is there for the next start). */
  kill(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` from .tools with Switchyard's search attributes registered,
 * and resolves once its frontend accepts connections.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--log-level',
    'warn',
    '--namespace',
    options.namespace ?? 'default',
  ];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort), '--ui-ip', host);
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  // Every switch attribute is a keyword (the CLI spells the type `Keyword`).
  for (const key of Object.values(searchAttributes)) args.push('--search-attribute', `${key.name}=Keyword`);
  mkdirSync(dirname(options.logFile), { recursive: true });
  const log = openSync(options.logFile, 'a');
  const child = spawn(toolPath('temporal'), args, { stdio: ['ignore', log, log] });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`temporal dev server exited with ${code}; see ${options.logFile}`))),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForPort(host, options.port, 60_000, 'temporal dev server'), exited]);
  } catch (err) {
    // A server that never listened must not stay behind holding its database and ports.
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address: `${host}:${options.port}`,
    uiUrl: options.uiPort ? `http://${host}:${options.uiPort}` : undefined,
    process: child,
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
    kill: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGKILL');
      }),
  };
}
