/**
 * Replays the saved histories of finished switches, rollbacks, backups and nights against today's
 * workflow code: a change that breaks determinism fails here. Regenerate the fixtures only for
 * an intended change (test/fixtures/histories/regenerate.ts), with patching if switches may be running.
 */
import { beforeAll, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromFixture, quietRuntime, workflowBundle } from './harness.ts';

const dir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

beforeAll(() => quietRuntime());

it('has the fixtures of a switch that succeeded, failed with compensation, and rolled back after verifying, and of nights that switched and skipped', () => {
  expect(fixtures).toEqual(expect.arrayContaining(['switch-switched.json', 'switch-failed-smoke.json', 'switch-rolled-back.json',
    'nightly-refresh-switched.json', 'nightly-refresh-skipped.json']));
});

it('replays every saved history without a nondeterminism error', async () => {
  const histories = fixtures.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: historyFromFixture(readFileSync(join(dir, file), 'utf8')),
  }));
  const replayed: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle(), replayName: 'switchyard-fixtures' }, histories)) {
    expect(result.error, `${result.workflowId}: ${result.error?.message}`).toBeUndefined();
    replayed.push(result.workflowId);
  }
  expect(replayed.sort()).toEqual(histories.map((h) => h.workflowId).sort());
});
