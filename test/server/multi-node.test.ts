/**
 * Two real `navcloud-sync` processes sharing one SQLite file and a real RabbitMQ: changes cross
 * nodes through the fanout exchange, and a broker outage delays them without losing or repeating any.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/navcloud/token.ts';
import { startRabbitMq, type RabbitMq } from '../support/rabbitmq.ts';
import { call, openStream, SECRET, type StreamReader } from './helpers.ts';
import { tempDir } from '../support/temp-dir.ts';
import { startSyncProcess, stopSyncProcess, type SyncProcess } from '../support/sync-process.ts';

let broker: RabbitMq;
let dir: { path: string; remove(): void };
const nodes: SyncProcess[] = [];

async function startNode(id: string, database: string, busUrl: string): Promise<SyncProcess> {
  const node = await startSyncProcess({
    store: `sqlite:${database}`,
    nodeId: id,
    secret: SECRET,
    env: { HOST: '127.0.0.1', SYNC_BUS: busUrl, SYNC_HEARTBEAT_MS: '1000' },
    log: `multi-node-${id}`,
  });
  nodes.push(node);
  return node;
}

const alice = await signToken(SECRET, 'alice');

async function put(node: SyncProcess, id: string, data: unknown): Promise<void> {
  const answer = await call(node, 'PUT', `/v1/items/${id}`, { token: alice, body: { type: 'place', data } });
  expect(answer.status, answer.text).toBe(201);
}

/** Every change message for `ids` on the stream, waiting until each has arrived at least once. */
async function collect(stream: StreamReader, ids: string[], timeoutMs: number): Promise<string[]> {
  const wanted = new Set(ids);
  const seen = new Set<string>();
  while (seen.size < wanted.size) {
    const message = await stream.next((m) => m.type === 'change' && wanted.has(m.id) && !seen.has(m.id), timeoutMs);
    seen.add(message.id);
  }
  return stream.messages.filter((m) => m.type === 'change' && wanted.has(m.id)).map((m) => m.id);
}

describe('two sync nodes, one SQLite file, a real RabbitMQ', () => {
  let a: SyncProcess;
  let b: SyncProcess;

  beforeAll(async () => {
    broker = await startRabbitMq();
    dir = tempDir('navcloud-multi-');
    const database = join(dir.path, 'shared.sqlite');
    a = await startNode('node-a', database, broker.url);
    b = await startNode('node-b', database, broker.url);
  });

  afterAll(async () => {
    await Promise.all(nodes.splice(0).map(stopSyncProcess));
    await broker?.dispose();
    dir?.remove();
  });

  it('delivers a write on node A to a stream on node B', async () => {
    const stream = await openStream(b, alice);
    try {
      expect(stream.status).toBe(200);
      await stream.next((m) => m.type === 'heartbeat');
      await put(a, 'from-a', { n: 1 });
      const change = await stream.next((m) => m.type === 'change' && m.id === 'from-a', 10_000);
      expect(change).toMatchObject({ type: 'change', id: 'from-a', owner: 'alice', data: { n: 1 }, deleted: false });
      const heartbeat = await stream.next((m) => m.type === 'heartbeat');
      expect(heartbeat.node).toBe('node-b');
    } finally {
      stream.close();
    }
  });

  it('loses no change while the broker is down: every write of the outage reaches both nodes, once', async () => {
    const onB = await openStream(b, alice);
    const onA = await openStream(a, alice);
    try {
      await Promise.all([onA, onB].map((stream) => stream.next((m) => m.type === 'heartbeat')));
      await broker.stop();
      const during = Array.from({ length: 20 }, (_, i) => `outage-${i}`);
      for (const [i, id] of during.entries()) await put(a, id, { i });
      // Node A's own streams need no broker; node B has no way to hear of these writes yet.
      const onAAfter = await collect(onA, during, 20_000);
      await sleep(300);
      expect(onB.messages.filter((m) => m.type === 'change' && during.includes(m.id))).toEqual([]);
      await broker.start();
      // Node B learns of them only by re-reading the store once its bus has reconnected.
      const onBAfter = await collect(onB, during, 60_000);
      // A write after the outage crosses again; any duplicate of the outage writes would precede it.
      await put(a, 'after-outage', {});
      await onB.next((m) => m.type === 'change' && m.id === 'after-outage', 20_000);
      await onA.next((m) => m.type === 'change' && m.id === 'after-outage', 20_000);
      for (const received of [onBAfter, onAAfter]) expect(received.sort()).toEqual([...during].sort());
      for (const stream of [onA, onB]) {
        const ids = stream.messages.filter((m) => m.type === 'change').map((m) => m.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.filter((id) => during.includes(id)).sort()).toEqual([...during].sort());
      }
      expect((await call(a, 'GET', '/readyz')).status).toBe(200);
      expect((await call(b, 'GET', '/readyz')).status).toBe(200);
    } finally {
      onA.close();
      onB.close();
    }
  }, 180_000);
});
