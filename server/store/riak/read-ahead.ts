/**
 * Reads each item of `items` with `read`, keeping up to `limit` reads in flight, and yields them
 * in the items' order. A slow read holds back only the yield, not the reads behind it: Riak's
 * answers vary by replica, and waiting for the slowest of a batch left the cluster idle meanwhile.
 * At most `limit` results are held at once. On an early return or a failure, every read started
 * is settled before the generator finishes.
 */
export async function* readAhead<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  read: (item: T) => Promise<R>,
): AsyncIterable<[T, R]> {
  const pending: Array<{ item: T; result: Promise<R> }> = [];
  const source = toAsync(items)[Symbol.asyncIterator]();
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && pending.length < limit) {
        const next = await source.next();
        if (next.done) exhausted = true;
        else {
          const result = read(next.value);
          // Awaited in order below; until then a failure must not count as unhandled.
          result.catch(() => undefined);
          pending.push({ item: next.value, result });
        }
      }
      const first = pending.shift();
      if (!first) return;
      yield [first.item, await first.result];
    }
  } finally {
    await Promise.allSettled(pending.map(({ result }) => result));
    if (!exhausted) await source.return?.();
  }
}

async function* toAsync<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> {
  yield* items;
}
