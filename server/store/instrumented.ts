/** Times every store call for the store latency metric, whichever adapter is behind the port. */
import type { SyncStore } from './port.ts';

export function instrumentStore(store: SyncStore, observe: (operation: string, seconds: number) => void): SyncStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'exportSince' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        const started = performance.now();
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise) {
          return result.finally(() => observe(property, (performance.now() - started) / 1000));
        }
        return result;
      };
    },
  });
}
