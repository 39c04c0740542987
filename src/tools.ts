import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { repoRoot } from './config/environment.ts';

/** Binaries installed by scripts/bootstrap into .tools/bin; never downloaded at run time. */
export type Tool =
  | 'temporal'
  | 'temporal-test-server'
  | 'moto_server'
  | 'cfn-lint'
  | 'linearizability'
  | 'checkov'
  | 'hadolint'
  | 'actionlint';

export function toolPath(tool: Tool): string {
  if (tool === 'temporal' && process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const path = resolve(repoRoot, '.tools/bin', tool);
  if (!existsSync(path)) throw new Error(`${path} is missing: run 'npm run bootstrap' (scripts/bootstrap) first`);
  return path;
}

export const dataDir = resolve(repoRoot, '.data');
