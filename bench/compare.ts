/**
 * `npm run bench:compare`: the memory and time of comparing two stacks after a flip
 * (src/navcloud/compare.ts). Two sync servers on loopback, each with its own SQLite file, hold
 * BENCH_ITEMS items (default 200,000); BENCH_CHANGED of them (default 10,000) were changed on
 * the new stack after the copy. Prints items/s and the heap's growth
 * over the comparison. Figures are printed, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startServer } from '../server/app.ts';
import { encodeCursor } from '../src/navcloud/cursor.ts';
import { createAdminClient } from '../src/navcloud/admin-client.ts';
import { compareStacks } from '../src/navcloud/compare.ts';
import type { ExportItemLine } from '../src/navcloud/protocol.ts';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 200_000);
const CHANGED = Number(process.env.BENCH_CHANGED ?? 10_000);
const SECRET = 'bench-compare-secret-0123456789abcdef';
const BATCH = 10_000;

const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-compare-'));
const logger = pino({ level: 'silent' });
const [old, fresh] = await Promise.all(
  ['old', 'new'].map((name) =>
    startServer({
      jwtSecret: SECRET,
      store: `sqlite:${join(dir, `${name}.sqlite`)}`,
      nodeId: name,
      logger,
      rateLimit: undefined,
    }),
  ),
);
const oldAdmin = createAdminClient({ adminUrl: old!.url, jwtSecret: SECRET, requestTimeoutMs: 600_000 });
const newAdmin = createAdminClient({ adminUrl: fresh!.url, jwtSecret: SECRET, requestTimeoutMs: 600_000 });

const line = (i: number, seq: number, generation: number): ExportItemLine => ({
  kind: 'item',
  id: `item-${i}`,
  owner: `user-${i % 1000}`,
  type: 'trip',
  rev: `${generation}-${i.toString(16).padStart(12, '0')}`,
  deleted: false,
  data: { i, generation },
  shares: [],
  cursor: encodeCursor(seq),
  updatedAt: new Date().toISOString(),
});

try {
  const seeding = Date.now();
  for (let start = 0; start < ITEMS; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, ITEMS - start) }, (_, k) => line(start + k, start + k + 1, 1));
    await Promise.all([oldAdmin.importLines(batch), newAdmin.importLines(batch)]);
  }
  // Changed on the new stack after the copy: a newer revision at a later cursor, spread over the data set.
  const step = Math.max(1, Math.floor(ITEMS / Math.max(1, CHANGED)));
  const changed = Array.from({ length: Math.min(CHANGED, ITEMS) }, (_, k) => line(k * step, ITEMS + k + 1, 2));
  for (let start = 0; start < changed.length; start += BATCH)
    await newAdmin.importLines(changed.slice(start, start + BATCH));
  console.log(
    `bench:compare — ${ITEMS} items on both stacks, ${changed.length} changed on the new one (seeded in ${((Date.now() - seeding) / 1000).toFixed(1)} s)`,
  );

  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 20);
  const started = Date.now();
  const result = await compareStacks(oldAdmin, newAdmin);
  const ms = Date.now() - started;
  clearInterval(sampler);
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  console.log(
    `compared ${result.itemsCompared} items in ${(ms / 1000).toFixed(2)} s (${Math.round(result.itemsCompared / (ms / 1000))} items/s), ${result.mismatches} mismatches`,
  );
  console.log(
    `heap: ${mb(heapBefore)} before, peak ${mb(heapPeak)} (+${mb(heapPeak - heapBefore)}; both servers run in this process too)`,
  );
} finally {
  await Promise.all([old!.close(), fresh!.close()]);
  rmSync(dir, { recursive: true, force: true });
}
