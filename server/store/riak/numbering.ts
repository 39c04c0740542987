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
  /** The highest value this node has seen the counter reach: the counter never goes below it. */
  private reached = 0;

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
  async add(by: number): Promise<number> {
    return this.saw(await this.riak.increment(COUNTER, by, this.quorum));
  }

  async highest(): Promise<number> {
    return this.saw(await this.riak.counter(COUNTER));
  }

  /**
   * Whether the counter has reached `seq`, read only when this node has not seen it that high: a
   * number handed out, read, or carried by a stored change (every change takes its number from
   * the counter before it is stored) is never above the counter.
   */
  async hasReached(seq: number): Promise<boolean> {
    return seq <= this.reached || seq <= (await this.highest());
  }

  /** A number the counter has reached: handed out, or carried by a stored change. */
  saw(seq: number): number {
    this.reached = Math.max(this.reached, seq);
    return seq;
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
