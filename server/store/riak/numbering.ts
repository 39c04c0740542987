/**
 * Sequence numbers from the Riak counter. Writes that want a number while an increment is in flight
 * wait for the next one, which takes a number for each of them at once: the counter is one hot key,
 * and under load one update per write is what limits a node.
 *
 * Increments ask two primaries on two nodes (pw=quorum, node_confirms=2), never all: a frozen node
 * must not stall every write. Riak answers an increment with the value its answering replicas merge
 * to, so two concurrent increments can answer numbers that overlap; two changes with one number are
 * both exported and both shown in feeds (docs/riak.md), and the export watermark (watermark.ts) keeps
 * exports exact whatever numbers are answered.
 */
import type { RiakClient } from './client.ts';
import type { RiakQuorum } from './config.ts';

const COUNTER = 'seq';

export class Numbering {
  private waiting: Array<{ resolve: (seq: number) => void; reject: (error: unknown) => void }> = [];
  private inFlight = false;

  constructor(
    private readonly riak: RiakClient,
    private readonly quorum: RiakQuorum,
  ) {}

  /** The next number for one change. */
  take(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.inFlight) void this.increment();
    });
  }

  /** Raises the counter by `by` and answers its value after. */
  add(by: number): Promise<number> {
    return this.riak.increment(COUNTER, by, this.quorum);
  }

  highest(): Promise<number> {
    return this.riak.counter(COUNTER);
  }

  private async increment(): Promise<void> {
    this.inFlight = true;
    while (this.waiting.length > 0) {
      const takers = this.waiting;
      this.waiting = [];
      try {
        const last = await this.add(takers.length);
        takers.forEach((taker, index) => taker.resolve(last - takers.length + 1 + index));
      } catch (error) {
        takers.forEach((taker) => taker.reject(error));
      }
    }
    this.inFlight = false;
  }
}
