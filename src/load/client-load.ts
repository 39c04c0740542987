/**
 * The synthetic client load that runs alongside a switch in the demo and the benchmarks
 * (the report's `clients`, src/switch/contract.ts): users writing, reading and streaming through the public name,
 * at a bounded rate for a bounded time. stop() ends it and settles the figures; verify() then
 * checks every acknowledged write against a stack.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientFigures } from '../switch/contract.ts';
import type { Logger } from '../logging.ts';
import { SyncClient } from '../navcloud/client.ts';
import { signToken } from '../navcloud/token.ts';
import { PublicName, type ResolverAddress } from './public-name.ts';
import { History } from './history.ts';
import { DEFAULT_RETRY, LoadCounters, SyntheticUser, type LoadContext, type RetryPolicy } from './user.ts';

export interface ClientLoadOptions {
  /** The public name clients resolve, e.g. api.dev.navcloud.test */
  recordName: string;
  /** The DNS server that answers for it. */
  resolver: ResolverAddress;
  /** Port of the sync API on every address the name resolves to. */
  servicePort: number;
  jwtSecret: string;
  users: number;
  /** Writes per second across all users together. */
  writesPerSecond: number;
  /** Reads after each write (default 1). */
  readsPerWrite?: number;
  /** Items each user writes to, in turn (default 3). */
  itemsPerUser?: number;
  /** The load stops by itself after this long, whatever happens. */
  maxDurationMs: number;
  /** The stack's heartbeat interval: a stream silent for three of them is treated as dead. */
  heartbeatMs: number;
  /** How long stop() waits for streams to deliver the last acknowledged writes (default 5 s). */
  settleMs?: number;
  /** Users open their first stream spread over this long (default 5 ms per user, at most 10 s). */
  rampUpMs?: number;
  /** After `reconnect`, each stream waits a random time up to this (default: heartbeatMs, at most 1 s). */
  reconnectJitterMs?: number;
  retry?: Partial<RetryPolicy>;
  /** false: clients that never retry a request (no wait on Retry-After, none after an error), as many real ones (default true). */
  retrying?: boolean;
  /** Where writes and reads are recorded; several loads of one run share one (default: the load's own). */
  history?: History;
  requestTimeoutMs?: number;
  /** Prefix of the users' ids (default `load-<random>`). */
  userPrefix?: string;
  log: Logger;
}

/**
 * The figures (ClientFigures): `requests` are the users' reads and writes (each counted once,
 * however often it was retried), `failedRequests` those that failed after retries; `streams` the
 * users whose stream opened, `streamsReconnected` every reopening after a loss, `maxReconnectMs`
 * the longest time from a loss to the next open (a stream still down counts up to now);
 * `duplicateEvents` changes received twice (same item and revision) on one user's stream,
 * `missedEvents` acknowledged writes whose change (or a later one of the item) never arrived.
 */
export interface ClientLoad {
  /** Every write and read so far, for checkLinearizability. */
  history: History;
  /** Running figures (writesLost is only known after verify). */
  figures(): ClientFigures;
  /**
   * Stops writing (a request in flight finishes, within the retry budget), lets the streams
   * deliver the last acknowledged writes (settleMs at most), closes them; idempotent.
   */
  stop(): Promise<ClientFigures>;
  /**
   * After stop(): reads every acknowledged item from `endpoint` (a stack's base URL, not the
   * public name) and counts acknowledged writes it lacks as writesLost.
   */
  verify(endpoint: string): Promise<ClientFigures>;
}

const VERIFY_CONCURRENCY = 16;

export async function startClientLoad(options: ClientLoadOptions): Promise<ClientLoad> {
  validate(options);
  const log = options.log.child({ component: 'client-load' });
  const counters = new LoadCounters();
  const name = new PublicName(options.recordName, options.resolver);
  const agent = new Agent({ keepAlive: true });
  const context: LoadContext = {
    name,
    servicePort: options.servicePort,
    agent,
    retry: options.retrying === false ? undefined : { ...DEFAULT_RETRY, ...options.retry },
    history: options.history ?? new History(),
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    streamIdleMs: options.heartbeatMs * 3,
    reconnectJitterMs: options.reconnectJitterMs ?? Math.min(options.heartbeatMs, 1000),
    counters,
    log,
  };
  const prefix = options.userPrefix ?? `load-${randomUUID().slice(0, 8)}`;
  // Tokens outlive the run and its verification.
  const tokenSeconds = Math.ceil(options.maxDurationMs / 1000) + 3600;
  const users = await Promise.all(
    Array.from(
      { length: options.users },
      async (_, i) =>
        new SyntheticUser(
          `${prefix}-${i}`,
          await signToken(options.jwtSecret, `${prefix}-${i}`, { expiresIn: tokenSeconds }),
          options.itemsPerUser ?? 3,
          context,
        ),
    ),
  );

  const stopWriting = new AbortController();
  const stopStreams = new AbortController();
  // Every user waits on these two signals: one listener each per user is expected, not a leak.
  setMaxListeners(0, stopWriting.signal, stopStreams.signal);
  const rampUpMs = options.rampUpMs ?? Math.min(10_000, options.users * 5);
  const streamLoops = users.map((user, i) => user.holdStream(stopStreams.signal, (i * rampUpMs) / options.users));
  // Each user writes at its share of the load's rate, one request at a time, like a phone.
  const intervalMs = (1000 * options.users) / options.writesPerSecond;
  const writeLoops = users.map((user) => writeLoop(user, intervalMs, options.readsPerWrite ?? 1, stopWriting.signal));
  const deadline = setTimeout(() => void stop(), options.maxDurationMs);
  let missedEvents = 0;
  let stopping: Promise<ClientFigures> | undefined;
  let stopped = false;

  const figures = (writesLost = 0): ClientFigures => ({
    requests: counters.requests,
    failedRequests: counters.failedRequests,
    writesAcknowledged: counters.writesAcknowledged,
    writesLost,
    streams: counters.streams,
    streamsReconnected: counters.streamsReconnected,
    maxReconnectMs: Math.max(counters.maxReconnectMs, ...users.map((u) => u.downForMs())),
    duplicateEvents: counters.duplicateEvents,
    missedEvents,
    ...longestWritePause(counters, users),
  });

  function stop(): Promise<ClientFigures> {
    stopping ??= (async () => {
      clearTimeout(deadline);
      stopWriting.abort();
      await Promise.all(writeLoops);
      const settleBy = Date.now() + (options.settleMs ?? 5_000);
      while (Date.now() < settleBy && users.some((u) => u.missedEvents() > 0)) await sleep(50);
      missedEvents = users.reduce((sum, u) => sum + u.missedEvents(), 0);
      const result = figures();
      stopStreams.abort();
      await Promise.all(streamLoops);
      agent.destroy();
      name.close();
      stopped = true;
      log.info({ figures: result }, 'client load stopped');
      return result;
    })();
    return stopping;
  }

  async function verify(endpoint: string): Promise<ClientFigures> {
    if (!stopped) throw new Error('verify() needs a stopped load: call stop() first');
    const pending = users.flatMap((user) =>
      user.items.filter((item) => item.acked.length).map((item) => ({ user, item })),
    );
    let writesLost = 0;
    const verifyAgent = new Agent({ keepAlive: true });
    try {
      await Promise.all(
        Array.from({ length: VERIFY_CONCURRENCY }, async () => {
          for (let next = pending.pop(); next; next = pending.pop()) {
            const client = new SyncClient({
              baseUrl: endpoint,
              token: next.user.token,
              agent: verifyAgent,
              timeoutMs: context.requestTimeoutMs,
            });
            const read = await client.getItem(next.item.id);
            const stored = read.ok ? (read.body.data as { n?: unknown } | undefined)?.n : undefined;
            const storedN = typeof stored === 'number' ? stored : 0;
            const lost = next.item.acked.filter((n) => n > storedN).length;
            if (lost)
              log.warn(
                { item: next.item.id, status: read.status, storedN, acked: next.item.acked.at(-1) },
                'acknowledged write missing',
              );
            writesLost += lost;
          }
        }),
      );
    } finally {
      verifyAgent.destroy();
    }
    const result = figures(writesLost);
    log.info({ endpoint, figures: result }, 'client load verified');
    return result;
  }

  // Figures are only meaningful once the streams are up; a load that cannot open them starts anyway.
  await Promise.race([
    Promise.all(users.map((u) => u.firstStream)),
    sleep(rampUpMs + context.requestTimeoutMs, undefined, { ref: false }),
  ]);
  return { history: context.history, figures: () => figures(), stop, verify };
}

async function writeLoop(
  user: SyntheticUser,
  intervalMs: number,
  readsPerWrite: number,
  signal: AbortSignal,
): Promise<void> {
  // Write only once the stream is open, so every acknowledged write has a stream to arrive on.
  const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await Promise.race([user.firstStream, aborted]);
  if (!(await pause(Math.random() * intervalMs, signal))) return;
  while (!signal.aborted) {
    const started = Date.now();
    await user.write();
    for (let r = 0; r < readsPerWrite && !signal.aborted; r++) await user.read();
    if (!(await pause(started + intervalMs - Date.now(), signal))) return;
  }
}

/** False when aborted during the pause. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function validate(options: ClientLoadOptions): void {
  const positive: Array<keyof ClientLoadOptions> = [
    'users',
    'writesPerSecond',
    'maxDurationMs',
    'heartbeatMs',
    'servicePort',
  ];
  for (const field of positive) {
    const value = options[field];
    if (typeof value !== 'number' || !(value > 0))
      throw new Error(`client load option ${field} must be a positive number, got ${JSON.stringify(value)}`);
  }
  if (!Number.isInteger(options.users))
    throw new Error(`client load option users must be an integer, got ${options.users}`);
  if (!options.recordName) throw new Error('client load option recordName must name the public record');
}

/** The longest write pause so far, acknowledged or still waiting, and when it began. */
function longestWritePause(
  counters: LoadCounters,
  users: SyntheticUser[],
): Pick<ClientFigures, 'maxWritePauseMs' | 'maxWritePauseAt'> {
  let ms = counters.maxWritePauseMs;
  let from = counters.maxWritePauseFrom;
  for (const user of users) {
    if (user.writePauseMs() > ms) {
      ms = user.writePauseMs();
      from = user.writePauseFrom;
    }
  }
  return { maxWritePauseMs: ms, ...(from === undefined ? {} : { maxWritePauseAt: new Date(from).toISOString() }) };
}
