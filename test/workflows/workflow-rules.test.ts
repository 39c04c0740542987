/**
 * The rules workflow code imports from outside workflows/ answer as they did for every run that
 * may still be replayed (test/workflows/workflow-rules.ts says why and how to change one).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { answers, NOT_DECIDING_COMMANDS, RULES } from './workflow-rules.ts';

const fixtures = fileURLToPath(new URL('../fixtures/workflow-rules/', import.meta.url));
const workflows = fileURLToPath(new URL('../../workflows/', import.meta.url));

it('answers every pinned case as every recorded generation says', () => {
  const now = answers();
  const generations = readdirSync(fixtures).filter((f) => /^v\d+\.json$/.test(f));
  expect(generations.length).toBeGreaterThan(0);
  for (const generation of generations) {
    const pinned = JSON.parse(readFileSync(join(fixtures, generation), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    for (const [rule, cases] of Object.entries(pinned)) {
      expect(
        now[rule],
        `${generation}: rule ${rule} is gone, but runs recorded with it may still replay`,
      ).toBeDefined();
      for (const [name, answer] of Object.entries(cases)) {
        expect(
          now[rule]![name],
          `${generation}: ${rule} (${name}) answers differently: that changes the commands of runs in flight; keep the old rule and choose with patched()`,
        ).toEqual(answer);
      }
    }
  }
});

it('pins every rule workflow code imports at run time from outside workflows/, or says why it decides no command', () => {
  const imported = new Set<string>();
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        for (const [, names, from] of readFileSync(path, 'utf8').matchAll(
          /^import (?!type )\{([^}]*)\} from '((?:\.\.\/)+src\/[^']+)'/gm,
        )) {
          if (!from) continue;
          for (const name of names!
            .split(',')
            .map((n) => n.trim())
            .filter((n) => n && !n.startsWith('type ')))
            imported.add(name);
        }
      }
    }
  };
  visit(workflows);
  const unaccounted = [...imported].filter((name) => !(name in RULES) && !(name in NOT_DECIDING_COMMANDS));
  expect(unaccounted, 'pin these in test/workflows/workflow-rules.ts (or say why they decide no command)').toEqual([]);
  expect(imported.size).toBeGreaterThan(5);
});
