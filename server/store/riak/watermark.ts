/**
 * A number in the store's meta bucket that only rises. Two are kept:
 *
 * - The export watermark (`export-watermark`): the highest sequence number an export has vouched
 *   for. An export reads the counter, gives writes in flight a grace to land, raises the watermark
 *   to that number, and only then reads. A write is acknowledged only if, read after its object was
 *   stored, the watermark is below its number: a write whose number an export already vouched for
 *   without seeing it is refused instead. So whatever the timing (a slow write, a counter read that
 *   saw an increment the writer's own answer did not) no export's cursor passes an acknowledged
 *   write it did not contain.
 * - The undo mark (`undone-through`): the highest number an undo of a refused write took, raised
 *   before the undo is stored (riak/store.ts), so that a hand-over's commit can tell its copy is behind.
 *
 * Concurrent raises leave siblings, read as their maximum. Read and written at quorum, so a read
 * begun after a raise was answered sees it.
 */
import { StoreError } from '../port.ts';
import { readAgainWhileQuorumUnmet, type RiakClient } from './client.ts';
import type { RiakQuorum } from './config.ts';
import { SharedRead } from './shared-read.ts';

export class Watermark {
  private readonly reads = new SharedRead(() => this.fetch().then(({ value }) => value));
  /** The highest value this node has read or raised: it only grows, so a read below it is replicas behind. */
  private highest = 0;
  /** The highest value a raise was asked for, and the raise in flight, which the raises asked for meanwhile wait for. */
  private wanted = 0;
  private raising: Promise<void> | undefined;

  constructor(
    private readonly riak: RiakClient,
    private readonly bucket: string,
    private readonly quorum: RiakQuorum,
    private readonly key: 'export-watermark' | 'undone-through',
  ) {}

  /** The value as read by a read begun at or after `since` (performance.now()). */
  asOf(since: number): Promise<number> {
    return this.reads.since(since);
  }

  /**
   * Raises the value to at least `to`; answers once Riak stored it (or a higher value) at quorum.
   * Raises asked for while one is in flight share the next one, to the highest of them: the writes
   * a fence catches are undone together, and each undo raised the undo mark with a read and a write
   * of its own (47 at once on the cluster under the demo's load).
   */
  async raise(to: number): Promise<void> {
    this.wanted = Math.max(this.wanted, to);
    while (this.highest < to) {
      this.raising ??= this.raiseOnce(this.wanted).finally(() => (this.raising = undefined));
      await this.raising;
    }
  }

  private async raiseOnce(to: number): Promise<void> {
    const { value, vclock } = await this.fetch();
    if (value >= to) return;
    const stored = await this.riak.store(this.bucket, this.key, {
      body: JSON.stringify(to),
      vclock,
      indexes: {},
      quorum: this.quorum,
    });
    if (stored.kind === 'precondition-failed')
      throw new StoreError('unavailable', `Riak refused to store ${this.key} (412)`);
    this.highest = Math.max(this.highest, to);
  }

  /** Every write waits on this read, as on the fence's. */
  private async fetch(): Promise<{ value: number; vclock?: string }> {
    const fetched = await readAgainWhileQuorumUnmet(() => this.riak.fetch(this.bucket, this.key));
    if (fetched.kind === 'missing') return { value: this.highest, vclock: fetched.vclock };
    if (fetched.kind !== 'found') return { value: this.highest };
    const values = fetched.values.map((sibling) => Number(sibling.body.toString('utf8')));
    if (!values.every(Number.isSafeInteger)) throw new StoreError('unavailable', `${this.key} is not a number`);
    this.highest = Math.max(this.highest, ...values);
    return { value: this.highest, vclock: fetched.vclock };
  }
}
