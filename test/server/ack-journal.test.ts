/**
 * SYNC_ACK_JOURNAL (server/store/ack-journal.ts): every write a node acknowledged is one line of its
 * journal, written before the answer; refused writes are not; the file stops at its bound.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../server/config.ts';
import { AckJournal } from '../../server/store/ack-journal.ts';
import type { AckJournalLine } from '../../src/navcloud/protocol.ts';
import { tempDir } from '../support/temp-dir.ts';
import { call, changeFenceAsRead, SECRET, startTestNode } from './helpers.ts';

const lines = (file: string): AckJournalLine[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AckJournalLine);

describe('the acknowledgment journal', () => {
  it('records each acknowledged put, share, unshare and delete with its revision, and no refused write', async () => {
    const dir = tempDir('ack-journal-');
    const journal = join(dir.path, 'node.acks');
    const node = await startTestNode({ ackJournal: journal, holdMs: 0 }, dir);
    try {
      const alice = await node.token('alice');
      const before = Date.now();
      const created = await call(node, 'PUT', '/v1/items/i1', { token: alice, body: { type: 'trip', data: { n: 1 } } });
      expect(created.status).toBe(201);
      // A failed precondition changes nothing: not acknowledged, not recorded.
      expect(
        (
          await call(node, 'PUT', '/v1/items/i1', {
            token: alice,
            body: { type: 'trip', data: { n: 2 } },
            headers: { 'if-match': '"0-nope"' },
          })
        ).status,
      ).toBe(412);
      const shared = await call(node, 'POST', '/v1/items/i1/shares', { token: alice, body: { to: 'bob' } });
      const unshared = await call(node, 'DELETE', '/v1/items/i1/shares/bob', { token: alice });
      expect((await call(node, 'DELETE', '/v1/items/i1', { token: alice })).status).toBe(204);
      // Fenced with no hold: refused at once, and not recorded.
      expect(
        (await changeFenceAsRead(node, await node.token('ops', true), '/admin/fence', { leaseSeconds: 30 })).status,
      ).toBe(200);
      await new Promise((wait) => setTimeout(wait, 100));
      expect((await call(node, 'PUT', '/v1/items/i2', { token: alice, body: { type: 'trip', data: {} } })).status).toBe(
        503,
      );

      const recorded = lines(journal);
      expect(recorded.map((l) => l.kind === 'ack' && [l.op, l.id, l.owner])).toEqual([
        ['put', 'i1', 'alice'],
        ['share', 'i1', 'alice'],
        ['unshare', 'i1', 'alice'],
        ['delete', 'i1', 'alice'],
      ]);
      const acks = recorded.filter((l): l is Extract<AckJournalLine, { kind: 'ack' }> => l.kind === 'ack');
      expect(`"${acks[0]!.rev}"`).toBe(created.headers.get('etag'));
      expect(`"${acks[1]!.rev}"`).toBe(shared.headers.get('etag'));
      expect(`"${acks[2]!.rev}"`).toBe(unshared.headers.get('etag'));
      for (const [i, ack] of acks.entries()) {
        expect(ack.from).toBeGreaterThanOrEqual(before);
        expect(ack.to).toBeGreaterThanOrEqual(ack.from);
        if (i > 0) expect(ack.seq).toBeGreaterThan(acks[i - 1]!.seq);
      }
    } finally {
      await node.stop();
    }
  });

  it('appends after a restart and stops at its bound with one truncated line', () => {
    const dir = tempDir('ack-journal-');
    try {
      const file = join(dir.path, 'node.acks');
      const ack = (id: string): AckJournalLine => ({
        kind: 'ack',
        op: 'put',
        id,
        owner: 'alice',
        rev: '1-a',
        seq: 1,
        from: 1,
        to: 2,
      });
      const first = AckJournal.open(file, 400);
      first.record(ack('a'));
      first.close();
      const again = AckJournal.open(file, 400);
      for (const id of ['b', 'c', 'd', 'e', 'f']) again.record(ack(id));
      again.close();
      const recorded = lines(file);
      expect(recorded.filter((l) => l.kind === 'ack').map((l) => l.kind === 'ack' && l.id)).toEqual([
        'a',
        'b',
        'c',
        'd',
      ]);
      expect(recorded.at(-1)).toMatchObject({ kind: 'truncated' });
      expect(readFileSync(file, 'utf8').length).toBeLessThanOrEqual(400 + 60);
    } finally {
      dir.remove();
    }
  });

  it('is off unless SYNC_ACK_JOURNAL names a file', () => {
    expect(configFromEnv({ SYNC_JWT_SECRET: SECRET }).ackJournal).toBeUndefined();
    expect(configFromEnv({ SYNC_JWT_SECRET: SECRET, SYNC_ACK_JOURNAL: '/tmp/x.acks' }).ackJournal).toBe('/tmp/x.acks');
  });
});
