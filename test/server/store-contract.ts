/**
 * The behaviour every SyncStore adapter must have (server/store/port.ts), as a reusable suite:
 * `describeStoreContract('sqlite', async (clock) => ({ store, cleanup }))`. It only talks to the
 * port; the store measures the fence lease on `clock` (monotonic ms), which the suite moves by hand.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import { exportLineOf } from '../../server/wire.ts';
import {
  FenceConflict,
  StoreError,
  type Clock,
  type FenceMode,
  type FenceState,
  type ItemRevision,
  type StoreExport,
  type StoredItem,
  type SyncStore,
} from '../../server/store/port.ts';

export interface StoreUnderTest {
  store: SyncStore;
  cleanup(): Promise<void>;
}

/** The error `promise` rejects with, when it is one of `kind`; anything else fails the test. */
async function rejection<E extends Error>(promise: Promise<unknown>, kind: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof kind) return error;
    throw error;
  }
  throw new Error(`expected a ${kind.name}, the call succeeded`);
}

async function listRevisions(store: SyncStore): Promise<ItemRevision[]> {
  const items: ItemRevision[] = [];
  for await (const item of store.revisionsById()) items.push(item);
  return items;
}

const storeError = async (promise: Promise<unknown>): Promise<StoreError['code']> =>
  (await rejection(promise, StoreError)).code;
/** The fence as a refused change found it. */
const conflict = async (promise: Promise<unknown>): Promise<FenceState> =>
  (await rejection(promise, FenceConflict)).current;

async function collect<Item = StoredItem>(exported: Promise<StoreExport<Item>>): Promise<Item[]> {
  const items: Item[] = [];
  for await (const item of (await exported).items) items.push(item);
  return items;
}

export function describeStoreContract(name: string, makeStore: (clock: Clock) => Promise<StoreUnderTest>): void {
  describe(`SyncStore contract: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: SyncStore;
    const extra: StoreUnderTest[] = [];
    /** The nodes' monotonic clock: the fence lease is measured on it. */
    let now = 1_000;
    const clock: Clock = () => now;

    beforeEach(async () => {
      now = 1_000;
      subject = await makeStore(clock);
      store = subject.store;
    });

    afterEach(async () => {
      await subject.cleanup();
      for (const other of extra.splice(0)) await other.cleanup();
    });

    it('creates, reads and updates an item with increasing revisions and sequence numbers', async () => {
      const first = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { name: 'Lisbon' } });
      expect(first.created).toBe(true);
      expect(first.item).toMatchObject({
        id: 'trip-1',
        owner: 'alice',
        type: 'trip',
        data: { name: 'Lisbon' },
        deleted: false,
        shares: [],
      });
      const read = await store.get('trip-1', 'alice');
      expect(read).toMatchObject({ rev: first.item.rev, data: { name: 'Lisbon' }, seq: first.item.seq });
      const second = await store.put({ id: 'trip-1', owner: 'alice', type: 'trip', data: { name: 'Porto' } });
      expect(second.created).toBe(false);
      expect(second.item.rev).not.toBe(first.item.rev);
      expect(second.item.seq).toBeGreaterThan(first.item.seq);
      expect(await store.highestSeq()).toBe(second.item.seq);
      expect((await store.get('trip-1', 'alice'))?.data).toEqual({ name: 'Porto' });
    });

    it('enforces If-None-Match: * and If-Match preconditions', async () => {
      const { item } = await store.put({ id: 'p', owner: 'alice', type: 'place', data: { v: 1 }, ifNoneMatch: '*' });
      expect(
        await storeError(store.put({ id: 'p', owner: 'alice', type: 'place', data: { v: 2 }, ifNoneMatch: '*' })),
      ).toBe('precondition-failed');
      expect(
        await storeError(store.put({ id: 'p', owner: 'alice', type: 'place', data: { v: 2 }, ifMatch: '9-nope' })),
      ).toBe('precondition-failed');
      expect(
        await storeError(store.put({ id: 'missing', owner: 'alice', type: 'place', data: {}, ifMatch: item.rev })),
      ).toBe('precondition-failed');
      const updated = await store.put({ id: 'p', owner: 'alice', type: 'place', data: { v: 3 }, ifMatch: item.rev });
      expect(updated.item.data).toEqual({ v: 3 });
      expect(await storeError(store.delete('p', 'alice', item.rev))).toBe('precondition-failed');
      expect((await store.get('p', 'alice'))?.data).toEqual({ v: 3 });
    });

    it('keeps items of one user away from another', async () => {
      await store.put({ id: 'secret', owner: 'alice', type: 'route', data: { x: 1 } });
      expect(await store.get('secret', 'mallory')).toBeUndefined();
      expect(await storeError(store.put({ id: 'secret', owner: 'mallory', type: 'route', data: { x: 2 } }))).toBe(
        'not-found',
      );
      expect(await storeError(store.delete('secret', 'mallory'))).toBe('not-found');
      expect(await storeError(store.share('secret', 'mallory', 'mallory2'))).toBe('not-found');
      expect(await store.changes('mallory', 0, 100)).toEqual([]);
      expect((await store.get('secret', 'alice'))?.data).toEqual({ x: 1 });
    });

    it('leaves a tombstone on delete that feeds and exports carry', async () => {
      const { item } = await store.put({ id: 'gone', owner: 'alice', type: 'trip', data: { a: 1 } });
      const tombstone = await store.delete('gone', 'alice', item.rev);
      expect(tombstone).toMatchObject({ id: 'gone', deleted: true });
      expect(tombstone.data).toBeUndefined();
      expect(await store.get('gone', 'alice')).toBeUndefined();
      expect(await storeError(store.delete('gone', 'alice'))).toBe('not-found');
      const feed = await store.changes('alice', item.seq, 10);
      expect(feed).toHaveLength(1);
      expect(feed[0]).toMatchObject({ id: 'gone', deleted: true, seq: tombstone.seq });
      const exported = await collect(store.exportSince(0));
      expect(exported.map((i) => [i.id, i.deleted])).toEqual([['gone', true]]);
      expect(await store.countItems()).toBe(0);
      const again = await store.put({ id: 'gone', owner: 'alice', type: 'trip', data: { a: 2 }, ifNoneMatch: '*' });
      expect(again.created).toBe(true);
      expect(await storeError(store.put({ id: 'gone', owner: 'bob', type: 'trip', data: {} }))).toBe('not-found');
    });

    it('shares an item read-only, lists it in the inbox, and tells the sharee about a revocation', async () => {
      const { item } = await store.put({ id: 'shared', owner: 'alice', type: 'route', data: { km: 12 } });
      const shared = await store.share('shared', 'alice', 'bob');
      expect(shared.shares).toEqual(['bob']);
      expect(shared.seq).toBeGreaterThan(item.seq);
      expect((await store.get('shared', 'bob'))?.data).toEqual({ km: 12 });
      expect(await store.get('shared', 'carol')).toBeUndefined();
      expect(await storeError(store.put({ id: 'shared', owner: 'bob', type: 'route', data: {} }))).toBe('not-found');
      expect((await store.inbox('bob', 10)).map((i) => i.id)).toEqual(['shared']);
      const bobFeed = await store.changes('bob', 0, 10);
      expect(bobFeed).toHaveLength(1);
      expect(bobFeed[0]).toMatchObject({ id: 'shared', sharedBy: 'alice', deleted: false, data: { km: 12 } });
      const edited = await store.put({ id: 'shared', owner: 'alice', type: 'route', data: { km: 13 } });
      expect((await store.changes('bob', shared.seq, 10)).map((c) => [c.seq, c.data])).toEqual([
        [edited.item.seq, { km: 13 }],
      ]);
      const revoked = await store.unshare('shared', 'alice', 'bob');
      expect(revoked.shares).toEqual([]);
      expect(await store.get('shared', 'bob')).toBeUndefined();
      expect(await store.inbox('bob', 10)).toEqual([]);
      const after = await store.changes('bob', edited.item.seq, 10);
      expect(after).toHaveLength(1);
      expect(after[0]).toMatchObject({ id: 'shared', revoked: true, seq: revoked.seq });
      expect(after[0]?.data).toBeUndefined();
      await store.put({ id: 'shared', owner: 'alice', type: 'route', data: { km: 14 } });
      expect(await store.changes('bob', revoked.seq, 10)).toEqual([]);
    });

    it('pages the feed in sequence order and refuses a cursor beyond the store', async () => {
      for (let i = 0; i < 5; i++) await store.put({ id: `i${i}`, owner: 'alice', type: 'place', data: { i } });
      await store.put({ id: 'other', owner: 'bob', type: 'place', data: {} });
      const first = await store.changes('alice', 0, 3);
      expect(first.map((c) => c.id)).toEqual(['i0', 'i1', 'i2']);
      const rest = await store.changes('alice', first[2]!.seq, 3);
      expect(rest.map((c) => c.id)).toEqual(['i3', 'i4']);
      await store.put({ id: 'i1', owner: 'alice', type: 'place', data: { i: 'again' } });
      expect((await store.changes('alice', rest[1]!.seq, 10)).map((c) => c.id)).toEqual(['i1']);
      const highest = await store.highestSeq();
      expect(await storeError(store.changes('alice', highest + 1, 10))).toBe('cursor-gone');
      expect(await store.changes('alice', highest, 10)).toEqual([]);
    });

    it('ends a feed page after the change whose data passes maxBytes, shares and revocations included', async () => {
      const blob = 'x'.repeat(10_000);
      for (let i = 0; i < 4; i++) await store.put({ id: `big${i}`, owner: 'alice', type: 'trip', data: { blob } });
      await store.put({ id: 'bobs', owner: 'bob', type: 'trip', data: { blob } });
      await store.share('bobs', 'bob', 'alice');
      await store.put({ id: 'small', owner: 'alice', type: 'trip', data: {} });
      const sized = await store.changes('alice', 0, 100, 25_000);
      // 10 KB each: the third change is the one that passes 25 KB and ends the page.
      expect(sized.map((c) => c.id)).toEqual(['big0', 'big1', 'big2']);
      const rest = await store.changes('alice', sized[2]!.seq, 100, 25_000);
      expect(rest.map((c) => c.id)).toEqual(['big3', 'bobs', 'small']);
      await store.unshare('bobs', 'bob', 'alice');
      const revoked = await store.changes('alice', rest[2]!.seq, 100, 1);
      expect(revoked.map((c) => [c.id, c.revoked])).toEqual([['bobs', true]]);
      // A single change larger than the bound still makes a page: the feed never stalls.
      expect((await store.changes('alice', 0, 100, 1)).map((c) => c.id)).toEqual(['big0']);
    });

    it('ends an inbox page, newest first, after the item whose data passes maxBytes', async () => {
      const blob = 'y'.repeat(10_000);
      for (let i = 0; i < 4; i++) {
        await store.put({ id: `gift${i}`, owner: 'alice', type: 'place', data: { blob } });
        await store.share(`gift${i}`, 'alice', 'bob');
      }
      expect((await store.inbox('bob', 10, 15_000)).map((i) => i.id)).toEqual(['gift3', 'gift2']);
      expect((await store.inbox('bob', 10)).map((i) => i.id)).toEqual(['gift3', 'gift2', 'gift1', 'gift0']);
      expect((await store.inbox('bob', 3, 1)).map((i) => i.id)).toEqual(['gift3']);
    });

    it('exports since a point, and an import into an empty store keeps every item, revision and cursor', async () => {
      await store.put({ id: 'a', owner: 'alice', type: 'trip', data: { n: 1 } });
      await store.put({ id: 'b', owner: 'bob', type: 'route', data: { n: 2 } });
      await store.share('a', 'alice', 'bob');
      const middle = await store.highestSeq();
      await store.put({ id: 'c', owner: 'alice', type: 'place', data: { n: 3 } });
      await store.delete('b', 'bob');
      const all = await collect(store.exportSince(0));
      expect(all.map((i) => i.seq)).toEqual([...all.map((i) => i.seq)].sort((x, y) => x - y));
      expect((await collect(store.exportSince(middle))).map((i) => i.id)).toEqual(['c', 'b']);

      const target = await makeStore(clock);
      extra.push(target);
      const result = await target.store.import(all.map(exportLineOf));
      expect(result).toEqual({ applied: 3, skipped: 0, seq: await store.highestSeq() });
      expect(await collect(target.store.exportSince(0))).toEqual(all);
      // The data check's view, by id: what it copied is the revision it holds; the source copied nothing.
      const byId = [...all].sort((x, y) => (x.id < y.id ? -1 : 1)).map(({ id, rev, seq }) => ({ id, rev, seq }));
      expect(await listRevisions(store)).toEqual(byId);
      expect(await listRevisions(target.store)).toEqual(byId.map((item) => ({ ...item, copiedRev: item.rev })));

      for (const user of ['alice', 'bob']) {
        expect(await target.store.changes(user, 0, 100)).toEqual(await store.changes(user, 0, 100));
        expect(await target.store.changes(user, middle, 100)).toEqual(await store.changes(user, middle, 100));
      }
      expect(await target.store.import(all.map(exportLineOf))).toEqual({ applied: 0, skipped: 3, seq: result.seq });
      expect(await target.store.countItems()).toBe(2);
      // A local change keeps the copied revision: the check knows the change was made on top of the copy.
      const changed = await target.store.put({ id: 'c', owner: 'alice', type: 'place', data: { n: 4 } });
      expect((await listRevisions(target.store)).find((item) => item.id === 'c')).toEqual({
        id: 'c',
        rev: changed.item.rev,
        seq: changed.item.seq,
        copiedRev: byId.find((item) => item.id === 'c')!.rev,
      });
    });

    it("numbers every change after an import above the export's cursor, also one past the last item the source stored", async () => {
      await store.put({ id: 'a', owner: 'alice', type: 'trip', data: {} });
      await store.put({ id: 'b', owner: 'alice', type: 'trip', data: {} });
      const source = store.exportSince(0);
      const target = await makeStore(clock);
      extra.push(target);
      await target.store.import((await collect(source)).map(exportLineOf));
      // The source took two numbers it never stored (a write the fence refused, a writer that crashed): its cursor is past its last item.
      const cursor = (await source).through + 2;
      expect(await target.store.raiseNumbering(cursor)).toBe(cursor);
      expect(await target.store.raiseNumbering(cursor - 1)).toBe(cursor);
      const { item } = await target.store.put({ id: 'c', owner: 'alice', type: 'trip', data: {} });
      expect(item.seq).toBeGreaterThan(cursor);
      // A copy back since that cursor, as a rollback makes it, carries the new write.
      expect((await collect(target.store.exportSince(cursor))).map((i) => i.id)).toEqual(['c']);
    });

    it('applies only newer revisions on import and moves a local change whose sequence number an import claims', async () => {
      await store.put({ id: 'x', owner: 'alice', type: 'trip', data: { v: 1 } });
      await store.put({ id: 'y', owner: 'alice', type: 'trip', data: { v: 1 } });
      await store.put({ id: 'x', owner: 'alice', type: 'trip', data: { v: 2 } });
      const source = await collect(store.exportSince(0));

      const target = await makeStore(clock);
      extra.push(target);
      await target.store.put({ id: 'smoke-1', owner: 'smoke', type: 'place', data: {} });
      const local = await target.store.put({ id: 'smoke-2', owner: 'smoke', type: 'place', data: {} });
      expect(source.map((i) => i.seq)).toContain(local.item.seq);
      const result = await target.store.import(source.map(exportLineOf));
      expect(result.applied).toBe(2);
      expect((await target.store.changes('smoke', 0, 10)).map((c) => c.id)).toEqual(['smoke-1', 'smoke-2']);
      const moved = await target.store.get('smoke-2', 'smoke');
      expect(moved?.rev).toBe(local.item.rev);
      expect(moved!.seq).toBeGreaterThan(Math.max(...source.map((i) => i.seq)));
      expect(await target.store.highestSeq()).toBeGreaterThanOrEqual(moved!.seq);
      const y = source.find((i) => i.id === 'y')!;
      expect(await target.store.get('y', 'alice')).toEqual(y);

      const older = { ...exportLineOf(source.find((i) => i.id === 'x')!), rev: '1-000000000000', data: { v: 0 } };
      expect((await target.store.import([older])).skipped).toBe(1);
      expect((await target.store.get('x', 'alice'))?.data).toEqual({ v: 2 });
      // A revision of the same generation written apart (the copy's source missed this store's): the source is the writer.
      const apart = { ...exportLineOf(source.find((i) => i.id === 'x')!), rev: '2-000000000000', data: { v: 'apart' } };
      expect(apart.rev < (await target.store.get('x', 'alice'))!.rev).toBe(true);
      expect((await target.store.import([apart])).applied).toBe(1);
      expect((await target.store.get('x', 'alice'))?.data).toEqual({ v: 'apart' });
      const newer = {
        ...exportLineOf(source.find((i) => i.id === 'x')!),
        rev: '7-abc',
        data: { v: 7 },
        cursor: encodeCursor(result.seq + 5),
      };
      expect((await target.store.import([newer])).applied).toBe(1);
      expect(await target.store.get('x', 'alice')).toMatchObject({ rev: '7-abc', data: { v: 7 }, seq: result.seq + 5 });
      expect(await target.store.highestSeq()).toBe(result.seq + 5);
    });

    /** A change of the fence by `by`, expecting epoch and mode. */
    const expecting = (epoch: number, mode: FenceMode, by = 'switch-1/a') => ({ expected: { epoch, mode }, by });

    it('refuses every write while fenced, serves reads, and writes again after unfence', async () => {
      const { item } = await store.put({ id: 'f', owner: 'alice', type: 'trip', data: { v: 1 } });
      const fenced = await store.fence({ ...expecting(0, 'open'), leaseMs: 60_000 });
      const fencedAt = fenced.seq;
      expect(fenced).toEqual({
        mode: 'fenced',
        epoch: 1,
        leaseMs: 60_000,
        leaseLeftMs: 60_000,
        by: 'switch-1/a',
        seq: item.seq,
      });
      expect(await store.fenceState()).toEqual(fenced);
      expect(await storeError(store.put({ id: 'f', owner: 'alice', type: 'trip', data: { v: 2 } }))).toBe('fenced');
      expect(await storeError(store.put({ id: 'new', owner: 'alice', type: 'trip', data: {} }))).toBe('fenced');
      expect(await storeError(store.delete('f', 'alice'))).toBe('fenced');
      expect(await storeError(store.share('f', 'alice', 'bob'))).toBe('fenced');
      expect(await storeError(store.unshare('f', 'alice', 'bob'))).toBe('fenced');
      expect((await store.get('f', 'alice'))?.data).toEqual({ v: 1 });
      expect(await store.changes('alice', 0, 10)).toHaveLength(1);
      expect(await store.highestSeq()).toBe(fencedAt);
      expect(await store.unfence(expecting(1, 'fenced', 'switch-1/b'))).toEqual({
        mode: 'open',
        epoch: 2,
        by: 'switch-1/b',
        seq: fencedAt,
      });
      expect(await store.fenceState()).toEqual({ mode: 'open', epoch: 2, by: 'switch-1/b', seq: fencedAt });
      await store.put({ id: 'f', owner: 'alice', type: 'trip', data: { v: 2 } });
      expect((await store.get('f', 'alice'))?.data).toEqual({ v: 2 });
    });

    it('lets a lease lapse by the clock of the node that saw it; the first write after records the lapse, and changes that expected the fence are refused', async () => {
      await store.put({ id: 'l', owner: 'alice', type: 'trip', data: { v: 1 } });
      await store.fence({ ...expecting(0, 'open'), leaseMs: 30_000 });
      now += 29_999;
      expect(await storeError(store.put({ id: 'l', owner: 'alice', type: 'trip', data: { v: 2 } }))).toBe('fenced');
      now += 1;
      expect(await store.fenceState()).toMatchObject({ mode: 'open', epoch: 1, seq: 1 });
      const { item } = await store.put({ id: 'l', owner: 'alice', type: 'trip', data: { v: 3 } });
      expect(item.seq).toBe(2);
      // The write recorded the lapse: a late renewal or forward still expecting epoch 1 changes nothing.
      expect(await store.fenceState()).toEqual({ mode: 'open', epoch: 2, by: 'lapse', seq: 2 });
      expect(await conflict(store.fence({ ...expecting(1, 'fenced'), leaseMs: 30_000 }))).toMatchObject({
        mode: 'open',
        epoch: 2,
      });
      expect(
        await conflict(store.forward({ ...expecting(1, 'fenced'), to: 'http://new.example:8080', cursor: 2 })),
      ).toMatchObject({ mode: 'open', epoch: 2 });
      expect((await store.fenceState()).mode).toBe('open');
    });

    it('renews only a live fence of the epoch expected, the lease starting again', async () => {
      await store.fence({ ...expecting(0, 'open'), leaseMs: 10_000 });
      now += 8_000;
      expect(await store.fence({ ...expecting(1, 'fenced'), leaseMs: 10_000 })).toMatchObject({
        mode: 'fenced',
        epoch: 2,
        leaseLeftMs: 10_000,
      });
      now += 8_000;
      expect(await storeError(store.put({ id: 'r', owner: 'alice', type: 'trip', data: {} }))).toBe('fenced');
      now += 2_000;
      // Lapsed here: not renewed any more, only taken anew by a change that expects it open.
      expect(await conflict(store.fence({ ...expecting(2, 'fenced'), leaseMs: 10_000 }))).toMatchObject({
        mode: 'open',
        epoch: 2,
      });
      expect(await store.fence({ ...expecting(2, 'open', 'switch-2/a'), leaseMs: 10_000 })).toMatchObject({
        mode: 'fenced',
        epoch: 3,
        by: 'switch-2/a',
      });
    });

    it('refuses a change that expects another epoch or mode, and changes nothing: a late or repeated request, a run that is over', async () => {
      await store.fence({ ...expecting(0, 'open', 'switch-1/fence'), leaseMs: 60_000 });
      await store.fence({ ...expecting(1, 'fenced', 'switch-1/renew'), leaseMs: 60_000 });
      const before = await store.fenceState();
      // A renewal and an unfence sent on epoch 1, arriving after the fence moved on to epoch 2.
      expect(
        await conflict(store.fence({ ...expecting(1, 'fenced', 'switch-1/copy'), leaseMs: 60_000 })),
      ).toMatchObject({ epoch: 2, mode: 'fenced' });
      expect(await conflict(store.unfence(expecting(1, 'fenced', 'switch-1/undo')))).toMatchObject({
        epoch: 2,
        mode: 'fenced',
      });
      // A fence taken by a change that expects the store open, and a forward from an open store.
      expect(await conflict(store.fence({ ...expecting(2, 'open', 'switch-2/fence'), leaseMs: 60_000 }))).toMatchObject(
        { epoch: 2 },
      );
      expect(await store.fenceState()).toEqual(before);
      await store.unfence(expecting(2, 'fenced', 'switch-1/undo'));
      expect(
        await conflict(
          store.forward({ ...expecting(3, 'open', 'switch-1/commit'), to: 'http://new.example:8080', cursor: 0 }),
        ),
      ).toMatchObject({ epoch: 3, mode: 'open' });
    });

    it('answers a retry as done: a change expecting an older epoch goes on when every change since was its own', async () => {
      await store.fence({ ...expecting(0, 'open', 'switch-1/7'), leaseMs: 60_000 });
      // The answer was lost; the retry sends the same change again.
      expect(await store.fence({ ...expecting(0, 'open', 'switch-1/7'), leaseMs: 60_000 })).toMatchObject({
        mode: 'fenced',
        epoch: 2,
        by: 'switch-1/7',
      });
      const forwarding = await store.forward({
        ...expecting(2, 'fenced', 'switch-1/9'),
        to: 'http://new.example:8080',
        cursor: 0,
      });
      expect(
        await store.forward({ ...expecting(2, 'fenced', 'switch-1/9'), to: 'http://new.example:8080', cursor: 0 }),
      ).toEqual(forwarding);
      // Another step expecting epoch 2 is not that step.
      expect(
        await conflict(
          store.forward({ ...expecting(2, 'fenced', 'switch-1/10'), to: 'http://new.example:8080', cursor: 0 }),
        ),
      ).toEqual(forwarding);
    });

    it('forwards only from a live fence with nothing acknowledged past the cursor, keeps forwarding through time, and unfences from it', async () => {
      await store.put({ id: 'w', owner: 'alice', type: 'trip', data: {} });
      expect(
        await conflict(store.forward({ ...expecting(0, 'open'), to: 'http://new.example:8080', cursor: 1 })),
      ).toMatchObject({ mode: 'open' });
      const fenced = await store.fence({ ...expecting(0, 'open'), leaseMs: 5_000 });
      expect(
        await conflict(
          store.forward({ ...expecting(1, 'fenced'), to: 'http://new.example:8080', cursor: fenced.seq - 1 }),
        ),
      ).toMatchObject({ mode: 'fenced', epoch: 1 });
      const forwarding = await store.forward({
        ...expecting(1, 'fenced'),
        to: 'http://new.example:8080',
        cursor: fenced.seq,
      });
      expect(forwarding).toEqual({
        mode: 'forwarding',
        epoch: 2,
        forwardTo: 'http://new.example:8080',
        by: 'switch-1/a',
        seq: 1,
      });
      // The lease no longer applies: forwarding is the committed switch.
      now += 3_600_000;
      expect(await store.fenceState()).toEqual(forwarding);
      expect(await conflict(store.fence({ ...expecting(2, 'forwarding'), leaseMs: 5_000 }))).toEqual(forwarding);
      expect(await storeError(store.put({ id: 'w', owner: 'alice', type: 'trip', data: { v: 2 } }))).toBe('fenced');
      expect(await storeError(store.delete('w', 'alice'))).toBe('fenced');
      expect((await store.get('w', 'alice'))?.data).toEqual({});
      expect(await store.unfence(expecting(2, 'forwarding', 'rollback-1/a'))).toEqual({
        mode: 'open',
        epoch: 3,
        by: 'rollback-1/a',
        seq: 1,
      });
      await store.put({ id: 'w', owner: 'alice', type: 'trip', data: { v: 2 } });
    });

    it('answers ping and counts live items', async () => {
      await store.ping();
      await store.put({ id: 'one', owner: 'u', type: 'place', data: {} });
      await store.put({ id: 'two', owner: 'u', type: 'place', data: {} });
      expect(await store.countItems()).toBe(2);
    });
  });
}
