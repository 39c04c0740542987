/**
 * One synthetic user of the client load, behaving as a well-behaved mobile client: it writes its own
 * items with preconditions, reads them back, and holds a change stream that resumes from its
 * cursor. It reaches the service only through the public name (PublicName), re-resolving after
 * the TTL, on `reconnect` and when an address stops answering.
 *
 * Every write carries a per-item counter `n` in its data. The counter, not the opaque revision,
 * is what lets the load tell whether a stack or a stream holds at least an acknowledged write.
 */
import type { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logging.ts';
import { SyncClient, type ApiResult } from '../navcloud/client.ts';
import type { StreamMessage } from '../navcloud/protocol.ts';
import { ConnectionError, type SyncStream } from '../navcloud/stream.ts';
import type { History } from './history.ts';
import { NameResolutionError, type PublicName } from './public-name.ts';

export interface RetryPolicy {
  /** Longest a request keeps retrying 503s and connection failures before it counts as failed. */
  budgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** What all users of one load share. */
export interface LoadContext {
  name: PublicName;
  servicePort: number;
  agent: Agent;
  /** Undefined: the client never retries (no wait on Retry-After, no new attempt after an error): every failure counts. */
  retry: RetryPolicy | undefined;
  /** Where every write and read is recorded for the linearizability check. */
  history: History;
  /** Bound on one request's wait for an answer. */
  requestTimeoutMs: number;
  /** A stream silent this long (no heartbeat) is treated as dead. */
  streamIdleMs: number;
  /** After `reconnect`, a random wait up to this long, so a drained node's streams do not return in one burst. */
  reconnectJitterMs: number;
  counters: LoadCounters;
  log: Logger;
}

export class LoadCounters {
  requests = 0;
  failedRequests = 0;
  writesAcknowledged = 0;
  streams = 0;
  streamsReconnected = 0;
  maxReconnectMs = 0;
  duplicateEvents = 0;
  /** Longest time from a write that was not acknowledged yet to the next acknowledged one, over all users. */
  maxWritePauseMs = 0;
  /** When that longest pause began (epoch ms). */
  maxWritePauseFrom: number | undefined;
}

export interface ItemState {
  id: string;
  /** Revision to send as If-Match; undefined until the item exists. */
  rev: string | undefined;
  /** Counter of the last write sent. */
  lastN: number;
  /** Counters of acknowledged writes, ascending. */
  acked: number[];
}

interface WrittenData {
  user: string;
  n: number;
}

export const DEFAULT_RETRY: RetryPolicy = { budgetMs: 30_000, baseDelayMs: 50, maxDelayMs: 2_000 };

/** Conflicts resolved within one write before it counts as failed (a lost answer, then a retry). */
const MAX_CONFLICT_ROUNDS = 3;

export class SyntheticUser {
  readonly items: ItemState[];
  private address: string | undefined;
  private cursor: string | undefined;
  /** `id@rev` of every change received, to spot one delivered twice. */
  private readonly received = new Set<string>();
  /** Highest write counter received on the stream, per item. */
  private readonly highestReceived = new Map<string, number>();
  private streamOpened!: () => void;
  /** Resolves once the stream opened the first time. */
  readonly firstStream = new Promise<void>((resolve) => {
    this.streamOpened = resolve;
  });
  /** When the stream was lost, while it is down. */
  private lostAt: number | undefined;
  /** When the oldest write not acknowledged yet was sent (undefined: every write so far was). */
  private waitingSince: number | undefined;
  /** This user's number in the history. */
  private readonly historyClient: number;

  constructor(
    readonly id: string,
    readonly token: string,
    itemCount: number,
    private readonly context: LoadContext,
  ) {
    this.items = Array.from({ length: itemCount }, (_, k) => ({
      id: `${id}-item-${k}`,
      rev: undefined,
      lastN: 0,
      acked: [],
    }));
    this.historyClient = context.history.newClient();
  }

  /** How long this user has been waiting for a write to be acknowledged right now (0: not waiting). */
  writePauseMs(): number {
    return this.waitingSince === undefined ? 0 : Date.now() - this.waitingSince;
  }

  /** When the write this user is still waiting for was sent (undefined: not waiting). */
  get writePauseFrom(): number | undefined {
    return this.waitingSince;
  }

  // ------------------------------------------------------------------ requests

  /** PUT with a precondition; after a lost answer and a retry, a 412 is resolved by reading the item. */
  async write(): Promise<void> {
    const { counters, history } = this.context;
    const item = this.items[Math.floor(Math.random() * this.items.length)]!;
    counters.requests++;
    this.waitingSince ??= Date.now();
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round++) {
      const n = ++item.lastN;
      const body = { type: 'trip' as const, data: { user: this.id, n } satisfies WrittenData };
      const call = history.now();
      const written = (at: number | null, rev?: string) =>
        history.record({ client: this.historyClient, key: item.id, kind: 'write', value: n, rev, call, return: at });
      const result = await this.send((client) =>
        client.putItem(item.id, body, item.rev === undefined ? { ifNoneMatch: '*' } : { ifMatch: item.rev }),
      );
      if (result?.ok && result.etag) {
        written(history.now(), result.etag);
        return this.acknowledge(item, n, result.etag);
      }
      if (result?.status !== 412) {
        // Without an answer, or with a server error that does not say the write was refused, the write may still land.
        if (result === undefined || mayHaveApplied(result)) written(null);
        return this.fail(`PUT ${item.id}`, result);
      }
      const current = await this.send((client) => client.getItem(item.id));
      if (!current?.ok || !current.etag) {
        written(null);
        return this.fail(`GET ${item.id} after a 412`, current);
      }
      const stored = current.body.data as Partial<WrittenData> | undefined;
      // Our own write applied before its answer was lost: acknowledged after all.
      if (stored?.n === n) {
        written(history.now(), current.etag);
        return this.acknowledge(item, n, current.etag);
      }
      item.rev = current.etag;
      item.lastN = Math.max(item.lastN, stored?.n ?? 0);
    }
    this.fail(`PUT ${item.id}`, undefined, `still conflicting after ${MAX_CONFLICT_ROUNDS} rounds`);
  }

  /** GET of an item this user wrote: an answer older than the last acknowledged write is a failure too. */
  async read(): Promise<void> {
    const written = this.items.filter((item) => item.acked.length);
    if (!written.length) return;
    const item = written[Math.floor(Math.random() * written.length)]!;
    const acked = item.acked.at(-1)!;
    this.context.counters.requests++;
    const call = this.context.history.now();
    const result = await this.send((client) => client.getItem(item.id));
    if (result?.status === 404)
      this.context.history.record({
        client: this.historyClient,
        key: item.id,
        kind: 'read',
        value: 0,
        call,
        return: this.context.history.now(),
      });
    if (!result?.ok) return this.fail(`GET ${item.id}`, result);
    const stored = (result.body.data as Partial<WrittenData> | undefined)?.n ?? 0;
    this.context.history.record({
      client: this.historyClient,
      key: item.id,
      kind: 'read',
      value: stored,
      rev: result.etag,
      call,
      return: this.context.history.now(),
    });
    if (stored < acked)
      this.fail(`GET ${item.id}`, result, `stale read: write ${stored}, after write ${acked} was acknowledged`);
  }

  private acknowledge(item: ItemState, n: number, rev: string): void {
    item.rev = rev;
    item.acked.push(n);
    this.context.counters.writesAcknowledged++;
    const { counters } = this.context;
    if (this.waitingSince !== undefined && Date.now() - this.waitingSince > counters.maxWritePauseMs) {
      counters.maxWritePauseMs = Date.now() - this.waitingSince;
      counters.maxWritePauseFrom = this.waitingSince;
    }
    this.waitingSince = undefined;
  }

  private fail(what: string, result: ApiResult<unknown> | undefined, why?: string): void {
    this.context.counters.failedRequests++;
    const reason =
      why ??
      (result === undefined
        ? 'gave up retrying'
        : result.ok
          ? `answered ${result.status} without an ETag`
          : `answered ${result.status} ${result.error.code}`);
    this.context.log.warn({ user: this.id, request: what, reason }, 'client request failed');
  }

  /**
   * One logical request through the public name: 503 and 429 wait for Retry-After, connection
   * failures re-resolve and back off, both within the retry budget. Undefined: gave up, or (a
   * client that never retries) no answer.
   */
  private async send<T>(call: (client: SyncClient) => Promise<ApiResult<T>>): Promise<ApiResult<T> | undefined> {
    const { retry } = this.context;
    if (!retry) {
      try {
        return await call(await this.client());
      } catch (err) {
        if (!(err instanceof ConnectionError) && !(err instanceof NameResolutionError)) throw err;
        this.forgetAddress();
        return undefined;
      }
    }
    const deadline = Date.now() + retry.budgetMs;
    for (let attempt = 0; ; attempt++) {
      let wait: number;
      try {
        const result = await call(await this.client());
        if (result.ok || (result.status !== 503 && result.status !== 429)) return result;
        wait = result.retryAfterMs ?? backoff(retry, attempt);
      } catch (err) {
        if (!(err instanceof ConnectionError) && !(err instanceof NameResolutionError)) throw err;
        this.forgetAddress();
        wait = backoff(retry, attempt);
      }
      if (Date.now() + wait > deadline) return undefined;
      await sleep(wait);
    }
  }

  private async client(): Promise<SyncClient> {
    const addresses = await this.context.name.addresses();
    // Stay on one address while DNS still lists it, as a client's connection pool would.
    if (this.address === undefined || !addresses.includes(this.address)) {
      this.address = addresses[Math.floor(Math.random() * addresses.length)]!;
    }
    return new SyncClient({
      baseUrl: `http://${this.address}:${this.context.servicePort}`,
      token: this.token,
      agent: this.context.agent,
      timeoutMs: this.context.requestTimeoutMs,
    });
  }

  private forgetAddress(): void {
    this.address = undefined;
    this.context.name.forget();
  }

  // ------------------------------------------------------------------ stream

  /**
   * Holds the stream until `signal` aborts, reopening it from the cursor whenever it is lost.
   * The first open waits `startAfterMs`, so a load ramps up instead of connecting all at once.
   */
  async holdStream(signal: AbortSignal, startAfterMs = 0): Promise<void> {
    const { counters, log } = this.context;
    let everOpened = false;
    let failures = 0;
    let wait = startAfterMs;
    while (!signal.aborted) {
      if (wait > 0) {
        try {
          await sleep(wait, undefined, { signal });
        } catch {
          break;
        }
      }
      wait = 0;
      try {
        const stream = await this.openStream(signal);
        if (everOpened) {
          counters.streamsReconnected++;
          if (this.lostAt !== undefined)
            counters.maxReconnectMs = Math.max(counters.maxReconnectMs, Date.now() - this.lostAt);
        } else {
          counters.streams++;
          everOpened = true;
          this.streamOpened();
        }
        this.lostAt = undefined;
        failures = 0;
        let told = false;
        for await (const message of stream) {
          told ||= message.type === 'reconnect';
          this.receive(message);
          this.cursor = stream.cursor;
        }
        // Closed by the server: after `reconnect` somewhat later, else (shutting down) at once.
        if (told) wait = Math.random() * this.context.reconnectJitterMs;
      } catch (err) {
        if (signal.aborted) break;
        wait = this.afterStreamFailure(err, failures++);
        log.debug({ user: this.id, err: (err as Error).message, wait }, 'stream lost');
      }
      if (signal.aborted) break;
      this.lostAt ??= Date.now();
    }
  }

  private async openStream(signal: AbortSignal): Promise<SyncStream> {
    const client = await this.client();
    if (this.cursor === undefined) {
      // Start at the feed's current end, so every later write must come through the stream.
      const page = await client.changes(undefined, 1);
      if (!page.ok) throw new StreamRefused(page.status, page.retryAfterMs);
      this.cursor = page.body.next;
    }
    const opened = await client.stream({ since: this.cursor, signal, idleTimeoutMs: this.context.streamIdleMs });
    if (!opened.ok) throw new StreamRefused(opened.status, opened.retryAfterMs);
    return opened.body;
  }

  /** How long to wait before reopening a stream that failed this way. */
  private afterStreamFailure(err: unknown, failures: number): number {
    // A stream is reopened after a loss whether or not its user retries requests, as a phone's sync does.
    const policy = this.context.retry ?? DEFAULT_RETRY;
    if (err instanceof ConnectionError || err instanceof NameResolutionError) {
      this.forgetAddress();
      return backoff(policy, failures);
    }
    if (err instanceof StreamRefused) {
      if (err.status === 410) {
        // The cursor is unknown to this stack: start again from its current end (and say so).
        this.context.log.warn(
          { user: this.id, cursor: this.cursor },
          'stream cursor refused with 410; resuming from the current end',
        );
        this.cursor = undefined;
      }
      return err.retryAfterMs ?? backoff(policy, failures);
    }
    throw err;
  }

  /** How long the stream has been down right now (0 while it is up). */
  downForMs(): number {
    return this.lostAt === undefined ? 0 : Date.now() - this.lostAt;
  }

  private receive(message: StreamMessage): void {
    if (message.type === 'reconnect') {
      // The node is going away: whatever DNS says now is where the stream must go next.
      this.forgetAddress();
      return;
    }
    if (message.type !== 'change' && message.type !== 'shared') return;
    const key = `${message.id}@${message.rev}`;
    if (this.received.has(key)) this.context.counters.duplicateEvents++;
    else this.received.add(key);
    const n = (message.data as Partial<WrittenData> | undefined)?.n;
    if (typeof n === 'number')
      this.highestReceived.set(message.id, Math.max(n, this.highestReceived.get(message.id) ?? 0));
  }

  /** Acknowledged writes whose change (or a later one of the same item) never reached the stream. */
  missedEvents(): number {
    let missed = 0;
    for (const item of this.items) {
      const received = this.highestReceived.get(item.id) ?? 0;
      missed += item.acked.filter((n) => n > received).length;
    }
    return missed;
  }
}

/**
 * 503s that refuse a write before anything was applied: the fence (`fenced`, held first or not: the
 * store's fence check refused it), a node draining or shutting down, a request relayed too often. Any other server error (the store failed in the
 * middle: a Riak write that missed its quorum may still be stored; a relay that broke off) leaves
 * the write's fate unknown. Client errors (4xx) are refusals.
 */
const REFUSED_BEFORE_APPLYING = new Set(['fenced', 'draining', 'shutting-down', 'forward-loop']);

function mayHaveApplied(result: ApiResult<unknown>): boolean {
  return !result.ok && result.status >= 500 && !REFUSED_BEFORE_APPLYING.has(result.error.code);
}

/** A stream open answered with a status, not a stream. */
class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`stream open answered ${status}`);
  }
}

/** Exponential backoff with jitter, so a load's users do not retry in lockstep. */
export function backoff(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}
