import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  /** Deletes it and all it holds; harmless when already gone. */
  remove(): void;
}

const created = new Set<string>();
function removeCreated(): void {
  for (const path of created) rmSync(path, { recursive: true, force: true });
  created.clear();
}
// Under vitest, registered on the test file that imports this module: what its tests did not remove
// goes after them. Scripts that share the test helpers (test/fixtures/histories/regenerate.ts) run
// outside vitest, where importing it throws: theirs go when the process exits.
if (process.env.VITEST) (await import('vitest')).afterAll(removeCreated);
else process.once('exit', removeCreated);

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
