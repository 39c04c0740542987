/**
 * compareStacks against two real stacks (each its own SQLite file, real sockets): a copy made by
 * export and import, then changes on either side after the copy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { compareActivities } from '../../activities/compare.ts';
import type { EnvironmentContext } from '../../activities/deps.ts';
import { createAdminClient, type StackAdmin } from '../../src/navcloud/admin-client.ts';
import { SyncClient } from '../../src/navcloud/client.ts';
import { signToken } from '../../src/navcloud/token.ts';
import { compareStacks } from '../../src/navcloud/compare.ts';
import { encodeCursor } from '../../src/navcloud/cursor.ts';
import { fakeEnvironment } from '../support/fake-ports.ts';
import type { ExportItemLine } from '../../src/navcloud/protocol.ts';
import { JWT_SECRET, startTestStack, type TestStack } from './stack.ts';

const stacks: TestStack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((stack) => stack.close()));
});

async function twoStacks(): Promise<{ old: TestStack; fresh: TestStack; oldAdmin: StackAdmin; newAdmin: StackAdmin }> {
  const old = await startTestStack({ nodes: 1 });
  const fresh = await startTestStack({ nodes: 1 });
  stacks.push(old, fresh);
  return {
    old,
    fresh,
    oldAdmin: createAdminClient({ adminUrl: old.outputs.adminUrl, jwtSecret: JWT_SECRET }),
    newAdmin: createAdminClient({ adminUrl: fresh.outputs.adminUrl, jwtSecret: JWT_SECRET }),
  };
}

const as = async (user: string, stack: TestStack) =>
  new SyncClient({ baseUrl: stack.outputs.endpoint, token: await signToken(JWT_SECRET, user), timeoutMs: 5000 });

/** Copies everything `from` has into `to`, as restore and catch-up do. */
async function copy(from: StackAdmin, to: StackAdmin): Promise<void> {
  let batch: ExportItemLine[] = [];
  for await (const line of from.exportSince(undefined)) {
    if (line.kind === 'item') batch.push(line);
    if (batch.length >= 500 || (line.kind === 'end' && batch.length)) {
      await to.importLines(batch);
      batch = [];
    }
  }
}

async function seed(stack: TestStack, count: number, owner = 'compare-owner'): Promise<Map<string, string>> {
  const client = await as(owner, stack);
  const revs = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const put = await client.putItem(`cmp-${i}`, { type: 'trip', data: { i } });
    if (!put.ok || !put.etag) throw new Error(`seed write answered ${put.status}`);
    revs.set(`cmp-${i}`, put.etag);
  }
  return revs;
}

describe('compareStacks', () => {
  it('finds no mismatch when the new stack has every item at the same or a newer revision', async () => {
    const { old, fresh, oldAdmin, newAdmin } = await twoStacks();
    const revs = await seed(old, 60);
    await (await as('compare-owner', old)).deleteItem('cmp-5');
    await (await as('compare-owner', old)).share('cmp-6', 'compare-reader');
    await copy(oldAdmin, newAdmin);
    // Changed on the new stack after the copy (forwarded writes): newer revisions at later cursors.
    const onNew = await as('compare-owner', fresh);
    for (const id of ['cmp-0', 'cmp-30', 'cmp-59'])
      expect((await onNew.putItem(id, { type: 'trip', data: { after: true } }, { ifMatch: revs.get(id) })).ok).toBe(
        true,
      );
    await onNew.deleteItem('cmp-31');
    // Items only the new stack has are not the old stack's business.
    await (await as('someone-new', fresh)).putItem('new-only', { type: 'place', data: {} });

    const result = await compareStacks(oldAdmin, newAdmin);
    expect(result).toEqual({ itemsCompared: 60, mismatches: 0, firstMismatches: [] });
  });

  it('names items the new stack lacks or holds at an older revision', async () => {
    const { old, fresh, oldAdmin, newAdmin } = await twoStacks();
    const revs = await seed(old, 40);
    await copy(oldAdmin, newAdmin);
    await (
      await as('compare-owner', fresh)
    ).putItem('cmp-3', { type: 'trip', data: { after: true } }, { ifMatch: revs.get('cmp-3') });
    // Planted: writes the old stack took after the copy, which never reached the new one.
    const onOld = await as('compare-owner', old);
    const lateRev = await onOld.putItem(
      'cmp-7',
      { type: 'trip', data: { late: true } },
      { ifMatch: revs.get('cmp-7') },
    );
    await onOld.putItem('late-only', { type: 'route', data: {} });
    await onOld.deleteItem('cmp-8');
    // Both stacks changed cmp-9 after the copy; the new stack's change is later but of an older generation.
    const onNew = await as('compare-owner', fresh);
    for (let i = 0; i < 10; i++) await onNew.putItem(`filler-${i}`, { type: 'trip', data: {} });
    const newRev9 = await onNew.putItem('cmp-9', { type: 'trip', data: { on: 'new' } }, { ifMatch: revs.get('cmp-9') });
    const second = await onOld.putItem('cmp-9', { type: 'trip', data: { on: 'old' } }, { ifMatch: revs.get('cmp-9') });
    const third = await onOld.putItem(
      'cmp-9',
      { type: 'trip', data: { on: 'old' } },
      { ifMatch: second.ok ? second.etag : '' },
    );

    const result = await compareStacks(oldAdmin, newAdmin, { firstN: 2 });
    expect(result.itemsCompared).toBe(41);
    expect(result.mismatches).toBe(4);
    expect(result.firstMismatches).toHaveLength(2);
    const all = await compareStacks(oldAdmin, newAdmin);
    expect(all.firstMismatches).toEqual(
      expect.arrayContaining([
        { id: 'cmp-7', problem: 'older', oldRev: lateRev.ok ? lateRev.etag : '', newRev: revs.get('cmp-7') },
        { id: 'cmp-9', problem: 'older', oldRev: third.ok ? third.etag : '', newRev: newRev9.ok ? newRev9.etag : '' },
        { id: 'late-only', problem: 'missing', oldRev: expect.stringMatching(/^1-/) },
        { id: 'cmp-8', problem: 'older', oldRev: expect.stringMatching(/^2-/), newRev: revs.get('cmp-8') },
      ]),
    );
  });

  it('finds a write the copy missed although the new stack then wrote the item to a higher generation', async () => {
    const { old, fresh, oldAdmin, newAdmin } = await twoStacks();
    const revs = await seed(old, 6);
    await copy(oldAdmin, newAdmin);
    const onOld = await as('compare-owner', old);
    const onNew = await as('compare-owner', fresh);
    // cmp-1: the old stack's write after the copy never reached the new one, whose clients then changed
    // their older copy twice: a higher generation, but not a change of the old revision.
    const lost = await onOld.putItem('cmp-1', { type: 'trip', data: { on: 'old' } }, { ifMatch: revs.get('cmp-1') });
    const first = await onNew.putItem('cmp-1', { type: 'trip', data: { on: 'new' } }, { ifMatch: revs.get('cmp-1') });
    const second = await onNew.putItem(
      'cmp-1',
      { type: 'trip', data: { on: 'new', again: true } },
      { ifMatch: first.ok ? first.etag : '' },
    );
    // cmp-2: the same generation on both sides, different writes.
    const oldTwo = await onOld.putItem('cmp-2', { type: 'trip', data: { on: 'old' } }, { ifMatch: revs.get('cmp-2') });
    const newTwo = await onNew.putItem('cmp-2', { type: 'trip', data: { on: 'new' } }, { ifMatch: revs.get('cmp-2') });
    // cmp-3: copied, then changed twice on the new stack: a change of the old revision, accepted.
    const three = await onNew.putItem('cmp-3', { type: 'trip', data: { on: 'new' } }, { ifMatch: revs.get('cmp-3') });
    await onNew.putItem(
      'cmp-3',
      { type: 'trip', data: { on: 'new', again: true } },
      { ifMatch: three.ok ? three.etag : '' },
    );

    const result = await compareStacks(oldAdmin, newAdmin);
    expect(result).toEqual({
      itemsCompared: 6,
      mismatches: 2,
      firstMismatches: [
        { id: 'cmp-1', problem: 'diverged', oldRev: lost.ok ? lost.etag : '', newRev: second.ok ? second.etag : '' },
        {
          id: 'cmp-2',
          problem: 'diverged',
          oldRev: oldTwo.ok ? oldTwo.etag : '',
          newRev: newTwo.ok ? newTwo.etag : '',
        },
      ],
    });
  });

  it("compares by id: two items at one number (as Riak's counter can hand out) are compared like any others", async () => {
    const listing = (items: Array<[string, string, number]>): StackAdmin =>
      ({
        async *revisionsById() {
          for (const [id, rev, seq] of items)
            yield { kind: 'revision' as const, id, rev, cursor: encodeCursor(seq), copiedRev: rev };
          yield { kind: 'end' as const, cursor: encodeCursor(9), items: items.length };
        },
      }) as unknown as StackAdmin;
    const items: Array<[string, string, number]> = [
      ['a', '1-x', 5],
      ['b', '1-y', 5],
      ['c', '2-z', 7],
    ];
    expect(await compareStacks(listing(items), listing(items))).toEqual({
      itemsCompared: 3,
      mismatches: 0,
      firstMismatches: [],
    });
    await expect(
      compareStacks(
        listing([
          ['b', '1-y', 5],
          ['a', '1-x', 5],
        ]),
        listing(items),
      ),
    ).rejects.toThrow(/the old stack listed item a after b: not in id order/);
  });

  it('compares no faster than itemsPerSecond, so that both stacks keep serving clients', async () => {
    const { oldAdmin, newAdmin } = await twoStacks();
    const updatedAt = new Date().toISOString();
    await oldAdmin.importLines(
      Array.from({ length: 1500 }, (_, i): ExportItemLine => ({
        kind: 'item',
        id: `paced-${i}`,
        owner: 'pacer',
        type: 'trip',
        rev: '1-a',
        deleted: false,
        shares: [],
        cursor: encodeCursor(i + 1),
        updatedAt,
        data: { i },
      })),
    );
    await copy(oldAdmin, newAdmin);
    const started = Date.now();
    const reachedAfterMs = new Map<number, number>();
    const result = await compareStacks(oldAdmin, newAdmin, {
      itemsPerSecond: 2000,
      progressEvery: 500,
      onProgress: (compared) => reachedAfterMs.set(compared, Date.now() - started),
    });
    expect(result).toMatchObject({ itemsCompared: 1500, mismatches: 0 });
    // At 2,000 items/s, item 1,000 is due at 500 ms and item 1,500 at 750 ms, however fast the stacks are.
    expect(reachedAfterMs.get(1000)).toBeGreaterThanOrEqual(495);
    expect(reachedAfterMs.get(1500)).toBeGreaterThanOrEqual(745);
  });

  it("runs as the compareStacks activity with the environment's admin clients", async () => {
    const { old, fresh, oldAdmin, newAdmin } = await twoStacks();
    await seed(old, 12);
    await copy(oldAdmin, newAdmin);
    await (await as('compare-owner', old)).putItem('planted', { type: 'trip', data: {} });
    const context = async () =>
      ({
        env: fakeEnvironment('test'),
        admin: (adminUrl: string) => createAdminClient({ adminUrl, jwtSecret: JWT_SECRET }),
      }) as unknown as EnvironmentContext;
    const activity = compareActivities(context).compareStacks;
    const result = await new MockActivityEnvironment().run(activity, {
      env: 'test',
      fromAdminUrl: old.outputs.adminUrl,
      toAdminUrl: fresh.outputs.adminUrl,
    });
    expect(result).toMatchObject({
      itemsCompared: 13,
      mismatches: 1,
      firstMismatches: [{ id: 'planted', problem: 'missing' }],
    });
  });
});
