import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from '../../src/config/environment.ts';
import { tempDir } from '../support/temp-dir.ts';

const script = resolve(repoRoot, 'scripts/bootstrap');

function bootstrap(env: Record<string, string>) {
  return spawnSync('/bin/bash', [script], { env: { ...env, HOME: process.env.HOME ?? '/root' }, encoding: 'utf8' });
}

describe('scripts/bootstrap', () => {
  it('is idempotent: a second run succeeds and leaves every tool runnable', () => {
    const run = bootstrap({ PATH: process.env.PATH ?? '' });
    expect(run.status, run.stderr).toBe(0);
    const flag: Record<string, string> = { moto_server: '--help', actionlint: '-version' };
    for (const tool of ['temporal', 'moto_server', 'cfn-lint', 'checkov', 'hadolint', 'actionlint']) {
      const check = spawnSync(resolve(repoRoot, '.tools/bin', tool), [flag[tool] ?? '--version']);
      expect(check.status, `${tool} runs`).toBe(0);
    }
  });

  it('names a missing prerequisite and how to get it, in one sentence', () => {
    // A PATH with the few utilities the script needs before its checks, and no python3.
    const bin = tempDir('switchyard-path-').path;
    for (const tool of ['dirname', 'mkdir']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
    const run = bootstrap({ PATH: bin });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(
      'bootstrap: Python 3 is missing: install it (apt-get install python3 python3-venv) and run npm ci again.',
    );
  });
});
