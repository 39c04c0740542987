/** Times every store call for the store latency metric, whichever adapter is behind the port. */
import type { SyncStore } from './port.ts';

type AsyncMethods = { [K in keyof SyncStore]: SyncStore[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof SyncStore];

const TIMED: AsyncMethods[] = [
  'get', 'put', 'delete', 'share', 'unshare', 'inbox', 'changes', 'import', 'fence', 'unfence', 'isFenced', 'highestSeq', 'countItems', 'ping', 'close',
];

export function instrumentStore(store: SyncStore, observe: (operation: string, seconds: number) => void): SyncStore {
  const timed = { exportSince: (since: number) => store.exportSince(since) } as SyncStore;
  for (const operation of TIMED) {
    const method = store[operation].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (timed as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await method(...args);
      } finally {
        observe(operation, (performance.now() - started) / 1000);
      }
    };
  }
  return timed;
}
