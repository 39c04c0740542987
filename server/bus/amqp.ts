/**
 * EventBus over RabbitMQ: every node publishes its change events to one fanout exchange and
 * reads them from its own exclusive, auto-delete queue bound to it.
 *
 * A broker outage must delay events, never lose changes. Events are only hints (the store is the
 * truth), so the bus keeps no backlog: while it cannot publish it drops events and remembers one
 * bit, "someone missed something". Once it can publish again it sends a `resync` message, and
 * every node re-reads the store; a node whose own connection dropped resyncs its streams itself
 * after reconnecting, since its queue (and what was in it) died with the connection.
 */
import { randomUUID } from 'node:crypto';
import {
  connect,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type RecoveringChannelModel,
} from 'amqplib';
import type { Logger } from '../../src/logging.ts';
import type { ChangeEvent, EventBus } from './port.ts';

export interface AmqpBusOptions {
  /** This node's id, carried in every event it publishes. */
  node: string;
  logger: Logger;
  /** Fanout exchange shared by the nodes of one stack. */
  exchange?: string;
  /** Reconnect backoff: first delay and cap, in ms. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts before the first connection fails startup (the broker URL may simply be wrong). */
  initialMaxRetries?: number;
  /** Publishes awaiting the broker's confirm; beyond this, events are dropped (and a resync owed). */
  maxInFlight?: number;
  /** AMQP heartbeat asked of the broker unless the URL sets `heartbeat`. */
  heartbeatSeconds?: number;
}

type WireMessage =
  { kind: 'change'; seq: number; users: string[]; node: string; at?: number } | { kind: 'resync'; node: string };

const DEFAULT_EXCHANGE = 'navcloud.changes';

export class AmqpBus implements EventBus {
  private readonly log: Logger;
  private readonly node: string;
  private readonly exchange: string;
  private readonly maxInFlight: number;
  /** Tells this process's own messages apart when the broker hands them back. */
  private readonly instance = randomUUID();
  private readonly listeners = new Set<(event: ChangeEvent) => void>();
  private readonly resyncListeners = new Set<() => void>();
  private connection: RecoveringChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private inFlight = 0;
  private owesResync = false;
  private connects = 0;
  private closed = false;
  private droppedCount = 0;

  private constructor(options: AmqpBusOptions) {
    this.log = options.logger.child({ component: 'amqp-bus', node: options.node });
    this.node = options.node;
    this.exchange = options.exchange ?? DEFAULT_EXCHANGE;
    this.maxInFlight = options.maxInFlight ?? 10_000;
  }

  /** Events dropped because the broker could not take them (a resync was owed instead). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Whether events can reach the broker right now. */
  get connected(): boolean {
    return this.channel !== undefined;
  }

  /** Publishes the broker has not confirmed yet. */
  get unconfirmed(): number {
    return this.inFlight;
  }

  /**
   * Connects to `url` (amqp://user:pass@host:port/vhost) and resolves once this node's queue is
   * bound to the exchange; rejects when the first connection gives up, since a broker that never
   * answered is more likely a wrong URL than an outage.
   */
  static async open(url: string, options: AmqpBusOptions): Promise<AmqpBus> {
    const bus = new AmqpBus(options);
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new Error(
        `event bus URL ${JSON.stringify(redactUrl(url))} is not a URL; expected amqp://USER:PASS@HOST:PORT[/VHOST]`,
      );
    }
    // The broker's default (60 s, two misses to give up) leaves a silently dead connection, and
    // the node deaf, for two minutes.
    if (!target.searchParams.has('heartbeat'))
      target.searchParams.set('heartbeat', String(options.heartbeatSeconds ?? 10));
    const connection = await connect(target.toString(), {
      // A connection attempt to a host that does not answer must fail into the backoff, not hang.
      timeout: 10_000,
      recovery: {
        initialDelay: options.initialDelayMs ?? 100,
        maxDelay: options.maxDelayMs ?? 5_000,
        factor: 2,
        jitter: 0.2,
        maxRetries: Infinity,
        initialMaxRetries: options.initialMaxRetries ?? 8,
        // Resolve at once so every attempt is logged through the listeners below.
        waitForConnect: false,
        setup: (model: ChannelModel) => bus.bind(model),
      },
    });
    bus.connection = connection;
    bus.watch(connection);
    try {
      await connection.waitForConnect();
    } catch (error) {
      await bus.close();
      throw new Error(`cannot connect the event bus to the broker at ${redactUrl(url)}: ${(error as Error).message}`);
    }
    return bus;
  }

  publish(event: ChangeEvent): void {
    if (this.closed) return;
    this.deliver(event);
    if (this.owesResync && !this.send({ kind: 'resync', node: this.node })) return;
    this.owesResync = false;
    if (!this.send({ kind: 'change', seq: event.seq, users: event.users, node: event.node, at: event.at }))
      this.owesResync = true;
  }

  subscribe(listener: (event: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.resyncListeners.clear();
    this.channel = undefined;
    await this.connection?.close();
  }

  /** Runs after every (re)connect, before the connection counts as up. */
  private async bind(model: ChannelModel): Promise<void> {
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: Error) => this.log.warn({ err: error }, 'event bus channel failed'));
    await channel.assertExchange(this.exchange, 'fanout', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.exchange, '');
    await channel.consume(queue, (message) => this.receive(message), { noAck: true });
    channel.on('close', () => {
      if (this.channel !== channel || this.closed) return;
      this.channel = undefined;
      // The broker closed the channel but not the connection (say, the exchange was deleted):
      // without a channel the node is deaf, so start over through the reconnect path.
      this.log.warn('event bus channel closed by the broker; reconnecting');
      model.close().catch(() => undefined);
    });
    this.channel = channel;
    this.inFlight = 0;
  }

  private watch(connection: RecoveringChannelModel): void {
    connection.on('connect', () => {
      this.connects += 1;
      if (this.connects === 1) {
        this.log.info({ exchange: this.exchange }, 'event bus connected');
        return;
      }
      this.log.info(
        { exchange: this.exchange, reconnects: this.connects - 1 },
        'event bus reconnected; streams re-read the store',
      );
      // Whatever this node published while down reached nobody: tell the other nodes.
      if (this.owesResync && this.send({ kind: 'resync', node: this.node })) this.owesResync = false;
      this.resync();
    });
    connection.on('disconnect', (error: Error) => {
      this.channel = undefined;
      this.log.warn({ err: error }, 'event bus lost the broker; events are delayed until it is back');
    });
    connection.on('connect-failed', (error: Error) =>
      this.log.warn({ err: error }, 'event bus connection attempt failed'),
    );
    connection.on('reconnect-scheduled', ({ attempt, delay }: { attempt: number; delay: number }) =>
      this.log.info({ attempt, delayMs: delay }, 'event bus reconnect scheduled'),
    );
    connection.on('reconnect-failed', (error: Error) =>
      this.log.error({ err: error }, 'event bus gave up reconnecting'),
    );
    connection.on('error', (error: Error) => this.log.warn({ err: error }, 'event bus connection error'));
  }

  /** False when the message could not be handed to the broker (it is dropped, not queued). */
  private send(message: WireMessage): boolean {
    const channel = this.channel;
    if (!channel || this.inFlight >= this.maxInFlight) {
      this.droppedCount += 1;
      return false;
    }
    this.inFlight += 1;
    let settled = false;
    const settle = (error: unknown) => {
      if (settled) return;
      settled = true;
      if (this.channel === channel) this.inFlight -= 1;
      // Unconfirmed means perhaps never routed: the other nodes must re-read the store.
      if (error) this.owesResync = true;
    };
    try {
      channel.publish(
        this.exchange,
        '',
        Buffer.from(JSON.stringify(message)),
        {
          appId: this.instance,
          contentType: 'application/json',
          persistent: false,
        },
        settle,
      );
      return true;
    } catch (error) {
      // The channel closed before the 'disconnect' event reached us.
      settle(error);
      this.droppedCount += 1;
      return false;
    }
  }

  private receive(message: ConsumeMessage | null): void {
    if (!message) {
      // The broker cancelled our consumer (queue deleted): the next reconnect resyncs.
      this.log.warn('event bus consumer cancelled by the broker');
      return;
    }
    if (message.properties.appId === this.instance) return;
    const parsed = parseWireMessage(message.content);
    if (!parsed) {
      this.log.warn({ bytes: message.content.length }, 'event bus ignored a malformed message');
      return;
    }
    if (parsed.kind === 'resync') {
      this.log.info({ from: parsed.node }, 'event bus resync requested by another node');
      this.resync();
      return;
    }
    const { kind: _kind, ...event } = parsed;
    this.deliver(event);
  }

  private deliver(event: ChangeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.log.error({ err: error, seq: event.seq }, 'change listener failed');
      }
    }
  }

  private resync(): void {
    for (const listener of this.resyncListeners) {
      try {
        listener();
      } catch (error) {
        this.log.error({ err: error }, 'resync listener failed');
      }
    }
  }
}

function parseWireMessage(content: Buffer): WireMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  if (typeof message.node !== 'string') return undefined;
  if (message.kind === 'resync') return { kind: 'resync', node: message.node };
  if (message.kind !== 'change' || !Number.isSafeInteger(message.seq) || !Array.isArray(message.users))
    return undefined;
  if (!message.users.every((user) => typeof user === 'string')) return undefined;
  const change: WireMessage = {
    kind: 'change',
    seq: message.seq as number,
    users: message.users as string[],
    node: message.node,
  };
  if (Number.isFinite(message.at)) change.at = message.at as number;
  return change;
}

/** Broker URLs may carry a password; logs and errors must not. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
