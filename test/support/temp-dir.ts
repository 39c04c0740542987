import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export interface TempDir {
  path: string;
  /** Deletes it and all it holds; harmless when already gone. */
  remove(): void;
}

const created = new Set<string>();
// Registered on the test file that imports this module: what its tests did not remove goes after them.
afterAll(() => {
  for (const path of created) rmSync(path, { recursive: true, force: true });
  created.clear();
});

/** A new directory under the system's temp directory, removed by remove() or after the test file. */
export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  created.add(path);
  return {
    path,
    remove() {
      created.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
}
