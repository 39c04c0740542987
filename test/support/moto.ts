import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { toolPath } from '../../src/tools.ts';
import { freePort } from '../../src/net.ts';
import { repoRoot } from '../../src/config/environment.ts';

export interface Moto {
  /** http://127.0.0.1:PORT — pass it as the adapters' `endpoint`. */
  endpoint: string;
  /** Forgets every resource (POST /moto-api/reset), so each test starts from an empty account. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Static credentials moto accepts; the SDK refuses to sign without some. */
export const motoCredentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
export const motoRegion = 'us-east-1';

/**
 * Starts a real moto_server from .tools on a free loopback port and resolves once it answers
 * HTTP. Its log goes to test-artifacts/moto-<port>.log.
 */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const logDir = resolve(repoRoot, 'test-artifacts');
  mkdirSync(logDir, { recursive: true });
  const logFile = resolve(logDir, `moto-${port}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(toolPath('moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', log, log],
    // moto reads these for the account it emulates; keep the caller's real AWS settings out.
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_DEFAULT_REGION: motoRegion,
    },
  });
  closeSync(log);
  let exitCode: number | null | undefined;
  child.once('exit', (code) => {
    exitCode = code;
  });

  const stop = () =>
    new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    });

  // Bounded wait: moto imports every service's models on start, which takes a few seconds.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`moto_server exited with ${exitCode} before answering; see ${logFile}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto_server did not answer on ${endpoint} within 60 s; see ${logFile}`);
    }
    await sleep(100);
  }

  return {
    endpoint,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
    },
    stop,
  };
}
