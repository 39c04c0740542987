/**
 * A real `navcloud-sync` process on loopback, for tests and drills that need nodes as separate
 * processes (two nodes on one store, a node whose Riak node is struck), and a whole export read
 * through its admin API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort, waitForPort } from '../../src/net.ts';

const bin = resolve(import.meta.dirname, '../../bin/navcloud-sync.js');

export interface SyncProcess {
  url: string;
  port: number;
  child: ChildProcess;
}

export async function startSyncProcess(options: {
  store: string;
  nodeId: string;
  secret: string;
  /** More of the node's environment (server/config.ts), over the defaults here. */
  env?: Record<string, string>;
  /** Its JSON log goes to test-artifacts/<log>-<port>.log instead of the test's stderr (errors only). */
  log?: string;
}): Promise<SyncProcess> {
  const port = await freePort();
  const logFile = options.log ? artifactLog(`${options.log}-${port}.log`) : undefined;
  const child = spawn(process.execPath, [bin], {
    env: {
      PATH: process.env.PATH,
      ...(logFile ? { LOG_FORMAT: 'json' } : { LOG_LEVEL: 'error' }),
      PORT: String(port),
      SYNC_JWT_SECRET: options.secret,
      SYNC_STORE: options.store,
      SYNC_NODE_ID: options.nodeId,
      ...options.env,
    },
    stdio: ['ignore', 'ignore', logFile ?? 'inherit'],
  });
  if (logFile !== undefined) closeSync(logFile);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(
        new Error(`navcloud-sync ${options.nodeId} exited with ${code}${options.log ? '; see test-artifacts' : ''}`),
      ),
    ),
  );
  exited.catch(() => undefined);
  await Promise.race([waitForPort('127.0.0.1', port, 60_000, options.nodeId), exited]);
  return { url: `http://127.0.0.1:${port}`, port, child };
}

/** Stops a node with SIGTERM, and kills it if it has not exited 15 s later. */
export async function stopSyncProcess(node: SyncProcess): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = once(node.child, 'exit');
  node.child.kill('SIGTERM');
  const timer = setTimeout(() => node.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function artifactLog(name: string): number {
  const dir = resolve(import.meta.dirname, '../../test-artifacts');
  mkdirSync(dir, { recursive: true });
  return openSync(join(dir, name), 'a');
}

/** The item ids of one export after `since` and the cursor its end line gives; throws on anything else. */
export async function exportIds(
  node: { url: string },
  adminToken: string,
  since: string | undefined,
): Promise<{ ids: string[]; cursor: string }> {
  const answer = await fetch(`${node.url}/admin/export${since ? `?since=${since}` : ''}`, {
    headers: { authorization: `Bearer ${adminToken}` },
    signal: AbortSignal.timeout(120_000),
  });
  const text = await answer.text();
  if (answer.status !== 200)
    throw new Error(`export from ${node.url} answered ${answer.status}: ${text.slice(0, 200)}`);
  const lines = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { kind: string; id: string; cursor: string });
  const end = lines.at(-1);
  if (end?.kind !== 'end') throw new Error(`export from ${node.url} ended without its end line`);
  return { ids: lines.filter((line) => line.kind === 'item').map((line) => line.id), cursor: end.cursor };
}
