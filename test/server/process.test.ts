import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAdminClient } from '../../src/navcloud/admin-client.ts';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { freePort, waitForPort } from '../../src/net.ts';
import { call, openStream, SECRET } from './helpers.ts';
import { tempDir } from '../support/temp-dir.ts';

const bin = resolve(import.meta.dirname, '../../bin/navcloud-sync.js');

function launch(env: Record<string, string>): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [bin], {
    env: { PATH: process.env.PATH, LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return { child, stderr: () => stderr };
}

describe('navcloud-sync process', () => {
  it('shuts down on SIGTERM: streams get reconnect, the in-flight write completes, exit code 0', async () => {
    const dir = tempDir('navcloud-');
    const port = await freePort();
    const { child, stderr } = launch({
      PORT: String(port),
      SYNC_JWT_SECRET: SECRET,
      SYNC_STORE: `sqlite:${join(dir.path, 'db.sqlite')}`,
      SYNC_NODE_ID: 'proc-1',
    });
    try {
      await waitForPort('127.0.0.1', port, 30_000, 'navcloud-sync');
      const node = { url: `http://127.0.0.1:${port}` };
      const alice = await signToken(SECRET, 'alice');
      expect((await call(node, 'PUT', '/v1/items/p1', { token: alice, body: { type: 'trip', data: {} } })).status).toBe(
        201,
      );
      const streams = await Promise.all([openStream(node, alice), openStream(node, await signToken(SECRET, 'bob'))]);
      await streams[0]!.next((m) => m.type === 'change');
      // A write whose body is still arriving when the signal comes must be finished, not dropped.
      const body = JSON.stringify({ type: 'trip', data: { during: 'shutdown' } });
      const inFlight = request(`${node.url}/v1/items/p2`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${alice}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      });
      const answered = once(inFlight, 'response') as Promise<[IncomingMessage]>;
      inFlight.write(body.slice(0, 10));
      await new Promise((wait) => setTimeout(wait, 200));
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await new Promise((wait) => setTimeout(wait, 200));
      inFlight.end(body.slice(10));
      const [response] = await answered;
      expect(response.statusCode).toBe(201);
      response.resume();
      for (const stream of streams) {
        expect(await stream.next((m) => m.type === 'reconnect')).toEqual({ type: 'reconnect', reason: 'shutdown' });
        await stream.ended;
      }
      const [code] = await exited;
      expect(code, stderr()).toBe(0);
      expect(stderr()).toContain('sync node stopped');
    } finally {
      child.kill('SIGKILL');
      dir.remove();
    }
  });

  it('stays up through a restore of 30,000 items in 2,000-line imports, while the collector finalizes SQLite statements', async () => {
    const dir = tempDir('navcloud-');
    const port = await freePort();
    const { child, stderr } = launch({
      PORT: String(port),
      SYNC_JWT_SECRET: SECRET,
      SYNC_STORE: `sqlite:${join(dir.path, 'db.sqlite')}`,
    });
    try {
      await waitForPort('127.0.0.1', port, 30_000, 'navcloud-sync');
      const admin = createAdminClient({ adminUrl: `http://127.0.0.1:${port}`, jwtSecret: SECRET });
      // On Node 24.19 with better-sqlite3 12 the node aborted a few batches in (server/store/sqlite-binding.ts).
      for (let batch = 0; batch < 15; batch++) {
        const lines: ExportItemLine[] = Array.from({ length: 2_000 }, (_, i) => {
          const n = batch * 2_000 + i;
          return {
            kind: 'item',
            id: `restored-${n}`,
            owner: `user-${n % 50}`,
            type: 'trip',
            rev: `1-${n.toString(16).padStart(6, '0')}`,
            deleted: false,
            data: { name: `restored item ${n}` },
            shares: [],
            cursor: encodeCursor(n + 1),
            updatedAt: '2026-12-01T00:00:00.000Z',
          };
        });
        expect((await admin.importLines(lines)).applied, stderr()).toBe(2_000);
      }
      expect(child.exitCode).toBeNull();
      expect((await admin.stats(`http://127.0.0.1:${port}`)).items).toBe(30_000);
    } finally {
      child.kill('SIGKILL');
      dir.remove();
    }
  }, 120_000);

  it.each([
    [{}, 'SYNC_JWT_SECRET is required'],
    [{ SYNC_JWT_SECRET: SECRET, PORT: 'eighty' }, 'PORT must be an integer from 0 to 65535, got "eighty"'],
    [
      { SYNC_JWT_SECRET: SECRET, SYNC_STORE: 'postgres://x' },
      'SYNC_STORE must be sqlite:PATH or riak:http://HOST:PORT',
    ],
    [{ SYNC_JWT_SECRET: SECRET, SYNC_BUS: 'kafka' }, 'SYNC_BUS must be memory or amqp://'],
    [{ SYNC_JWT_SECRET: SECRET, SYNC_HEARTBEAT_MS: '-5' }, 'SYNC_HEARTBEAT_MS must be an integer'],
    [{ SYNC_JWT_SECRET: SECRET, SYNC_PROXY_PROTOCOL: 'yes' }, 'SYNC_PROXY_PROTOCOL must be 1 or 0'],
    [{ SYNC_JWT_SECRET: SECRET, SYNC_NODE_ID: 'a b' }, 'SYNC_NODE_ID must be'],
  ])('refuses a bad configuration with one clear line: %j', async (env, message) => {
    const { child, stderr } = launch(env as Record<string, string>);
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    const lines = stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`navcloud-sync: ${message}`);
  });
});
