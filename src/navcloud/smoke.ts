/**
 * Smoke tests of a freshly restored stack (smoke-testing in docs/switch-protocol.md), run against the stack
 * directly (its endpoint, admin URL and nodes — never through DNS, which still points at the
 * old stack). Every check is recorded, pass or fail; only an abort throws.
 *
 * Smoke users and items carry a random `smoke-` prefix so they never collide with real users,
 * are skipped when sampling restored items, and are deleted (tombstoned) before returning.
 */
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { StackOutputs } from '../cloud/ports.ts';
import type { SmokeCheck } from '../switch/contract.ts';
import type { Logger } from '../logging.ts';
import type { StreamMessage } from './protocol.ts';
import { createAdminClient } from './admin-client.ts';
import { SyncClient, type ApiResult } from './client.ts';
import { signToken } from './token.ts';
import { openResponse, type SyncStream } from './stream.ts';
import { inParallel } from '../in-parallel.ts';

export const SMOKE_USER_PREFIX = 'smoke-';

export interface SmokeOptions {
  stack: StackOutputs;
  jwtSecret: string;
  /** The heartbeat interval the stack was configured with. */
  heartbeatMs: number;
  /** How long a change written on one node may take to reach a stream on another. */
  changeArrivalMs: number;
  /** Ceiling for each HTTP round trip; slower answers fail their check. */
  maxLatencyMs: number;
  /** Restored items read back and compared with the export. */
  sampleItems: number;
  signal?: AbortSignal;
  log?: Logger;
}

/** Sampled items read at once: a loaded store answers each in about half a second. */
const SAMPLE_READS_AT_ONCE = 5;

/** A check's condition did not hold; its message becomes the check's detail. */
class CheckFailed extends Error {}

/**
 * A stall of the checker's own event loop longer than this (a frozen or starved worker) voids the
 * timings it measured meanwhile: a heartbeat that arrived on time is read late.
 */
const CHECKER_STALL_MS = 500;

/** Runs every check; a run that failed while the checker itself stalled is run once more, and that run decides. */
export async function runSmokeChecks(options: SmokeOptions): Promise<SmokeCheck[]> {
  const first = await runChecksOnce(options);
  const failed = first.checks.filter((check) => !check.ok).map((check) => check.name);
  if (failed.length === 0 || first.stalledMs < CHECKER_STALL_MS) return first.checks;
  options.log?.warn(
    { stalledMs: Math.round(first.stalledMs), failed },
    'smoke checks failed while the checker itself stalled, so their timings say nothing about the stack: running them again',
  );
  return (await runChecksOnce(options)).checks;
}

async function runChecksOnce(options: SmokeOptions): Promise<{ checks: SmokeCheck[]; stalledMs: number }> {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const run = new SmokeRun(options);
  try {
    // Each check has items and users of its own, and spends its time waiting on round trips: side
    // by side they take as long as the slowest (a loaded Riak answers a write in a second), not the sum.
    const settled = await Promise.allSettled([
      ...nodesOf(options.stack).map((node) => run.check(`health ${node}`, () => run.health(node))),
      run.check('auth-refusal', () => run.authRefusal()),
      run.check('round-trip', () => run.roundTrip()),
      run.check('sharing', () => run.sharing()),
      run.check('restored-sample', () => run.restoredSample()),
      run.streaming(),
    ]);
    // Only an abort rejects; every check has stopped by now, so the clean-up below misses nothing.
    const aborted = settled.find((outcome) => outcome.status === 'rejected');
    if (aborted) throw aborted.reason;
    return {
      checks: settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? outcome.value : [])),
      stalledMs: loop.max / 1e6,
    };
  } finally {
    await run.cleanUp();
    loop.disable();
  }
}

function nodesOf(stack: StackOutputs): string[] {
  return stack.nodes.length ? stack.nodes : [stack.endpoint];
}

class SmokeRun {
  private readonly prefix = `${SMOKE_USER_PREFIX}${randomUUID().slice(0, 8)}`;
  private readonly owner = `${this.prefix}-owner`;
  private readonly reader = `${this.prefix}-reader`;
  private readonly stranger = `${this.prefix}-stranger`;
  /** Items this run created and has not deleted yet: id → owner. */
  private readonly leftovers = new Map<string, string>();

  constructor(private readonly options: SmokeOptions) {}

  async check(name: string, body: () => Promise<void>): Promise<SmokeCheck[]> {
    return [this.record(name, await this.measure(body))];
  }

  async health(node: string): Promise<void> {
    const client = this.client(node);
    expectStatus(await client.health(), 200, `GET ${node}/healthz`);
    expectStatus(await client.ready(), 200, `GET ${node}/readyz`);
  }

  /** Wrong or missing credentials are refused, and a user token does not open the admin API. */
  async authRefusal(): Promise<void> {
    const path = `/v1/items/${this.prefix}-auth`;
    const { jwtSecret } = this.options;
    const attempts: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ['a token signed with another secret', await signToken(`${jwtSecret}-not`, this.owner)],
      ['an expired token', await signToken(jwtSecret, this.owner, { expiresIn: -60 })],
      ['a malformed token', 'not-a-jwt'],
    ];
    for (const [what, token] of attempts) {
      expectStatus(
        await this.client(this.options.stack.endpoint, token).getItem(`${this.prefix}-auth`),
        401,
        `GET ${path} with ${what}`,
      );
    }
    const stats = `${this.options.stack.adminUrl}/admin/stats`;
    const response = await openResponse({
      method: 'GET',
      baseUrl: this.options.stack.adminUrl,
      path: '/admin/stats',
      headers: { authorization: `Bearer ${await signToken(jwtSecret, this.owner)}` },
      signal: this.options.signal,
      headersTimeoutMs: this.options.maxLatencyMs,
    });
    response.body.resume();
    if (response.status !== 403)
      throw new CheckFailed(`GET ${stats} with a user's token answered ${response.status}, expected 403`);
  }

  /** Create, conflicting create, read, update, stale update, delete, read after delete. */
  async roundTrip(): Promise<void> {
    const client = await this.as(this.owner);
    const id = `${this.prefix}-round-trip`;
    const first = { type: 'trip' as const, data: { name: 'smoke round trip', step: 1 } };
    const created = expectSuccess(await client.putItem(id, first, { ifNoneMatch: '*' }), 201, `PUT ${id} (create)`);
    this.leftovers.set(id, this.owner);
    const rev1 = expectEtag(created, `PUT ${id} (create)`);
    expectStatus(
      await client.putItem(id, first, { ifNoneMatch: '*' }),
      412,
      `PUT ${id} with If-None-Match: * on an existing item`,
    );
    const read = expectSuccess(await client.getItem(id), 200, `GET ${id}`);
    expectSame(expectEtag(read, `GET ${id}`), rev1, `GET ${id}: revision`);
    expectSame(read.body.data, first.data, `GET ${id}: data`);

    const second = { type: 'trip' as const, data: { name: 'smoke round trip', step: 2 } };
    const rev2 = expectEtag(
      expectSuccess(await client.putItem(id, second, { ifMatch: rev1 }), 200, `PUT ${id} (update)`),
      `PUT ${id} (update)`,
    );
    if (rev2 === rev1) throw new CheckFailed(`PUT ${id} (update) kept revision ${rev1}`);
    expectStatus(await client.putItem(id, first, { ifMatch: rev1 }), 412, `PUT ${id} with a stale If-Match`);
    const reread = expectSuccess(await client.getItem(id), 200, `GET ${id} after update`);
    expectSame(expectEtag(reread, `GET ${id} after update`), rev2, `GET ${id} after update: revision`);
    expectSame(reread.body.data, second.data, `GET ${id} after update: data`);

    expectStatus(await client.deleteItem(id, rev1), 412, `DELETE ${id} with a stale If-Match`);
    expectStatus(await client.deleteItem(id, rev2), 204, `DELETE ${id}`);
    this.leftovers.delete(id);
    expectStatus(await client.getItem(id), 404, `GET ${id} after delete`);
  }

  /** The owner shares; the reader sees it at the same path and in the inbox; a stranger gets 404. */
  async sharing(): Promise<void> {
    const owner = await this.as(this.owner);
    const reader = await this.as(this.reader);
    const id = `${this.prefix}-shared`;
    const item = { type: 'place' as const, data: { name: 'smoke shared place' } };
    expectSuccess(await owner.putItem(id, item, { ifNoneMatch: '*' }), 201, `PUT ${id}`);
    this.leftovers.set(id, this.owner);
    expectStatus(await reader.getItem(id), 404, `GET ${id} as ${this.reader} before the share`);
    // Sharing is a change of the item: it gets a new revision.
    const rev = expectEtag(
      expectSuccess(await owner.share(id, this.reader), 200, `POST ${id}/shares`),
      `POST ${id}/shares`,
    );

    const read = expectSuccess(await reader.getItem(id), 200, `GET ${id} as ${this.reader}`);
    expectSame(expectEtag(read, `GET ${id} as ${this.reader}`), rev, `GET ${id} as ${this.reader}: revision`);
    expectSame(read.body.data, item.data, `GET ${id} as ${this.reader}: data`);
    const inbox = expectSuccess(await reader.inbox(), 200, `GET /v1/inbox as ${this.reader}`);
    if (!inbox.body.items?.some((entry) => entry.id === id)) {
      throw new CheckFailed(`GET /v1/inbox as ${this.reader} does not list ${id}`);
    }
    expectStatus(await (await this.as(this.stranger)).getItem(id), 404, `GET ${id} as ${this.stranger}`);
    const refused = await reader.deleteItem(id);
    if (refused.ok)
      throw new CheckFailed(`DELETE ${id} as ${this.reader} (a reader, not the owner) answered ${refused.status}`);

    expectStatus(await owner.deleteItem(id, rev), 204, `DELETE ${id}`);
    this.leftovers.delete(id);
  }

  /** Reads a sample of the export back through the user API as each item's owner. */
  async restoredSample(): Promise<void> {
    const { stack, jwtSecret, maxLatencyMs, sampleItems, signal } = this.options;
    if (sampleItems === 0) return;
    const admin = createAdminClient({ adminUrl: stack.adminUrl, jwtSecret, requestTimeoutMs: maxLatencyMs });
    const sample = [];
    for await (const line of admin.exportSince(undefined, signal)) {
      if (line.kind !== 'item' || line.deleted || line.owner.startsWith(SMOKE_USER_PREFIX)) continue;
      sample.push(line);
      if (sample.length >= sampleItems) break;
    }
    const found: Array<string | undefined> = [];
    await inParallel(sample, SAMPLE_READS_AT_ONCE, async (line, index) => {
      const read = await (await this.as(line.owner)).getItem(line.id);
      if (!read.ok) found[index] = `${line.id} (owner ${line.owner}): ${read.status} ${read.error.code}`;
      else if (read.etag !== line.rev) found[index] = `${line.id}: revision ${read.etag}, export says ${line.rev}`;
      else if (!isDeepStrictEqual(read.body.data, line.data)) found[index] = `${line.id}: data differs from the export`;
    });
    const problems = found.filter((problem) => problem !== undefined);
    if (problems.length) {
      throw new CheckFailed(
        `${problems.length} of ${sample.length} sampled items differ: ${problems.slice(0, 5).join('; ')}`,
      );
    }
  }

  /**
   * One stream on the first node: two heartbeats at the configured interval, and a change
   * written through another node arriving in time. Two checks over the same stream.
   */
  async streaming(): Promise<SmokeCheck[]> {
    const { changeArrivalMs } = this.options;
    const nodes = nodesOf(this.options.stack);
    const streamNode = nodes[0]!;
    const writeNode = nodes[1] ?? streamNode;
    const user = `${this.prefix}-streamer`;
    const id = `${this.prefix}-streamed`;
    const started = performance.now();
    let watcher: StreamWatcher;
    try {
      watcher = await this.openWatcher(streamNode, user);
    } catch (err) {
      if (this.options.signal?.aborted) throw this.options.signal.reason;
      const detail = `stream on ${streamNode}: ${(err as Error).message}`;
      return [
        this.record('stream-heartbeats', { ok: false, durationMs: performance.now() - started, detail }),
        this.record('stream-change-arrival', { ok: false, durationMs: performance.now() - started, detail }),
      ];
    }
    try {
      const [heartbeats, arrival] = await Promise.all([
        this.measure(() => this.heartbeats(watcher, streamNode)),
        this.measure(async () => {
          const writer = await this.as(user, writeNode);
          const sent = performance.now();
          const put = await writer.putItem(
            id,
            { type: 'route', data: { name: 'smoke streamed route' } },
            { ifNoneMatch: '*' },
          );
          expectStatus(put, 201, `PUT ${id} on ${writeNode}`);
          this.leftovers.set(id, user);
          // From its acknowledgement: the write's own latency is the round trip's check (maxLatencyMs).
          const acknowledged = performance.now();
          const deadline = acknowledged + changeArrivalMs;
          const seen = await watcher.until((m) => (m.type === 'change' && m.id === id ? m : undefined), deadline);
          if (!seen) {
            throw new CheckFailed(
              `a change written through ${writeNode} (acknowledged after ${Math.round(acknowledged - sent)} ms) did not reach the stream on ${streamNode} within ${changeArrivalMs} ms of its acknowledgement${watcher.failure()}`,
            );
          }
        }),
      ]);
      return [this.record('stream-heartbeats', heartbeats), this.record('stream-change-arrival', arrival)];
    } finally {
      watcher.close();
    }
  }

  private async openWatcher(node: string, user: string): Promise<StreamWatcher> {
    const client = await this.as(user, node);
    const page = expectSuccess(await client.changes(), 200, `GET ${node}/v1/changes`);
    // Opening at the current cursor means the change written next cannot predate the stream.
    const opened = expectSuccess(
      await client.stream({ since: page.body.next, signal: this.options.signal }),
      200,
      `GET ${node}/v1/stream`,
    );
    return new StreamWatcher(opened.body);
  }

  private async heartbeats(watcher: StreamWatcher, node: string): Promise<void> {
    const { heartbeatMs } = this.options;
    // Early beats mean another interval is configured; late ones, an overloaded or stuck node.
    const earliest = heartbeatMs * 0.5;
    const latest = heartbeatMs * 1.5 + 250;
    const first = await watcher.until((m, at) => (m.type === 'heartbeat' ? at : undefined), watcher.openedAt + latest);
    if (first === undefined)
      throw new CheckFailed(
        `no heartbeat on ${node} within ${Math.round(latest)} ms of opening the stream${watcher.failure()}`,
      );
    const second = await watcher.until(
      (m, at) => (m.type === 'heartbeat' && at > first ? at : undefined),
      first + latest,
    );
    if (second === undefined)
      throw new CheckFailed(
        `no second heartbeat on ${node} within ${Math.round(latest)} ms of the first${watcher.failure()}`,
      );
    const gap = second - first;
    if (gap < earliest) {
      throw new CheckFailed(`heartbeats on ${node} came ${Math.round(gap)} ms apart, expected about ${heartbeatMs} ms`);
    }
  }

  /** Deletes what a failed or aborted check left; bounded by maxLatencyMs per item, even after an abort. */
  async cleanUp(): Promise<void> {
    for (const [id, owner] of this.leftovers) {
      try {
        const client = new SyncClient({
          baseUrl: this.options.stack.endpoint,
          token: await signToken(this.options.jwtSecret, owner, { expiresIn: 600 }),
          timeoutMs: this.options.maxLatencyMs,
        });
        await client.deleteItem(id);
      } catch (err) {
        this.options.log?.warn({ err, id }, 'smoke test item could not be deleted');
      }
    }
  }

  private async measure(body: () => Promise<void>): Promise<Omit<SmokeCheck, 'name'>> {
    const started = performance.now();
    try {
      await body();
      return { ok: true, durationMs: Math.round(performance.now() - started) };
    } catch (err) {
      if (this.options.signal?.aborted) throw this.options.signal.reason;
      const detail = err instanceof CheckFailed ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
      return { ok: false, durationMs: Math.round(performance.now() - started), detail };
    }
  }

  private record(name: string, result: Omit<SmokeCheck, 'name'>): SmokeCheck {
    const check = { name, ...result, durationMs: Math.round(result.durationMs) };
    if (check.ok) this.options.log?.info({ check: name, durationMs: check.durationMs }, 'smoke check passed');
    else
      this.options.log?.warn({ check: name, durationMs: check.durationMs, detail: check.detail }, 'smoke check failed');
    return check;
  }

  private client(baseUrl: string, token?: string): SyncClient {
    return new SyncClient({ baseUrl, token, timeoutMs: this.options.maxLatencyMs, signal: this.options.signal });
  }

  private async as(user: string, baseUrl = this.options.stack.endpoint): Promise<SyncClient> {
    return this.client(baseUrl, await signToken(this.options.jwtSecret, user, { expiresIn: 600 }));
  }
}

/** Reads a stream in the background and lets checks wait for a message that matches. */
class StreamWatcher {
  readonly openedAt = performance.now();
  private readonly seen: Array<{ message: StreamMessage; at: number }> = [];
  private readonly waiting = new Set<() => void>();
  private error: Error | undefined;
  private ended = false;

  constructor(private readonly stream: SyncStream) {
    void (async () => {
      try {
        for await (const message of stream) {
          this.seen.push({ message, at: performance.now() });
          this.wakeAll();
        }
      } catch (err) {
        this.error = err as Error;
      }
      this.ended = true;
      this.wakeAll();
    })();
  }

  private wakeAll(): void {
    for (const wake of this.waiting) wake();
  }

  /** The first value `pick` returns for a message received before `deadline` (performance.now time). */
  async until<T>(
    pick: (message: StreamMessage, at: number) => T | undefined,
    deadline: number,
  ): Promise<T | undefined> {
    let index = 0;
    for (;;) {
      for (; index < this.seen.length; index++) {
        const entry = this.seen[index]!;
        if (entry.at > deadline) return undefined;
        const value = pick(entry.message, entry.at);
        if (value !== undefined) return value;
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0 || this.ended) return undefined;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, remaining);
        this.waiting.add(wake);
      });
    }
  }

  /** Why the stream stopped, for a check's detail, or nothing while it is open. */
  failure(): string {
    if (this.error) return ` (the stream failed: ${this.error.message})`;
    return this.ended ? ' (the server closed the stream)' : '';
  }

  close(): void {
    this.stream.close();
  }
}

function expectStatus(result: ApiResult<unknown>, status: number, what: string): void {
  if (result.status !== status) {
    const why = result.ok ? '' : ` ${result.error.code}: ${result.error.message}`;
    throw new CheckFailed(`${what} answered ${result.status}${why}, expected ${status}`);
  }
}

/** A success with this status, whose body the caller reads next. */
function expectSuccess<T>(result: ApiResult<T>, status: number, what: string): Extract<ApiResult<T>, { ok: true }> {
  expectStatus(result, status, what);
  if (!result.ok) throw new CheckFailed(`${what} answered ${status} as an error`);
  return result;
}

function expectEtag(result: { etag?: string }, what: string): string {
  if (!result.etag) throw new CheckFailed(`${what} answered without an ETag`);
  return result.etag;
}

function expectSame(actual: unknown, expected: unknown, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new CheckFailed(
      `${what} is ${JSON.stringify(actual)?.slice(0, 120)}, expected ${JSON.stringify(expected)?.slice(0, 120)}`,
    );
  }
}
