/**
 * Data verification after the flip: every item of the old (frozen) stack must be on the new stack
 * with the same id and the same revision or a newer one. Both admin exports are read once, side
 * by side, in their common order (sequence numbers, which import preserves), so memory holds only
 * the old items the new stack changed since the copy, never the whole data set. The exports carry
 * only ids, revisions and cursors (`only=revisions`): the nodes neither read nor encode item data.
 *
 * Why a merge by sequence number works: an item copied to the new stack keeps its sequence
 * number there, and every later change of it on the new stack gets a higher one. So when the
 * new export passes an old item's number without showing that item at that number, the item
 * can only come later in the new export (changed since the copy) or not at all (missing). Those
 * few wait in `pending` until the new export shows them or ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { compareRevisions } from './revision.ts';
import { decodeCursor } from './cursor.ts';
import type { StackAdmin } from './admin-client.ts';
import type { ExportRevisionLine, RevisionExportLine } from './protocol.ts';

export interface ItemMismatch {
  id: string;
  /** `older`: the new stack's copy has an older revision. `missing`: the new stack has no copy at all. */
  problem: 'missing' | 'older';
  oldRev: string;
  newRev?: string;
}

export interface StackComparison {
  /** Items of the old stack (tombstones included) that were compared. */
  itemsCompared: number;
  mismatches: number;
  /** The first differing items found (up to `firstN`). */
  firstMismatches: ItemMismatch[];
  /** Most old items held at once waiting for their newer copy: the memory the comparison needed. */
  peakPending: number;
}

export interface CompareOptions {
  /** How many differing items to name (default 20). */
  firstN?: number;
  /**
   * Bound on old items waiting for a newer copy (default 500,000, about 60 MB). A stack that
   * changed more items than this since the copy is refused, not compared in unbounded memory.
   */
  maxPending?: number;
  signal?: AbortSignal;
  /**
   * Old items compared per second at most (undefined: as fast as the stacks export). Both stacks
   * serve clients meanwhile: unpaced, 100,000 items compared in 1.3 s on the local profile stalled
   * clients' writes up to 0.9 s; at 40,000 items/s the longest stall was 0.37 s.
   */
  itemsPerSecond?: number;
  /** Called every `progressEvery` old items (heartbeats). */
  onProgress?: (itemsCompared: number) => void;
  progressEvery?: number;
}

export class ComparisonTooLargeError extends Error {
  override name = 'ComparisonTooLargeError';
}

/** The pace is kept every this many items. */
const PACE_EVERY = 500;

/** Waits until `done` items are due at `itemsPerSecond` since the first call. */
function pacer(itemsPerSecond: number | undefined, signal: AbortSignal | undefined): (done: number) => Promise<void> {
  const started = Date.now();
  return async (done) => {
    if (!itemsPerSecond) return;
    const early = started + (done * 1000) / itemsPerSecond - Date.now();
    if (early > 0) await sleep(early, undefined, { signal });
  };
}

interface Positioned {
  line: ExportRevisionLine;
  seq: number;
}

/** The item lines of an export with their sequence numbers, which must ascend. */
async function* items(lines: AsyncIterable<RevisionExportLine>, stack: string): AsyncGenerator<Positioned> {
  let previous = 0;
  for await (const line of lines) {
    if (line.kind !== 'revision') continue;
    const seq = decodeCursor(line.cursor);
    if (seq === undefined) throw new Error(`${stack} export: item ${line.id} has a cursor that is not a cursor of this service`);
    if (seq <= previous) throw new Error(`${stack} export is not in cursor order at item ${line.id}: cannot compare in one pass`);
    previous = seq;
    yield { line, seq };
  }
}

export async function compareStacks(oldStack: StackAdmin, newStack: StackAdmin, options: CompareOptions = {}): Promise<StackComparison> {
  const firstN = options.firstN ?? 20;
  const maxPending = options.maxPending ?? 500_000;
  const progressEvery = options.progressEvery ?? 10_000;
  const result: StackComparison = { itemsCompared: 0, mismatches: 0, firstMismatches: [], peakPending: 0 };
  const mismatch = (found: ItemMismatch) => {
    result.mismatches++;
    if (result.firstMismatches.length < firstN) result.firstMismatches.push(found);
  };
  /** Old items whose copy on the new stack is not at their own sequence number: id -> old revision. */
  const pending = new Map<string, string>();
  /** Checks a new line against an old item waiting for it; other new lines are not the old stack's business. */
  const settle = (line: Pick<ExportRevisionLine, 'id' | 'rev'>) => {
    const oldRev = pending.get(line.id);
    if (oldRev === undefined) return;
    pending.delete(line.id);
    if (compareRevisions(line.rev, oldRev) < 0) mismatch({ id: line.id, problem: 'older', oldRev, newRev: line.rev });
  };

  const pace = pacer(options.itemsPerSecond, options.signal);
  const newer = items(newStack.revisionsSince(undefined, options.signal), 'new stack');
  let head = await newer.next();
  try {
    for await (const { line: old, seq } of items(oldStack.revisionsSince(undefined, options.signal), 'old stack')) {
      while (!head.done && head.value.seq < seq) {
        settle(head.value.line);
        head = await newer.next();
      }
      const same = !head.done && head.value.seq === seq ? head.value.line : undefined;
      if (same?.id === old.id) {
        if (compareRevisions(same.rev, old.rev) < 0) mismatch({ id: old.id, problem: 'older', oldRev: old.rev, newRev: same.rev });
        head = await newer.next();
      } else {
        if (same) {
          settle(same);
          head = await newer.next();
        }
        pending.set(old.id, old.rev);
        if (pending.size > maxPending) {
          throw new ComparisonTooLargeError(`more than ${maxPending} items of the old stack are not at their own cursor on the new stack: refusing to hold them all in memory`);
        }
        result.peakPending = Math.max(result.peakPending, pending.size);
      }
      result.itemsCompared++;
      if (result.itemsCompared % PACE_EVERY === 0) await pace(result.itemsCompared);
      if (result.itemsCompared % progressEvery === 0) options.onProgress?.(result.itemsCompared);
    }
    for (; !head.done && pending.size > 0; head = await newer.next()) settle(head.value.line);
  } finally {
    // Stops reading the new stack's export when the old one ended first or failed.
    await newer.return(undefined);
  }
  // Still waiting: copies the merge could not meet. Each stack numbers its own writes, so a newer
  // copy can sit below the old stack's version (on Riak, one the fence overtook and refused), and
  // on Riak an item that changes while an export walks its index is in no line of that export.
  // Each is looked up by id: its copy as the new stack holds it now.
  for (const id of [...pending.keys()]) {
    const line = await newStack.item(id, options.signal);
    if (line) settle(line);
  }
  for (const [id, oldRev] of pending) mismatch({ id, problem: 'missing', oldRev });
  return result;
}
