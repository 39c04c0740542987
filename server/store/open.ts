/**
 * Opens the store a `SYNC_STORE` value names. Adapters other than the embedded one load on demand
 * so a node only pulls in what it uses.
 */
import type { Logger } from '../../src/logging.ts';
import type { SyncStore } from './port.ts';

export function describeStoreSpec(spec: string): string | undefined {
  // Exports read a snapshot on a second connection, and nodes share the file: it must be a real one.
  if (spec === 'sqlite::memory:')
    return 'SYNC_STORE sqlite: needs a file path; an in-memory database cannot be exported or shared';
  if (/^sqlite:.+/.test(spec)) return undefined;
  if (/^riak:https?:\/\/[^/]+/.test(spec)) return undefined;
  return `SYNC_STORE must be sqlite:PATH or riak:http://HOST:PORT, got ${JSON.stringify(spec)}`;
}

export async function openStore(spec: string, logger: Logger): Promise<SyncStore> {
  const problem = describeStoreSpec(spec);
  if (problem) throw new Error(problem);
  if (spec.startsWith('sqlite:')) {
    const { SqliteStore } = await import('./sqlite.ts');
    return new SqliteStore(spec.slice('sqlite:'.length));
  }
  const { openRiakStore } = await import('./riak/store.ts');
  return openRiakStore(spec.slice('riak:'.length), { logger });
}
