/**
 * Concurrent writers through two real node processes on one store, exports chained cursor to
 * cursor while they write, then a fence and one last export from the last cursor: every write a
 * node acknowledged is in some export. For the SQLite file both nodes share, and for Riak (the
 * emulator as a process of its own, both nodes talking to it over loopback).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../../src/navcloud/token.ts';
import { decodeCursor } from '../../src/navcloud/cursor.ts';
import { spawnRiakEmulator } from '../support/riak-emulator.ts';
import { call, changeFenceAsRead, SECRET } from './helpers.ts';
import { exportIds, startSyncProcess, stopSyncProcess, type SyncProcess } from '../support/sync-process.ts';
import { tempDir } from '../support/temp-dir.ts';

const WRITERS = 8;
/** Writers go on until the fence refuses them, at most this many writes each. */
const WRITES_PER_WRITER = 200;
const ACKS_PER_EXPORT = 30;
const EXPORTS_BEFORE_FENCE = 4;

const processes: SyncProcess[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(processes.splice(0).map(stopSyncProcess));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function startNode(store: string, nodeId: string): Promise<SyncProcess> {
  const node = await startSyncProcess({ store, nodeId, secret: SECRET });
  processes.push(node);
  return node;
}

async function writeAndChainExports(store: string): Promise<void> {
  const nodes = [await startNode(store, 'proc-a'), await startNode(store, 'proc-b')];
  const admin = await signToken(SECRET, 'ops', { admin: true });
  const acknowledged: string[] = [];
  let refused = 0;
  let fenced = false;
  const writers = Array.from({ length: WRITERS }, async (_, writer) => {
    const token = await signToken(SECRET, `user-${writer}`);
    for (let i = 0; i < WRITES_PER_WRITER; i++) {
      const id = `w${writer}-${i}`;
      const answer = await call(nodes[(writer + i) % 2]!, 'PUT', `/v1/items/${id}`, {
        token,
        body: { type: 'trip', data: { writer, i } },
      });
      if (answer.status === 201) acknowledged.push(id);
      else if (answer.status === 503) refused++;
      else throw new Error(`PUT ${id} answered ${answer.status}: ${answer.text}`);
      if (fenced && answer.status === 503) return;
    }
  });

  const exported = new Set<string>();
  let cursor: string | undefined;
  for (let pass = 0; pass < EXPORTS_BEFORE_FENCE; pass++) {
    // Spread the exports over the writing, so each one runs while writes are in flight.
    const target = (pass + 1) * ACKS_PER_EXPORT;
    for (let waited = 0; acknowledged.length < target && waited < 200; waited++)
      await new Promise((tick) => setTimeout(tick, 25));
    const found = await exportIds(nodes[pass % 2]!, admin, cursor);
    found.ids.forEach((id) => exported.add(id));
    cursor = found.cursor;
  }
  const fence = await changeFenceAsRead(nodes[0]!, admin, '/admin/fence', { leaseSeconds: 120 });
  expect(fence.status).toBe(200);
  fenced = true;
  await Promise.all(writers);
  // The writers may have finished before the fence: one more write through each node must be refused.
  for (const answer of await Promise.all(
    nodes.map((node) => call(node, 'PUT', '/v1/items/after-fence', { token: admin, body: { type: 'trip', data: {} } })),
  )) {
    if (answer.status === 503) refused++;
    else throw new Error(`a write after the fence answered ${answer.status}: ${answer.text}`);
  }
  expect(refused).toBeGreaterThanOrEqual(nodes.length);
  const last = await exportIds(nodes[1]!, admin, cursor);
  last.ids.forEach((id) => exported.add(id));

  const missing = acknowledged.filter((id) => !exported.has(id));
  console.log(
    `${store.split(':')[0]}: ${acknowledged.length} acknowledged, ${refused} refused, ${missing.length} in no export`,
  );
  expect(acknowledged.length).toBeGreaterThan(0);
  expect(missing).toEqual([]);
  // On Riak a write in flight across the fence may take a number after it (and then be refused).
  expect(decodeCursor(last.cursor)).toBeGreaterThanOrEqual(decodeCursor(fence.json.cursor)!);
}

describe('two node processes on one store, exports chained through a fence', () => {
  it('SQLite file: every acknowledged write is in some export', async () => {
    const dir = tempDir('navcloud-concurrent-');
    cleanups.push(dir.remove);
    await writeAndChainExports(`sqlite:${join(dir.path, 'shared.sqlite')}`);
  });

  it('Riak (emulator process): every acknowledged write is in some export', async () => {
    const riak = await spawnRiakEmulator();
    cleanups.push(riak.stop);
    await writeAndChainExports(`riak:${riak.url}?bucket=concurrent&export_grace_ms=1000`);
  });
});
