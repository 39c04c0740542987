import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import { StoreError } from '../../server/store/port.ts';
import { openRiakStore, RiakStore } from '../../server/store/riak/store.ts';
import { RiakClient } from '../../server/store/riak/client.ts';
import { parseRiakUrl } from '../../server/store/riak/config.ts';
import { freePort } from '../../src/net.ts';
import { RiakEmulator, type RecordedRequest } from '../support/riak-emulator.ts';
import { clusterRunning, nodeHttp } from '../support/riak-cluster.ts';
import { describeStoreContract } from './store-contract.ts';
import { call, openStream, startTestNode } from './helpers.ts';

const logger = pino({ level: 'silent' });

describeStoreContract('riak (documented HTTP API, emulated on loopback)', async (clock) => {
  const riak = await new RiakEmulator().start();
  const store = new RiakStore(new RiakClient(parseRiakUrl(`${riak.url}?export_grace_ms=1000`)), {
    logger,
    pageSize: 2,
    clock,
  });
  return {
    store,
    async cleanup() {
      await store.close();
      await riak.stop();
    },
  };
});

// The contract against a real Riak: RIAK_URL=http://HOST:8098 (bucket types `navcloud` and `counters`
// must exist and be active), else riakctl's cluster when it runs (RIAK_CLUSTER=1, as .ci/run sets).
const realRiak = process.env.RIAK_URL ?? (clusterRunning ? nodeHttp(1) : undefined);
describe.runIf(realRiak)(
  `against a real Riak at ${realRiak ?? 'RIAK_URL (skipped: none set, and no riakctl cluster)'}`,
  () => {
    describeStoreContract('riak (real)', async (clock) => {
      const store = await openRiakStore(
        `${realRiak}${realRiak!.includes('?') ? '&' : '?'}bucket=contract-${randomBytes(6).toString('hex')}&r=quorum&w=quorum`,
        { logger, clock },
      );
      return { store, cleanup: () => store.close() };
    });
  },
);

function withoutTransport(request: RecordedRequest) {
  const { host: _host, connection: _connection, 'content-length': _length, ...headers } = request.headers;
  return { method: request.method, path: request.path, query: request.query, headers, body: request.body };
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof StoreError)) throw new Error(`expected a StoreError, got ${String(error)}`);
  return error;
}

describe('Riak store with a node of the cluster down: degraded writes', () => {
  let riak: RiakEmulator;
  let store: RiakStore;
  const T = '/types/navcloud/buckets/trips';

  beforeEach(async () => {
    riak = await new RiakEmulator().start();
    store = new RiakStore(new RiakClient(parseRiakUrl(`${riak.url}?bucket=trips&export_grace_ms=400`)), {
      logger,
      probeEveryMs: 50,
    });
  });

  afterEach(async () => {
    await store.close();
    await riak.stop();
  });

  const put = (id: string, data: unknown) => store.put({ id, owner: 'alice', type: 'trip', data });
  async function exported(
    since = 0,
  ): Promise<{ through: number; items: { id: string; seq: number; data?: unknown }[] }> {
    const { through, items } = await store.exportSince(since);
    const all = [];
    for await (const item of items) all.push({ id: item.id, seq: item.seq, data: item.data });
    return { through, items: all };
  }

  it('acknowledges writes while a node is down, and exports find them though the returning node still serves its old index', async () => {
    await put('a1', { v: 1 });
    riak.nodeDown();
    riak.clearRequests();
    await put('a2', { v: 1 });
    // The whole attempt is refused (and stored where it could be); the number goes into the log; then two primaries.
    expect(
      riak.requests
        .filter((r) => r.method === 'PUT')
        .map((r) => `${r.path.replace(T, '')} ${r.query.pw ?? ''}`)
        .slice(0, 4),
    ).toEqual([
      '/keys/a2 all',
      '.meta/keys/degraded quorum',
      expect.stringMatching(/^\.meta\/keys\/degraded%2F[0-9a-f]{12}%2F0 quorum$/),
      '/keys/a2 quorum',
    ]);
    // The refused whole attempt was stored all the same: the two identical copies collapse into one, keeping its number.
    expect(riak.siblingCount('navcloud', 'trips', 'a2')).toBe(1);
    expect(
      riak.requests.find((r) => r.method === 'PUT' && r.path === `${T}/keys/a2` && r.query.pw === 'quorum')?.query
        .node_confirms,
    ).toBe('2');
    await put('a1', { v: 2 });
    await put('a3', { v: 1 });
    riak.nodeBack();
    // What one replica per partition shows now: a1 at its old number, a2 and a3 nowhere.
    const walk = await new RiakClient(parseRiakUrl(`${riak.url}?bucket=trips`)).index(
      'trips',
      'seq_int',
      1,
      await store.highestSeq(),
      100,
    );
    expect(walk.results.map(([, key]) => key)).toEqual(['a1']);
    const { through, items } = await exported();
    expect(items.map(({ id, data }) => ({ id, data }))).toEqual([
      { id: 'a2', data: { v: 1 } },
      { id: 'a1', data: { v: 2 } },
      { id: 'a3', data: { v: 1 } },
    ]);
    expect(items.map((item) => item.seq)).toEqual([...items.map((item) => item.seq)].sort((a, b) => a - b));
    expect(through).toBe(items.at(-1)!.seq);
    // A chained export from an earlier cursor finds only what came after it.
    expect((await exported(items[0]!.seq)).items.map((item) => item.id)).toEqual(['a1', 'a3']);
  });

  it('shows degraded writes in the feeds and the inbox while the returning node still serves its old index', async () => {
    await put('a1', { v: 1 });
    riak.nodeDown();
    const { item: degraded } = await put('a2', { v: 1 });
    await store.share('a2', 'alice', 'bob');
    await put('a1', { v: 2 });
    riak.nodeBack();
    await put('a3', { v: 1 });
    const feed = await store.changes('alice', 0, 10);
    expect(feed.map(({ id, data }) => ({ id, data }))).toEqual([
      { id: 'a2', data: { v: 1 } },
      { id: 'a1', data: { v: 2 } },
      { id: 'a3', data: { v: 1 } },
    ]);
    expect((await store.changes('alice', degraded.seq, 10)).map((change) => change.id)).toEqual(['a2', 'a1', 'a3']);
    expect((await store.changes('bob', 0, 10)).map((change) => [change.id, change.sharedBy])).toEqual([
      ['a2', 'alice'],
    ]);
    expect((await store.inbox('bob', 10)).map((item) => item.id)).toEqual(['a2']);
  });

  it('ends a feed page the index cut short where the index part ends, so the next page skips nothing', async () => {
    const { item: start } = await put('a1', {});
    await put('a2', { big: 'x'.repeat(2000) });
    await put('a3', {});
    riak.nodeDown();
    await put('a4', {});
    riak.nodeBack();
    // The index holds a2 and a3, the log a4: a page full after a2 must not reach over a3 to a4.
    const first = await store.changes('alice', start.seq, 10, 1000);
    expect(first.map((change) => change.id)).toEqual(['a2']);
    const rest = await store.changes('alice', first[0]!.seq, 10, 1000);
    expect(rest.map((change) => change.id)).toEqual(['a3', 'a4']);
  });

  it('writes whole again once Riak stores on every primary, and stops asking the log', async () => {
    riak.nodeDown();
    await put('a1', {});
    riak.nodeBack();
    await new Promise((settle) => setTimeout(settle, 300));
    riak.clearRequests();
    await put('a2', {});
    expect(
      riak.requests.filter((r) => r.method === 'PUT').map((r) => `${r.path.replace(T, '')} ${r.query.pw}`),
    ).toEqual(['/keys/a2 all']);
  });

  it('records the numbers of a degraded import, so exports of the new stack find them too', async () => {
    riak.nodeDown();
    const lines = [1, 2, 3].map((n) => ({
      kind: 'item' as const,
      id: `i${n}`,
      owner: 'bob',
      type: 'place' as const,
      rev: `1-${'a'.repeat(12)}`,
      deleted: false,
      data: { n },
      shares: [],
      cursor: encodeCursor(n * 10),
      updatedAt: new Date().toISOString(),
    }));
    expect((await store.import(lines)).applied).toBe(3);
    riak.nodeBack();
    expect((await exported()).items.map((item) => [item.id, item.seq])).toEqual([
      ['i1', 10],
      ['i2', 20],
      ['i3', 30],
    ]);
    riak.handoff();
    expect((await exported()).items.map((item) => item.id)).toEqual(['i1', 'i2', 'i3']);
  });
});

describe('Riak store: the exact requests it makes and how it reads each documented answer', () => {
  let riak: RiakEmulator;
  let store: RiakStore;
  const T = '/types/navcloud/buckets/trips';
  const ITEM = `${T}/keys/trip-1`;
  const FENCE = `${T}.meta/keys/fence`;
  const COUNTER = '/types/counters/buckets/trips/datatypes/seq';

  beforeEach(async () => {
    riak = await new RiakEmulator().start();
    store = await openRiakStore(`${riak.url}?bucket=trips&r=quorum&pr=1&w=2&pw=one&dw=all`, { logger });
    riak.clearRequests();
  });

  afterEach(async () => {
    await store.close();
    await riak.stop();
  });

  it('checks its bucket types when opened, and says what to fix', async () => {
    const opened = await openRiakStore(`${riak.url}?bucket=trips&r=quorum`, { logger });
    await opened.close();
    expect(riak.requests.map(withoutTransport)).toEqual([
      { method: 'GET', path: `${T}/props`, query: {}, headers: { accept: 'application/json' }, body: '' },
      {
        method: 'GET',
        path: '/types/counters/buckets/trips/props',
        query: {},
        headers: { accept: 'application/json' },
        body: '',
      },
    ]);
    await expect(openRiakStore(`${riak.url}?type=nope`, { logger })).rejects.toThrow(
      /no active bucket type "nope": create it with riak-admin bucket-type create nope/,
    );
    await expect(openRiakStore(`${riak.url}?counter_type=navcloud`, { logger })).rejects.toThrow(
      /bucket type "navcloud" \(counter_type\) must have datatype counter, it has "none"/,
    );
    await expect(openRiakStore(`${riak.url}?type=counters`, { logger })).rejects.toThrow(/holds counter data types/);
    riak.allowMult = false;
    await expect(openRiakStore(riak.url, { logger })).rejects.toThrow(/allow_mult=false: it must be true/);
    riak.allowMult = true;
    // A cluster still starting does not stop the node: readiness reports it instead.
    riak.respondOnce((r) => r.path.endsWith('/props'), { status: 503 });
    const early = await openRiakStore(riak.url, { logger });
    await early.ping();
    await early.close();
  });

  /** Every read: a replica's "not found" is no answer for the key while another replica may hold it. */
  const READ = { r: 'quorum', pr: '1', notfound_ok: 'false', basic_quorum: 'false' };

  it('creates an item: fence read, item read, counter increment, conditional PUT with indexes, then fence and export watermark read together', async () => {
    const { item, created } = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { name: 'Lisbon' } });
    expect(created).toBe(true);
    expect(item.seq).toBe(1);
    const accept = 'multipart/mixed, application/json';
    const afterStore = riak.requests.slice(4).map(withoutTransport);
    expect(afterStore).toEqual(
      expect.arrayContaining([
        { method: 'GET', path: FENCE, query: READ, headers: { accept }, body: '' },
        {
          method: 'GET',
          path: `${T}.meta/keys/export-watermark`,
          query: READ,
          headers: { accept },
          body: '',
        },
      ]),
    );
    expect(afterStore).toHaveLength(2);
    expect(riak.requests.slice(0, 4).map(withoutTransport)).toEqual([
      { method: 'GET', path: FENCE, query: READ, headers: { accept }, body: '' },
      { method: 'GET', path: ITEM, query: READ, headers: { accept }, body: '' },
      {
        // Numbers ask two primaries on two nodes, never all: a frozen node must not stall every write.
        method: 'POST',
        path: COUNTER,
        query: { w: 'quorum', pw: 'quorum', dw: 'quorum', node_confirms: '2', returnbody: 'true' },
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: '{"increment":1}',
      },
      {
        // Items ask every primary replica, on disk, within Riak's own deadline: then every index walk sees them.
        method: 'PUT',
        path: ITEM,
        query: { w: 'all', pw: 'all', dw: 'all', timeout: '3000', returnbody: 'true' },
        headers: {
          'content-type': 'application/json',
          accept,
          'if-none-match': '*',
          'x-riak-index-seq_int': '1',
          'x-riak-index-feed_bin': 'alice/0000000000000001',
          'x-riak-index-live_int': '1',
        },
        body: JSON.stringify({
          id: 'trip-1',
          owner: 'alice',
          type: 'trip',
          data: { name: 'Lisbon' },
          rev: item.rev,
          deleted: false,
          shares: [],
          seq: 1,
          updatedAt: item.updatedAt,
          revoked: {},
        }),
      },
    ]);
  });

  it('does not acknowledge a write the fence overtook while it was being stored, and undoes it by a change of its own', async () => {
    const first = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 1 } });
    riak.clearRequests();
    const fenced = JSON.stringify({ mode: 'fenced', epoch: 1, leaseMs: 60_000, fencedAt: 0, by: 'switch-1/fence' });
    riak.respondOnce((r) => r.path === FENCE && riak.requests.some((earlier) => earlier.method === 'PUT'), {
      status: 200,
      headers: { 'content-type': 'application/json', etag: '"f1"', 'x-riak-vclock': 'ZmVuY2U=' },
      body: fenced,
    });
    const error = await storeError(store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 2 } }));
    expect(error.code).toBe('fenced');
    expect(riak.requests.map((r) => `${r.method} ${r.path}`).slice(0, 4)).toEqual([
      `GET ${FENCE}`,
      `GET ${ITEM}`,
      `POST ${COUNTER}`,
      `PUT ${ITEM}`,
    ]);
    // The item is as it was, under a fresh number and one generation above the refused revision, so an
    // export that walked past its old number while the refused revision stood there carries it later,
    // and a copy that took the refused revision takes this one over it.
    const undone = await store.item('trip-1');
    expect(undone).toMatchObject({ data: first.item.data, deleted: false, rev: '3-000000000001' });
    expect(undone!.seq).toBe(first.item.seq + 2);
    const stores = riak.requests.filter((r) => r.method === 'PUT' && r.path === ITEM);
    expect(stores).toHaveLength(2);
    // Only over the refused revision: a write made over it meanwhile would stand.
    expect(stores[1]!.headers['if-match']).toMatch(/^"[^"]+"$/);
    // The undo's number is recorded before it is stored, for the commit of a hand-over to read.
    const mark = riak.requests.findIndex((r) => r.method === 'PUT' && r.path === `${T}.meta/keys/undone-through`);
    expect(riak.requests[mark]!.body).toBe(String(undone!.seq));
    expect(mark).toBeLessThan(riak.requests.indexOf(stores[1]!));
  });

  it('updates with the vector clock and ETag it read, and indexes every user who sees the change', async () => {
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 1 } });
    await store.share('trip-1', 'alice', 'bob, the "builder"/x');
    riak.clearRequests();
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 2 } });
    const read = riak.requests.find((r) => r.method === 'GET' && r.path === ITEM)!;
    expect(read).toBeDefined();
    const put = riak.requests.find((r) => r.method === 'PUT')!;
    // The GET that preceded this PUT answered this vclock and etag (the emulator checks them too).
    expect(put.headers['x-riak-vclock']).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(put.headers['if-match']).toMatch(/^"[^"]+"$/);
    expect(put.headers['if-none-match']).toBeUndefined();
    expect(put.headers['x-riak-index-feed_bin']).toBe(
      'alice/0000000000000003, bob%2C%20the%20%22builder%22%2Fx/0000000000000003',
    );
    expect(put.headers['x-riak-index-inbox_bin']).toBe('bob%2C%20the%20%22builder%22%2Fx');
    expect(riak.siblingCount('navcloud', 'trips', 'trip-1')).toBe(1);
  });

  it('revalidates a cached fence with If-None-Match and takes 304 as unchanged', async () => {
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: {} });
    const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'test', leaseMs: 60_000 });
    riak.clearRequests();
    expect((await storeError(store.put({ id: 'trip-2', owner: 'alice', type: 'trip', data: {} }))).code).toBe('fenced');
    expect((await store.fenceState()).mode).toBe('fenced');
    const fenceReads = riak.requests.filter((r) => r.path === FENCE);
    expect(fenceReads.length).toBe(2);
    expect(fenceReads[1]!.headers['if-none-match']).toMatch(/^"[^"]+"$/);
    // The refused write read nothing else; the fence state read the counter for its cursor.
    expect(riak.requests.filter((r) => r.path !== FENCE).map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET ${COUNTER}`,
    ]);
    await store.unfence({ expected: { epoch: fenced.epoch, mode: 'fenced' }, by: 'test' });
    await store.put({ id: 'trip-2', owner: 'alice', type: 'trip', data: {} });
  });

  it('reads the fence again when a primary did not answer in time, and is unavailable after four such answers', async () => {
    const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'test', leaseMs: 60_000 });
    // What a busy cluster answered under the demo's load.
    const unmet = { status: 503, headers: { 'content-type': 'text/plain' }, body: 'PR-value unsatisfied: 1/2\n' };
    for (let i = 0; i < 3; i++) riak.respondOnce((r) => r.path === FENCE, unmet);
    expect(await store.fenceState()).toMatchObject({ mode: 'fenced', epoch: fenced.epoch });
    for (let i = 0; i < 4; i++) riak.respondOnce((r) => r.path === FENCE, unmet);
    const refused = await storeError(store.fenceState());
    expect(refused.code).toBe('unavailable');
    expect(refused.message).toContain('PR-value unsatisfied: 1/2');
  });

  it('reads the export watermark again when a primary did not answer in time, and refuses the write after four such answers', async () => {
    const WATERMARK = `${T}.meta/keys/export-watermark`;
    const unmet = { status: 503, headers: { 'content-type': 'text/plain' }, body: 'PR-value unsatisfied: 1/2\n' };
    for (let i = 0; i < 3; i++) riak.respondOnce((r) => r.path === WATERMARK && r.method === 'GET', unmet);
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: {} });
    for (let i = 0; i < 4; i++) riak.respondOnce((r) => r.path === WATERMARK && r.method === 'GET', unmet);
    const refused = await storeError(store.put({ id: 'trip-2', owner: 'alice', type: 'trip', data: {} }));
    expect(refused.code).toBe('unavailable');
    expect(refused.message).toContain('PR-value unsatisfied: 1/2');
  });

  it('never acts on a fence below an epoch it read: it reads again, and after four such answers the fence is unavailable', async () => {
    const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'test', leaseMs: 60_000 });
    const forwarding = await store.forward({
      expected: { epoch: fenced.epoch, mode: 'fenced' },
      by: 'test',
      to: 'http://new',
      cursor: fenced.seq,
    });
    // What two empty replicas answered on the cluster (a node restarted after a crash): the fence not found.
    const notFound = { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found\n' };
    // A replica behind by one change: the fence open, as it was before this switch took it.
    const older = {
      status: 200,
      headers: { 'content-type': 'application/json', etag: '"old"' },
      body: JSON.stringify({ mode: 'open', epoch: forwarding.epoch - 1, by: 'test' }),
    };
    // One answer behind (a read racing a change in flight) is read again.
    riak.respondOnce((r) => r.path === FENCE, notFound);
    expect(await store.fenceState()).toMatchObject({ mode: 'forwarding', epoch: forwarding.epoch });
    for (let i = 0; i < 4; i++) riak.respondOnce((r) => r.path === FENCE, i % 2 ? older : notFound);
    const behind = await storeError(store.fenceState());
    expect(behind.code).toBe('unavailable');
    expect(behind.message).toContain(`4 times, below epoch ${forwarding.epoch} this node read before`);
    for (let i = 0; i < 4; i++) riak.respondOnce((r) => r.path === FENCE, older);
    const write = await storeError(store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: {} }));
    expect(write.message).toContain(`at epoch ${forwarding.epoch - 1} 4 times, below epoch ${forwarding.epoch}`);
    expect(await store.item('trip-1')).toBeUndefined();
    expect(await store.fenceState()).toMatchObject({ mode: 'forwarding', epoch: forwarding.epoch });
  });

  it('resolves fence siblings by epoch, and two changes that expected one epoch toward the safe side: forwarding, then fenced, then open', async () => {
    riak.addSibling('navcloud', 'trips.meta', 'fence', {
      mode: 'forwarding',
      epoch: 5,
      forwardTo: 'http://new:7070',
      by: 'switch-1/commit',
    });
    riak.addSibling('navcloud', 'trips.meta', 'fence', {
      mode: 'fenced',
      epoch: 5,
      leaseMs: 60_000,
      fencedAt: 0,
      by: 'switch-1/late-renewal',
    });
    riak.addSibling('navcloud', 'trips.meta', 'fence', { mode: 'open', epoch: 5, by: 'lapse' });
    riak.addSibling('navcloud', 'trips.meta', 'fence', {
      mode: 'fenced',
      epoch: 4,
      leaseMs: 60_000,
      fencedAt: 0,
      by: 'switch-1/fence',
    });
    expect(await store.fenceState()).toEqual({
      mode: 'forwarding',
      epoch: 5,
      forwardTo: 'http://new:7070',
      by: 'switch-1/commit',
      seq: 0,
    });
    // A change writes over the siblings (with their vector clock) and leaves one value.
    expect(await store.unfence({ expected: { epoch: 5, mode: 'forwarding' }, by: 'rollback-1/a' })).toEqual({
      mode: 'open',
      epoch: 6,
      by: 'rollback-1/a',
      seq: 0,
    });
    expect(riak.siblingCount('navcloud', 'trips.meta', 'fence')).toBe(1);
    riak.addSibling('navcloud', 'trips.meta', 'fence', {
      mode: 'fenced',
      epoch: 7,
      leaseMs: 60_000,
      fencedAt: 0,
      by: 'switch-2/fence',
    });
    expect(await store.fenceState()).toMatchObject({ mode: 'fenced', epoch: 7 });
    // A fence written before fencing tokens (a wall-clock lease, no epoch) reads as open.
    riak.clearRequests();
    const old = await openRiakStore(`${riak.url}?bucket=legacy`, { logger });
    riak.addSibling('navcloud', 'legacy.meta', 'fence', {
      mode: 'fenced',
      leaseExpiresAt: Date.now() + 60_000,
      at: Date.now(),
    });
    expect(await old.fenceState()).toEqual({ mode: 'open', epoch: 0, seq: 0 });
    await old.close();
  });

  it('refuses a change whose conditional write lost to another (412); when Riak kept both, the more restrictive is the fence', async () => {
    const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'switch-1/fence', leaseMs: 60_000 });
    // The commit's write is held; a renewal expecting the same epoch is stored first: the commit's If-Match no longer matches.
    const gate = riak.hold((r) => r.method === 'PUT' && r.path === FENCE && r.body.includes('forwarding'));
    const commit = store
      .forward({
        expected: { epoch: fenced.epoch, mode: 'fenced' },
        by: 'switch-1/commit',
        to: 'http://new:7070',
        cursor: 0,
      })
      .then(
        () => 'committed',
        (e: unknown) => (e as Error).name,
      );
    await gate.reached;
    await store.fence({ expected: { epoch: fenced.epoch, mode: 'fenced' }, by: 'switch-1/renew', leaseMs: 60_000 });
    gate.open();
    expect(await commit).toBe('FenceConflict');
    expect(await store.fenceState()).toMatchObject({ mode: 'fenced', epoch: fenced.epoch + 1, by: 'switch-1/renew' });
    // Riak stored both (the race this store cannot prevent): the more restrictive one is the fence, and a change expecting the other is refused.
    riak.addSibling('navcloud', 'trips.meta', 'fence', {
      mode: 'forwarding',
      epoch: fenced.epoch + 2,
      forwardTo: 'http://other:1',
      by: 'switch-9/commit',
    });
    const lost = await store
      .unfence({ expected: { epoch: fenced.epoch + 1, mode: 'fenced' }, by: 'switch-1/undo' })
      .catch((e: unknown) => e as Error);
    expect(lost).toMatchObject({ name: 'FenceConflict' });
    expect(await store.fenceState()).toMatchObject({ mode: 'forwarding', forwardTo: 'http://other:1' });
  });

  it('refuses the commit over a write the fence caught until a copy reaches its undo: its number was taken after the fence', async () => {
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 1 } });
    // A write reads the fence open, then waits before taking its number.
    const increment = riak.hold((r) => r.method === 'POST' && r.path === COUNTER);
    const caught = store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 2 } }).then(
      () => 'acknowledged',
      (e: StoreError) => e.code,
    );
    await increment.reached;
    const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'switch-1/fence', leaseMs: 60_000 });
    increment.open();
    expect(await caught).toBe('fenced');
    // Stored before it was refused, the write may have hidden v1 from a copy that ended at the fence's
    // cursor: its undo, past that cursor, puts v1 back, and the commit waits for a copy that reaches it.
    const undone = await store.highestSeq();
    expect(undone).toBe(fenced.seq + 2);
    const commit = (cursor: number) =>
      store.forward({
        expected: { epoch: fenced.epoch, mode: 'fenced' },
        by: 'switch-1/commit',
        to: 'http://new:7070',
        cursor,
      });
    await expect(commit(fenced.seq)).rejects.toThrow(
      `writes up to number ${undone} may have been acknowledged, past the copy's cursor ${fenced.seq}`,
    );
    expect(await commit(undone)).toMatchObject({ mode: 'forwarding', epoch: fenced.epoch + 1 });
  });

  it('records a lapse before a write, so a commit held in flight meanwhile finds the fence moved', async () => {
    let now = 0;
    const node = await openRiakStore(`${riak.url}?bucket=trips`, { logger, clock: () => now });
    try {
      const fenced = await store.fence({ expected: { epoch: 0, mode: 'open' }, by: 'switch-1/fence', leaseMs: 10_000 });
      expect((await node.fenceState()).mode).toBe('fenced');
      const gate = riak.hold((r) => r.method === 'PUT' && r.path === FENCE && r.body.includes('forwarding'));
      const commit = store
        .forward({
          expected: { epoch: fenced.epoch, mode: 'fenced' },
          by: 'switch-1/commit',
          to: 'http://new:7070',
          cursor: fenced.seq,
        })
        .then(
          () => 'committed',
          (e: unknown) => (e as Error).name,
        );
      await gate.reached;
      // The other node's lease lapses by its clock while the commit is in flight; it records that, then writes.
      now += 10_000;
      await node.put({ id: 'trip-9', owner: 'alice', type: 'trip', data: {} });
      gate.open();
      expect(await commit).toBe('FenceConflict');
      expect(await store.fenceState()).toMatchObject({ mode: 'open', epoch: fenced.epoch + 1, by: 'lapse' });
    } finally {
      await node.close();
    }
  });

  it('resolves siblings (300 multipart/mixed) by highest revision and writes the winner back under a new number', async () => {
    const { item } = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 'ours' } });
    const base = {
      id: 'trip-1',
      owner: 'alice',
      type: 'trip',
      deleted: false,
      shares: [],
      updatedAt: item.updatedAt,
      revoked: {},
    };
    riak.addSibling(
      'navcloud',
      'trips',
      'trip-1',
      { ...base, data: { v: 'newer' }, rev: '5-aaaaaaaaaaaa', seq: 1 },
      { seq_int: ['1'], feed_bin: ['alice/0000000000000001'] },
    );
    riak.addSibling(
      'navcloud',
      'trips',
      'trip-1',
      { ...base, data: { v: 'older' }, rev: '3-ffffffffffff', seq: 9 },
      { seq_int: ['9'] },
    );
    riak.clearRequests();
    const read = await store.get('trip-1', 'alice');
    expect(read).toMatchObject({ data: { v: 'newer' }, rev: '5-aaaaaaaaaaaa', seq: 2 });
    const [get, fence, counter, put] = riak.requests;
    expect(get).toMatchObject({ method: 'GET', path: ITEM, headers: { accept: 'multipart/mixed, application/json' } });
    // Written back only while not fenced.
    expect(fence).toMatchObject({ method: 'GET', path: FENCE });
    expect(counter).toMatchObject({ method: 'POST', path: COUNTER });
    expect(put).toMatchObject({ method: 'PUT', path: ITEM, headers: { 'x-riak-index-seq_int': '2' } });
    expect(put!.headers['x-riak-vclock']).toBeTruthy();
    expect(put!.headers['if-match']).toBeUndefined();
    expect(riak.siblingCount('navcloud', 'trips', 'trip-1')).toBe(1);
    expect((await store.changes('alice', 0, 10)).map((c) => [c.seq, c.rev])).toEqual([[2, '5-aaaaaaaaaaaa']]);
  });

  it('settles siblings a concurrent writer left when its own PUT answers 300', async () => {
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 1 } });
    const boundary = 'b0undary';
    const part = (value: object) =>
      `\r\n--${boundary}\r\nContent-Type: application/json\r\nEtag: "x"\r\n\r\n${JSON.stringify(value)}`;
    const base = {
      id: 'trip-1',
      owner: 'alice',
      type: 'trip',
      deleted: false,
      shares: [],
      updatedAt: 'now',
      revoked: {},
    };
    riak.respondOnce((r) => r.method === 'PUT', {
      status: 300,
      headers: { 'content-type': `multipart/mixed; boundary=${boundary}`, 'x-riak-vclock': 'c2libGluZ3M=' },
      body:
        part({ ...base, rev: '2-aaaa', seq: 2, data: { v: 2 } }) +
        part({ ...base, rev: '2-bbbb', seq: 3, data: { v: 'other' } }) +
        `\r\n--${boundary}\r\nX-Riak-Deleted: true\r\n\r\n\r\n--${boundary}--\r\n`,
    });
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 2 } });
    const puts = riak.requests.filter((r) => r.method === 'PUT');
    // create, the write answered 300, the winner written back with the 300's vclock; the emulator
    // never stored the canned siblings, so that vclock is stale to it: it answers 300 once more
    // (its own value beside the winner) and the store settles again, with the vclock it re-read.
    expect(puts).toHaveLength(4);
    expect(puts[2]!.headers['x-riak-vclock']).toBe('c2libGluZ3M=');
    expect(JSON.parse(puts[2]!.body)).toMatchObject({ rev: '2-bbbb', data: { v: 'other' } });
    expect(JSON.parse(puts[3]!.body)).toMatchObject({ rev: '2-bbbb', data: { v: 'other' } });
    expect(riak.siblingCount('navcloud', 'trips', 'trip-1')).toBe(1);
    expect(await store.get('trip-1', 'alice')).toMatchObject({ rev: '2-bbbb', data: { v: 'other' } });
  });

  it('answers 404 as absence: a missing item, a counter never written', async () => {
    expect(await store.get('nothing', 'alice')).toBeUndefined();
    expect(await store.highestSeq()).toBe(0);
    expect((await store.fenceState()).mode).toBe('open');
    expect(riak.requests.map((r) => r.path)).toEqual([`${T}/keys/nothing`, COUNTER, FENCE, COUNTER]);
  });

  it('reads a 404 that is not Riak\'s "not found" (a node restarting, its routes not loaded yet) as unavailable, not as absence', async () => {
    // What a node of the cluster answered for about 150 ms after `riakctl start-node`, before it served.
    const starting = {
      status: 404,
      headers: { 'content-type': 'text/html' },
      body: '<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD><BODY><H1>Not Found</H1>The requested document was not found on this server.<P><HR><ADDRESS>mochiweb+webmachine web server</ADDRESS></BODY></HTML>',
    };
    riak.respondOnce((r) => r.path === `${T}/keys/trip-1`, starting);
    expect(await storeError(store.get('trip-1', 'alice'))).toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('(404: <HTML>'),
    });
    riak.respondOnce((r) => r.path === FENCE, starting);
    expect((await storeError(store.fenceState())).code).toBe('unavailable');
    riak.respondOnce((r) => r.path === COUNTER, starting);
    expect((await storeError(store.highestSeq())).code).toBe('unavailable');
  });

  it('retries a write when Riak answers 412 (the item changed since it was read), and gives up after four attempts', async () => {
    await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 1 } });
    riak.respondOnce((r) => r.method === 'PUT', { status: 412, body: 'Precondition Failed' });
    const { item } = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 2 } });
    expect(riak.requests.filter((r) => r.method === 'PUT')).toHaveLength(3);
    expect((await store.get('trip-1', 'alice'))?.rev).toBe(item.rev);
    for (let i = 0; i < 4; i += 1) riak.respondOnce((r) => r.method === 'PUT', { status: 412 });
    const error = await storeError(store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { v: 3 } }));
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/kept changing during 4 write attempts/);
    expect((await store.get('trip-1', 'alice'))?.data).toEqual({ v: 2 });
  });

  it('accepts 204 for a store that returned no body', async () => {
    riak.respondOnce((r) => r.method === 'PUT', { status: 204 });
    const { item } = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: {} });
    expect(item.seq).toBe(1);
  });

  it('maps 503 and an unreachable Riak to unavailable, for reads and writes alike', async () => {
    riak.respondOnce((r) => r.path === ITEM, { status: 503, body: 'request timed out' });
    const read = await storeError(store.get('trip-1', 'alice'));
    expect(read.code).toBe('unavailable');
    expect(read.message).toMatch(/could not serve GET trip-1 with the replicas asked for \(request timed out\)/);
    riak.respondOnce((r) => r.path === ITEM, { status: 503, body: 'all vnodes busy' });
    expect((await storeError(store.get('trip-1', 'alice'))).message).toMatch(/503: all vnodes busy/);
    riak.respondOnce((r) => r.path === COUNTER, { status: 503 });
    expect((await storeError(store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: {} }))).code).toBe(
      'unavailable',
    );
    riak.respondOnce((r) => r.path.includes('/index/'), { status: 503 });
    expect((await storeError(store.changes('alice', 0, 10))).code).toBe('unavailable');
    expect(await store.get('trip-1', 'alice')).toBeUndefined();

    const nowhere = await openRiakStore(`http://127.0.0.1:${await freePort()}?timeout_ms=2000`, { logger });
    const refused = await storeError(nowhere.ping());
    expect(refused.code).toBe('unavailable');
    expect(refused.message).toMatch(/Riak did not answer GET \/ping: .*ECONNREFUSED/);
    await nowhere.close();
  });

  it('reports 400 as a configuration error, naming what Riak said', async () => {
    const badQuorum = await openRiakStore(`${riak.url}?r=5`, { logger });
    const error = await badQuorum.get('trip-1', 'alice').then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).not.toBeInstanceOf(StoreError);
    expect(error?.message).toMatch(/bad request .*quorum.*Specified r value 5 is invalid/);
    await badQuorum.close();
  });

  it('pages secondary index queries with max_results and continuation', async () => {
    const paged = new RiakStore(new RiakClient(parseRiakUrl(`${riak.url}?bucket=trips&export_grace_ms=1000`)), {
      logger,
      pageSize: 2,
    });
    for (let i = 0; i < 5; i += 1) await paged.put({ id: `t${i}`, owner: 'alice', type: 'trip', data: { i } });
    riak.clearRequests();
    const exported: string[] = [];
    const { through, items } = await paged.exportSince(1);
    for await (const item of items) exported.push(item.id);
    expect(exported).toEqual(['t1', 't2', 't3', 't4']);
    expect(through).toBe(5);
    const queries = riak.requests.filter((r) => r.path.includes('/index/'));
    expect(
      queries.map((r) => [r.path, r.query.max_results, r.query.return_terms, r.query.continuation !== undefined]),
    ).toEqual([
      [`${T}/index/seq_int/2/5`, '2', 'true', false],
      [`${T}/index/seq_int/2/5`, '2', 'true', true],
      [`${T}/index/seq_int/2/5`, '2', 'true', true],
    ]);
    riak.clearRequests();
    expect((await paged.changes('alice', 2, 10)).map((c) => c.id)).toEqual(['t2', 't3', 't4']);
    const feed = riak.requests.find((r) => r.path.includes('/index/feed_bin/'))!;
    expect(feed.path).toBe(
      `${T}/index/feed_bin/alice%2F0000000000000003/alice%2F${String(Number.MAX_SAFE_INTEGER).padStart(16, '0')}`,
    );
    expect(feed.query).toEqual({ max_results: '10', return_terms: 'true' });
    riak.clearRequests();
    expect(await paged.countItems()).toBe(5);
    // Counting reads keys only, in pages of 10,000 whatever the store's page: one query here.
    expect(riak.requests.map((r) => [r.path, r.query.max_results])).toEqual([[`${T}/index/live_int/1`, '10000']]);
    await paged.close();
  });

  it('reads the counter for a feed only when the cursor is above every number this node has seen', async () => {
    for (let i = 0; i < 3; i += 1) await store.put({ id: `t${i}`, owner: 'alice', type: 'trip', data: { i } });
    const counterReads = () => riak.requests.filter((r) => r.path === COUNTER && r.method === 'GET').length;
    riak.clearRequests();
    // Numbers this node handed out, and numbers of the changes a feed page carried.
    const first = await store.changes('alice', 0, 2);
    const rest = await store.changes('alice', first.at(-1)!.seq, 10);
    expect(rest.map((c) => c.id)).toEqual(['t2']);
    expect(counterReads()).toBe(0);
    // A cursor above them: the counter decides.
    expect((await storeError(store.changes('alice', rest[0]!.seq + 1, 10))).code).toBe('cursor-gone');
    expect(counterReads()).toBe(1);
    // Another node of the stack has seen none of these numbers: it reads the counter once, then knows.
    const other = await openRiakStore(`${riak.url}?bucket=trips`, { logger });
    riak.clearRequests();
    expect(await other.changes('alice', rest[0]!.seq, 10)).toEqual([]);
    expect(await other.changes('alice', rest[0]!.seq, 10)).toEqual([]);
    expect(counterReads()).toBe(1);
    await other.close();
  });

  it('keeps imported sequence numbers by raising the counter, and refuses a line without a cursor', async () => {
    const line = {
      kind: 'item' as const,
      id: 'imp',
      owner: 'alice',
      type: 'trip' as const,
      rev: '4-abc',
      deleted: false,
      data: { a: 1 },
      shares: ['bob'],
      cursor: encodeCursor(40),
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    expect(await store.import([line])).toEqual({ applied: 1, skipped: 0, seq: 40 });
    const increment = riak.requests.find((r) => r.path === COUNTER && r.method === 'POST')!;
    expect(increment.body).toBe('{"increment":40}');
    expect(await store.inbox('bob', 10)).toMatchObject([{ id: 'imp', seq: 40 }]);
    await expect(store.import([{ ...line, cursor: 'not-a-cursor' }])).rejects.toThrow(
      /import line for item imp has an invalid cursor/,
    );
  });
});

describe('a sync node on SYNC_STORE=riak:', () => {
  it('serves the sync API from Riak, and answers 503 while Riak does', async () => {
    const riak = await new RiakEmulator().start();
    const node = await startTestNode({ store: `riak:${riak.url}?bucket=api&w=quorum` });
    try {
      const alice = await node.token('alice');
      const stream = await openStream(node, alice);
      const created = await call(node, 'PUT', '/v1/items/trip-9', {
        token: alice,
        body: { type: 'trip', data: { to: 'Faro' } },
      });
      expect(created.status).toBe(201);
      const etag = created.headers.get('etag')!;
      expect(
        (
          await call(node, 'PUT', '/v1/items/trip-9', {
            token: alice,
            body: { type: 'trip', data: {} },
            headers: { 'if-match': '"1-000000000000"' },
          })
        ).status,
      ).toBe(412);
      expect((await call(node, 'GET', '/v1/items/trip-9', { token: alice })).json).toMatchObject({
        id: 'trip-9',
        owner: 'alice',
        type: 'trip',
        data: { to: 'Faro' },
      });
      expect((await call(node, 'GET', '/v1/items/trip-9', { token: await node.token('mallory') })).status).toBe(404);
      expect(await stream.next((m) => m.type === 'change' && m.id === 'trip-9')).toMatchObject({
        rev: etag.replaceAll('"', ''),
        data: { to: 'Faro' },
      });
      const feed = await call(node, 'GET', '/v1/changes', { token: alice });
      expect(feed.json.changes.map((c: { id: string }) => c.id)).toEqual(['trip-9']);
      expect(
        riak.requests.some(
          (r) => r.method === 'PUT' && r.path === '/types/navcloud/buckets/api/keys/trip-9' && r.query.pw === 'all',
        ),
      ).toBe(true);
      stream.close();

      riak.respondOnce((r) => r.path === '/ping', { status: 503 });
      expect((await call(node, 'GET', '/readyz')).status).toBe(503);
      riak.respondOnce((r) => r.path.endsWith('/keys/trip-9'), { status: 503, body: 'timeout' });
      const unavailable = await call(node, 'GET', '/v1/items/trip-9', { token: alice });
      expect(unavailable.status).toBe(503);
      expect(unavailable.json.error.code).toBe('store-unavailable');
      expect((await call(node, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await node.stop();
      await riak.stop();
    }
  });
});

describe('riak: store URL', () => {
  it('reads bucket type, bucket, counter type, quorum and timeout from the query string', () => {
    expect(
      parseRiakUrl(
        'http://10.0.0.5:8098/riak/?type=nc&bucket=b1&counter_type=ctr&r=quorum&pr=1&w=all&pw=2&dw=one&timeout_ms=500&export_grace_ms=750',
      ),
    ).toEqual({
      base: 'http://10.0.0.5:8098/riak',
      bucketType: 'nc',
      bucket: 'b1',
      counterType: 'ctr',
      quorum: { r: 'quorum', pr: '1', w: 'all', pw: '2', dw: 'one' },
      timeoutMs: 500,
      exportGraceMs: 750,
    });
    expect(parseRiakUrl('http://riak:8098')).toMatchObject({
      bucketType: 'navcloud',
      bucket: 'items',
      counterType: 'counters',
      quorum: {},
      timeoutMs: 10000,
      exportGraceMs: 1000,
    });
    // Stacks started before the grace had its name still start.
    expect(parseRiakUrl('http://riak:8098?write_deadline_ms=2000').exportGraceMs).toBe(2000);
  });

  it('names the parameter and what was expected when the URL is wrong', () => {
    expect(() => parseRiakUrl('riak-host:8098')).toThrow(/must be http:\/\/ or https:\/\//);
    expect(() => parseRiakUrl('http://h:8098?w=most')).toThrow(
      /parameter w="most" must be one, quorum, all, default or a replica count/,
    );
    expect(() => parseRiakUrl('http://h:8098?bukket=x')).toThrow(/unknown parameter "bukket"/);
    expect(() => parseRiakUrl('http://h:8098?bucket=a/b')).toThrow(/parameter bucket="a\/b" must be 1-64 characters/);
    expect(() => parseRiakUrl('http://h:8098?timeout_ms=5')).toThrow(
      /timeout_ms="5" must be an integer from 100 to 600000/,
    );
    expect(() => parseRiakUrl('http://h:8098?export_grace_ms=1e3')).toThrow(
      /export_grace_ms="1e3" must be an integer from 0 to 60000/,
    );
  });
});
