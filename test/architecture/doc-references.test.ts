/**
 * Every document the code, tests and README point a reader at is in the repository: no citation
 * of a design document that only its authors had, and no docs/*.md path that does not exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const SCANNED = ['README.md', 'vitest.config.ts', '.dependency-cruiser.cjs', 'src', 'server', 'workflows', 'activities', 'test', 'bench', 'docs', 'infra', 'scripts'];
const TEXT = /\.(ts|js|cjs|mjs|md|ya?ml|sh)$|^bootstrap$/;
// Saved histories are frozen inputs, never edited.
const SKIPPED = /^test\/fixtures\//;

function* files(path: string): Generator<string> {
  const full = join(ROOT, path);
  if (!existsSync(full) || SKIPPED.test(path)) return;
  if (statSync(full).isDirectory()) {
    for (const entry of readdirSync(full)) if (entry !== 'node_modules') yield* files(join(path, entry));
  } else if (TEXT.test(path.split('/').at(-1)!)) {
    yield path;
  }
}

const sources = SCANNED.flatMap((path) => [...files(path)]).map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));

describe('references to documents', () => {
  it('cite no design document outside the repository', () => {
    const design = new RegExp(['DESIGN', '(\\.md)?\\s*§'].join(''));
    expect(sources.filter(({ text }) => design.test(text)).map(({ path }) => path)).toEqual([]);
  });

  it('name only docs/*.md files that exist', () => {
    const missing = sources.flatMap(({ path, text }) => [...text.matchAll(/\bdocs\/([a-z0-9-]+\.md)/g)]
      .map((m) => `docs/${m[1]}`)
      .filter((doc) => !existsSync(join(ROOT, doc)))
      .map((doc) => `${path}: ${doc}`));
    expect(missing).toEqual([]);
  });
});
