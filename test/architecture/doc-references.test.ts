/**
 * Every document the code, tests and README point a reader at is in the repository: no citation
 * of a design document that only its authors had, and no docs/*.md path that does not exist. And
 * the maps stay true: every path the README and the docs name exists, server/README.md lists every
 * folder of server/, and docs/architecture.md names every folder of src/.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const SCANNED = [
  'README.md',
  'vitest.config.ts',
  '.dependency-cruiser.cjs',
  'src',
  'server',
  'workflows',
  'activities',
  'test',
  'bench',
  'docs',
  'infra',
  'scripts',
];
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

const sources = SCANNED.flatMap((path) => [...files(path)]).map((path) => ({
  path,
  text: readFileSync(join(ROOT, path), 'utf8'),
}));

describe('references to documents', () => {
  it('cite no design document outside the repository', () => {
    const design = new RegExp(['DESIGN', '(\\.md)?\\s*§'].join(''));
    expect(sources.filter(({ text }) => design.test(text)).map(({ path }) => path)).toEqual([]);
  });

  it('name only docs/*.md files that exist', () => {
    const missing = sources.flatMap(({ path, text }) =>
      [...text.matchAll(/\bdocs\/([a-z0-9-]+\.md)/g)]
        .map((m) => `docs/${m[1]}`)
        .filter((doc) => !existsSync(join(ROOT, doc)))
        .map((doc) => `${path}: ${doc}`),
    );
    expect(missing).toEqual([]);
  });
});

const TOP = [
  'src',
  'server',
  'workflows',
  'activities',
  'test',
  'bench',
  'infra',
  'scripts',
  'examples',
  'bin',
  'tools',
  'docs',
];
const MAPS = [
  'README.md',
  'docs/architecture.md',
  'docs/switch-protocol.md',
  'docs/invariants.md',
  'docs/riak.md',
  'docs/rehearsals.md',
  'server/README.md',
];

/**
 * The file and folder paths a document names in backticks, as repository paths (server/README.md's
 * relative to server/), and the files and folders its mermaid diagrams name (the participants of a
 * sequence diagram are files).
 */
function pathsNamedIn(doc: string): string[] {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const diagrams = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const inDiagrams = diagrams.flatMap((diagram) =>
    [...diagram.matchAll(new RegExp(`\\b(?:${TOP.join('|')})/[\\w./-]*(?:\\.ts|/)(?![\\w/])`, 'g'))].map((m) => m[0]),
  );
  const named = [...[...text.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!.replace(/[.,:;]+$/, '')), ...inDiagrams];
  return named.flatMap((name) => {
    if (/[<*{$]/.test(name) || name.includes('://')) return [];
    if (TOP.some((top) => name.startsWith(`${top}/`))) return [name];
    if (doc === 'server/README.md' && /^[a-z][\w./-]*(\.ts|\/)$/.test(name)) return [`server/${name}`];
    return [];
  });
}

describe('the maps of the code', () => {
  it('name only paths that exist', () => {
    const missing = MAPS.flatMap((doc) =>
      pathsNamedIn(doc)
        .filter((path) => !existsSync(join(ROOT, path)))
        .map((path) => `${doc}: ${path}`),
    );
    expect(missing).toEqual([]);
  });

  it('server/README.md lists every folder of server/, and docs/architecture.md every folder of src/', () => {
    const folders = (dir: string) =>
      readdirSync(join(ROOT, dir), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    const serverReadme = readFileSync(join(ROOT, 'server/README.md'), 'utf8');
    expect(folders('server').filter((name) => !serverReadme.includes(`\`${name}/\``))).toEqual([]);
    const architecture = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    expect(folders('src').filter((name) => !architecture.includes(`src/${name}`))).toEqual([]);
  });
});
