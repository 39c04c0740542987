/**
 * One Riak read shared by every caller that can use it. A caller asks for a read that began at or
 * after some moment (performance.now()): a write that needs the fence as it was after its object
 * was stored must not be answered by a read sent before that. Writes checking together share one
 * read, so a busy node reads the fence once per batch of writes, not once per write.
 */
export class SharedRead<T> {
  private latest: { startedAt: number; value: Promise<T> } | undefined;

  constructor(private readonly read: () => Promise<T>) {}

  /** A read begun at or after `since`: the one in flight or last done if it qualifies, else a new one. */
  since(since: number): Promise<T> {
    const latest = this.latest;
    if (latest && latest.startedAt >= since) return latest.value;
    const startedAt = performance.now();
    const value = this.read();
    this.latest = { startedAt, value };
    // A failed read is not kept for the next caller.
    value.catch(() => {
      if (this.latest?.value === value) this.latest = undefined;
    });
    return value;
  }
}
