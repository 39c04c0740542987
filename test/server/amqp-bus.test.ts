import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import pino from 'pino';
import { AmqpBus } from '../../server/bus/amqp.ts';
import type { ChangeEvent } from '../../server/bus/port.ts';
import { freePort } from '../../src/net.ts';
import { startRabbitMq, type RabbitMq } from '../support/rabbitmq.ts';

const logger = pino({ level: 'silent' });
let broker: RabbitMq;
const buses: AmqpBus[] = [];

beforeAll(async () => {
  broker = await startRabbitMq();
});

afterAll(async () => {
  await broker?.dispose();
});

afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});

async function open(
  node: string,
  url = broker.url,
  extra: Partial<Parameters<typeof AmqpBus.open>[1]> = {},
): Promise<AmqpBus> {
  const bus = await AmqpBus.open(url, {
    node,
    logger,
    initialDelayMs: 50,
    maxDelayMs: 500,
    exchange: `test.${expect.getState().currentTestName}`,
    ...extra,
  });
  buses.push(bus);
  return bus;
}

function record(bus: AmqpBus): { events: ChangeEvent[]; resyncs: number } {
  const seen = { events: [] as ChangeEvent[], resyncs: 0 };
  bus.subscribe((event) => seen.events.push(event));
  bus.onResync(() => {
    seen.resyncs += 1;
  });
  return seen;
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A loopback TCP relay to the broker whose connections the test can cut (closed, as a reset
 * would) or freeze (open but silent, as a lost host or a NAT that forgot them would).
 */
async function relay(
  targetPort: number,
): Promise<{ url: string; cut(): void; freeze(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const frozen = new WeakSet<Socket>();
  let refusing = false;
  const forward = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (!frozen.has(from)) to.write(chunk);
    });
  const server: Server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = tcpConnect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((res) => server.listen(port, '127.0.0.1', res));
  return {
    url: `amqp://127.0.0.1:${port}`,
    cut() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      setTimeout(() => {
        refusing = false;
      }, 300);
    },
    freeze() {
      for (const socket of sockets) frozen.add(socket);
    },
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

describe('AMQP event bus on a real RabbitMQ', () => {
  it('fans a change out to every node once, its own node included', async () => {
    const [a, b, c] = [await open('a'), await open('b'), await open('c')];
    const [seenA, seenB, seenC] = [record(a), record(b), record(c)];
    a.publish({ seq: 7, users: ['alice', 'bob'], node: 'a', at: 1_700_000_000_000 });
    b.publish({ seq: 8, users: ['carol'], node: 'b' });
    await until('both events on every node', () => [seenA, seenB, seenC].every((seen) => seen.events.length >= 2));
    await sleep(200);
    for (const seen of [seenA, seenB, seenC]) {
      expect(seen.events.map((event) => event.seq).sort()).toEqual([7, 8]);
      expect(seen.events.find((event) => event.seq === 7)).toEqual({
        seq: 7,
        users: ['alice', 'bob'],
        node: 'a',
        at: 1_700_000_000_000,
      });
      expect(seen.resyncs).toBe(0);
    }
  });

  it('ignores malformed messages on the exchange and keeps delivering', async () => {
    const exchange = `test.${expect.getState().currentTestName}`;
    const b = await open('b');
    const seen = record(b);
    const raw = await connect(broker.url);
    const channel = await raw.createConfirmChannel();
    for (const body of [
      'not json',
      '{"kind":"change","seq":"x","users":[],"node":"z"}',
      '{"kind":"change","seq":1,"users":[3],"node":"z"}',
      'null',
    ]) {
      channel.publish(exchange, '', Buffer.from(body));
    }
    channel.publish(exchange, '', Buffer.from(JSON.stringify({ kind: 'change', seq: 9, users: ['dave'], node: 'z' })));
    await channel.waitForConfirms();
    await raw.close();
    await until('the valid event', () => seen.events.length > 0);
    expect(seen.events).toEqual([{ seq: 9, users: ['dave'], node: 'z' }]);
  });

  it('survives a broker restart: publishing while down does not throw, and both nodes resync after', async () => {
    const [a, b] = [await open('a'), await open('b')];
    const [seenA, seenB] = [record(a), record(b)];
    expect(a.connected && b.connected).toBe(true);
    await broker.stop();
    await until('both nodes to notice', () => !a.connected && !b.connected);
    const droppedBefore = a.dropped;
    for (let seq = 1; seq <= 1000; seq += 1) a.publish({ seq, users: ['alice'], node: 'a' });
    // Events are hints: while down they are dropped (and counted), never queued in memory.
    expect(a.dropped - droppedBefore).toBe(1000);
    expect(seenA.events).toHaveLength(1000);
    expect(seenB.events).toHaveLength(0);
    await broker.start();
    await until('both nodes to resync after reconnecting', () => seenA.resyncs >= 1 && seenB.resyncs >= 1, 30_000);
    expect(a.connected && b.connected).toBe(true);
    a.publish({ seq: 1001, users: ['alice'], node: 'a' });
    await until('the first event after the outage', () => seenB.events.some((event) => event.seq === 1001));
  }, 120_000);

  it('asks the other nodes to resync when only its own connection dropped while it had events to send', async () => {
    const cuttable = await relay(broker.port);
    const a = await open('a', cuttable.url);
    try {
      const b = await open('b');
      const seenB = record(b);
      const reconnected = new Promise<void>((res) => a.onResync(res));
      cuttable.cut();
      await until('a to notice the cut', () => {
        a.publish({ seq: 1, users: ['alice'], node: 'a' });
        return a.dropped > 0;
      });
      await reconnected;
      await until('b to be told to resync', () => seenB.resyncs === 1);
      expect(seenB.events.filter((event) => event.seq === 1)).toHaveLength(0);
      a.publish({ seq: 2, users: ['alice'], node: 'a' });
      await until('the next event on b', () => seenB.events.some((event) => event.seq === 2));
      expect(seenB.resyncs).toBe(1);
    } finally {
      await a.close();
      await cuttable.close();
    }
  });

  it('notices a connection gone silent by its heartbeat, reconnects and resyncs', async () => {
    const silent = await relay(broker.port);
    const a = await open('a', silent.url, { heartbeatSeconds: 1 });
    try {
      const seenA = record(a);
      const b = await open('b');
      silent.freeze();
      await until('a to give the silent connection up', () => !a.connected, 30_000);
      await until('a to reconnect and resync', () => a.connected && seenA.resyncs === 1, 30_000);
      b.publish({ seq: 3, users: ['alice'], node: 'b' });
      await until("b's event on a", () => seenA.events.some((event) => event.seq === 3));
    } finally {
      await a.close();
      await silent.close();
    }
  });

  it('bounds unconfirmed publishes and owes a resync for what it dropped', async () => {
    const a = await open('a', broker.url, { maxInFlight: 5 });
    const b = await open('b');
    const seenB = record(b);
    for (let seq = 1; seq <= 50; seq += 1) a.publish({ seq, users: ['alice'], node: 'a' });
    expect(a.dropped).toBe(45);
    await until('the five sent events', () => seenB.events.length === 5);
    expect(seenB.resyncs).toBe(0);
    await until('the broker to confirm them', () => a.unconfirmed === 0);
    a.publish({ seq: 51, users: ['alice'], node: 'a' });
    await until(
      'the resync and the next event',
      () => seenB.resyncs === 1 && seenB.events.some((event) => event.seq === 51),
    );
    expect(seenB.events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 51]);
  });

  it('reconnects when the broker closes its channel but not its connection', async () => {
    const exchange = `test.${expect.getState().currentTestName}`;
    const a = await open('a');
    const seenA = record(a);
    const raw = await connect(broker.url);
    await (await raw.createChannel()).deleteExchange(exchange);
    await raw.close();
    // Publishing to the deleted exchange makes the broker close a's channel (404 NOT_FOUND).
    a.publish({ seq: 1, users: ['alice'], node: 'a' });
    await until('a to reconnect and resync', () => seenA.resyncs === 1);
    const b = await open('b');
    b.publish({ seq: 2, users: ['alice'], node: 'b' });
    await until("b's event on a", () => seenA.events.some((event) => event.seq === 2));
  });

  it('fails startup with a clear error when no broker ever answers', async () => {
    const port = await freePort();
    await expect(
      AmqpBus.open(`amqp://guest:secret@127.0.0.1:${port}`, {
        node: 'a',
        logger,
        initialDelayMs: 10,
        initialMaxRetries: 2,
      }),
    ).rejects.toThrow(
      new RegExp(`cannot connect the event bus to the broker at amqp://guest:redacted@127\\.0\\.0\\.1:${port}`),
    );
  });
});
