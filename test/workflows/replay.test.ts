/**
 * Replays the saved histories of finished switches, rollbacks, backups and nights against today's
 * workflow code: a change that breaks determinism fails here. Every generation is replayed (the
 * histories at the top of test/fixtures/histories are the first, each `vN/` directory a later
 * one), so a switch the previous release started finishes on the new code (an upgrade with runs
 * in flight). Record a new generation with test/fixtures/histories/regenerate.ts; never rewrite one.
 */
import { beforeAll, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromFixture, quietRuntime, workflowBundle } from './harness.ts';

const dir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const generations = [
  '',
  ...readdirSync(dir)
    .filter((d) => /^v\d+$/.test(d) && statSync(join(dir, d)).isDirectory())
    .sort(),
];
const fixtures = generations.flatMap((generation) =>
  readdirSync(join(dir, generation))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(generation, f)),
);

beforeAll(() => quietRuntime());

it(
  'has the fixtures of every generation: the first, the fence-lease protocol (v2) with rehearsals, rollback following ' +
    'forwards (v3), notifications and data verification (v5), fencing tokens (v6), rollback by stack roles (v7), settling caught writes before the fenced copy and a commit refused as behind (v8)',
  () => {
    const first = [
      'switch-switched.json',
      'switch-failed-smoke.json',
      'switch-rolled-back.json',
      'nightly-refresh-switched.json',
      'nightly-refresh-skipped.json',
    ];
    const later = ['v2', 'v3', 'v5', 'v6', 'v7', 'v8'].flatMap((generation) =>
      [...first, 'switch-dns-refused.json', 'rollback.json'].map((f) => join(generation, f)),
    );
    const rehearsals = ['v2', 'v5', 'v6', 'v7', 'v8'].flatMap((generation) =>
      ['rehearsal-rehearsed.json', 'rehearsal-failed-smoke.json', 'nightly-refresh-rehearsed.json'].map((f) =>
        join(generation, f),
      ),
    );
    const verification = [
      'v5/switch-data-mismatch.json',
      'v6/switch-data-mismatch.json',
      'v6/switch-approved.json',
      'v7/switch-data-mismatch.json',
      'v8/switch-data-mismatch.json',
      'v8/switch-copy-behind.json',
    ];
    expect(fixtures).toEqual(expect.arrayContaining([...first, ...later, ...rehearsals, ...verification]));
  },
);

it('replays every saved history of every generation without a nondeterminism error', async () => {
  const histories = fixtures.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: historyFromFixture(readFileSync(join(dir, file), 'utf8')),
  }));
  const replayed: string[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: await workflowBundle(), replayName: 'switchyard-fixtures' },
    histories,
  )) {
    expect(result.error, `${result.workflowId}: ${result.error?.message}`).toBeUndefined();
    replayed.push(result.workflowId);
  }
  expect(replayed.sort()).toEqual(histories.map((h) => h.workflowId).sort());
});
