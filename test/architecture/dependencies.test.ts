/**
 * The import rules of docs/architecture.md, checked by dependency-cruiser with the repository's
 * .dependency-cruiser.cjs. Its CLI refuses Node 20, so the test drives its API, which runs here.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { tempDir } from '../support/temp-dir.ts';

const ROOTS = ['src', 'server', 'workflows', 'activities', 'bench', 'test'];

async function cruiseRepository(): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');
  const result = await cruise(ROOTS, { ...options, validate: true }, undefined, {
    tsConfig: extractTSConfig('tsconfig.json'),
  });
  return result.output as ICruiseResult;
}

describe('the layering', () => {
  it('holds: no import breaks a rule of .dependency-cruiser.cjs', async () => {
    const { summary } = await cruiseRepository();
    expect(summary.totalCruised).toBeGreaterThan(150);
    const violations = summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
    // The rules' own words say why each broken one matters (docs/architecture.md has the whole picture).
    const why = [...new Set(summary.violations.map((v) => v.rule.name))].map(
      (name) => `${name}: ${summary.ruleSetUsed?.forbidden?.find((rule) => rule.name === name)?.comment ?? ''}`,
    );
    expect(violations, why.join('\n')).toEqual([]);
  });
});

describe('the rules', () => {
  it('catch each kind of wrong import', async () => {
    const root = tempDir('layering-').path;
    const files: Record<string, string> = {
      'workflows/nightly.ts':
        "import { readFileSync } from 'node:fs';\nimport { run } from '../activities/stacks.ts';\nexport const x = [readFileSync, run];\n",
      'activities/stacks.ts': 'export const run = 1;\n',
      'server/app.ts':
        "import { y } from '../src/cli/main.ts';\nimport { z } from '../src/navcloud/protocol.ts';\nexport const a = [y, z];\n",
      'src/cli/main.ts': 'export const y = 1;\n',
      'src/navcloud/protocol.ts': 'export const z = 1;\n',
      'src/navcloud/client.ts': "import { a } from '../../server/app.ts';\nexport const c = a;\n",
      'src/cloud/factory.ts': "import { s } from '../local/state.ts';\nexport const f = s;\n",
      'src/local/state.ts': 'export const s = 1;\n',
      'src/cli/switch.ts':
        "import { stackSwitch } from '../../workflows/nightly.ts';\nimport type { x } from '../../workflows/nightly.ts';\nexport const w = stackSwitch;\n",
      'activities/report.ts': "import { x } from '../workflows/nightly.ts';\nexport const r = x;\n",
      // A module workflows may import must not open a way to Node either.
      'src/switch/contract.ts': "import { hostname } from 'node:os';\nexport const h = hostname;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');
    const { tsConfig: _, ...rest } = options;
    const result = await cruise(['workflows', 'server', 'src', 'activities'], {
      ...rest,
      validate: true,
      baseDir: root,
    });
    const violations = (result.output as ICruiseResult).summary.violations
      .map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)
      .sort();
    expect(violations).toEqual([
      'activities-import-no-workflow-code: activities/report.ts -> workflows/nightly.ts',
      'clients-load-no-workflow-code: src/cli/switch.ts -> workflows/nightly.ts',
      'clients-never-import-the-server: src/navcloud/client.ts -> server/app.ts',
      'cloud-imports-no-local-environment-or-cli: src/cloud/factory.ts -> src/local/state.ts',
      'server-imports-only-the-shared-protocol: server/app.ts -> src/cli/main.ts',
      'workflow-imports-only-workflow-safe-modules: workflows/nightly.ts -> activities/stacks.ts',
      'workflow-imports-only-workflow-safe-modules: workflows/nightly.ts -> fs',
      'workflow-safe-modules-stay-safe: src/switch/contract.ts -> os',
    ]);
  });
});
