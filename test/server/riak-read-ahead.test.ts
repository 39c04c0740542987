import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { readAhead } from '../../server/store/riak/read-ahead.ts';

/** Reads that answer in the order the test releases them, counting how many are in flight. */
function controlledReads() {
  const waiting = new Map<number, () => void>();
  let inFlight = 0;
  let mostInFlight = 0;
  return {
    read: async (item: number) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise<void>((resolve) => waiting.set(item, resolve));
      inFlight -= 1;
      if (item < 0) throw new Error(`read of ${item} failed`);
      return item * 10;
    },
    release: (item: number) => waiting.get(item)?.(),
    started: () => [...waiting.keys()],
    inFlight: () => inFlight,
    mostInFlight: () => mostInFlight,
  };
}

describe('readAhead', () => {
  it('keeps the limit of reads in flight and yields in the items order, whatever order they answer in', async () => {
    const reads = controlledReads();
    const out: Array<[number, number]> = [];
    const done = (async () => {
      for await (const pair of readAhead([1, 2, 3, 4, 5, 6], 3, reads.read)) out.push(pair);
    })();
    await sleep(5);
    expect(reads.started()).toEqual([1, 2, 3]);
    // The third and second answer first: nothing is yielded until the first does, but reads go on behind it.
    reads.release(3);
    reads.release(2);
    await sleep(5);
    expect(out).toEqual([]);
    expect(reads.inFlight()).toBe(1);
    reads.release(1);
    await sleep(5);
    expect(out.map(([item]) => item)).toEqual([1, 2, 3]);
    expect(reads.started()).toEqual([1, 2, 3, 4, 5, 6]);
    for (const item of [6, 5, 4]) reads.release(item);
    await done;
    expect(out).toEqual([1, 2, 3, 4, 5, 6].map((item) => [item, item * 10]));
    expect(reads.mostInFlight()).toBe(3);
  });

  it('pulls the source lazily, and stops pulling it when the reader returns early', async () => {
    let pulled = 0;
    async function* source() {
      for (let item = 1; item <= 1000; item++) {
        pulled = item;
        yield item;
      }
    }
    const seen: number[] = [];
    for await (const [item] of readAhead(source(), 4, async (item) => item)) {
      seen.push(item);
      if (item === 2) break;
    }
    expect(seen).toEqual([1, 2]);
    expect(pulled).toBeLessThanOrEqual(6);
  });

  it('fails with the first read in order that failed, once every read started has settled', async () => {
    const reads = controlledReads();
    const out: number[] = [];
    const done = (async () => {
      for await (const [item] of readAhead([1, -2, 3], 3, reads.read)) out.push(item);
    })();
    await sleep(5);
    reads.release(1);
    reads.release(-2);
    await sleep(5);
    let settled = false;
    void done.catch(() => (settled = true));
    await sleep(5);
    // The read of 3 is still in flight: the failure waits for it.
    expect(settled).toBe(false);
    reads.release(3);
    await expect(done).rejects.toThrow('read of -2 failed');
    expect(out).toEqual([1]);
    expect(reads.inFlight()).toBe(0);
  });
});
