/** Times every store call for the store latency metric, whichever adapter is behind the port. */
import type { SyncStore } from './port.ts';

type AsyncMethods = {
  [K in keyof SyncStore]: SyncStore[K] extends (...args: never[]) => Promise<unknown> ? K : never;
}[keyof SyncStore];

const TIMED: AsyncMethods[] = [
  'get',
  'item',
  'put',
  'delete',
  'share',
  'unshare',
  'inbox',
  'changes',
  'exportSince',
  'import',
  'raiseNumbering',
  'fence',
  'forward',
  'unfence',
  'fenceState',
  'settleWrites',
  'highestSeq',
  'countItems',
  'ping',
  'close',
];

export function instrumentStore(store: SyncStore, observe: (operation: string, seconds: number) => void): SyncStore {
  const timed = {} as SyncStore;
  for (const operation of TIMED) {
    const method = store[operation] as (
      this: SyncStore,
      a?: unknown,
      b?: unknown,
      c?: unknown,
      d?: unknown,
    ) => Promise<unknown>;
    // Fixed parameters rather than rest/spread, and one settle callback: this wraps every GET.
    (timed as unknown as Record<string, unknown>)[operation] = (a?: unknown, b?: unknown, c?: unknown, d?: unknown) => {
      const started = performance.now();
      const settled = () => observe(operation, (performance.now() - started) / 1000);
      const result = method.call(store, a, b, c, d);
      result.then(settled, settled);
      return result;
    };
  }
  // A listing streams for as long as its reader reads: there is no one call to time.
  timed.revisionsById = () => store.revisionsById();
  return timed;
}
