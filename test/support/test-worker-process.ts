/** Starts test/support/test-worker.ts as its own process, as the dev-server and CLI tests need. */
import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { repoRoot } from '../../src/config/environment.ts';

/** Resolves once the worker polls (it prints `worker ready`); `env` configures its fake world. */
export async function startTestWorker(env: Record<string, string>, readyWithinMs = 90_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/test-worker.ts'], {
    cwd: repoRoot,
    env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`test worker not ready within ${readyWithinMs / 1000} s`));
    }, readyWithinMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`test worker exited with ${code} before it was ready`)));
  });
  return child;
}
