import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, loadEnvironment, parseEnvironment, resolveSecret } from '../../src/config/environment.ts';
import { qaEnvironmentFile } from '../support/environment-file.ts';
import { tempDir } from '../support/temp-dir.ts';

const valid = qaEnvironmentFile('parameters: { nodes: 2, heartbeatMs: 1000 }\n');

async function envDir(files: Record<string, string>): Promise<string> {
  const dir = tempDir('switchyard-env-').path;
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe('environment files', () => {
  it('loads a valid file with defaults filled in and parameters as strings', async () => {
    const env = await loadEnvironment('qa', await envDir({ 'qa.yaml': valid }));
    expect(env.parameters).toEqual({ nodes: '2', heartbeatMs: '1000' });
    expect(env.approval).toBe('auto');
    expect(env.keepStacks).toBe(1);
    expect(env.backups.prefix).toBe('backups/');
  });

  it('names the file, the field and what was expected', () => {
    const bad = valid.replace('ttl: 5', 'ttl: soon').replace('profile: local', 'profile: gcp');
    expect(() => parseEnvironment('/x/qa.yaml', bad)).toThrowError(ConfigError);
    try {
      parseEnvironment('/x/qa.yaml', bad);
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toMatch(/\/x\/qa\.yaml: field 'ttl': .*number/);
      expect(message).toMatch(/\/x\/qa\.yaml: field 'profile': .*"aws"\|"local"/);
    }
  });

  it('reports a missing required field by its path', () => {
    const bad = valid.replace('smoke: { heartbeatMs: 500 }', 'smoke: {}');
    expect(() => parseEnvironment('qa.yaml', bad)).toThrowError(/field 'smoke\.heartbeatMs'/);
  });

  it('refuses YAML that does not parse, a missing file and a name that is not the file name', async () => {
    expect(() => parseEnvironment('qa.yaml', 'name: [unclosed')).toThrowError(/qa\.yaml: not valid YAML/);
    const dir = await envDir({ 'qa.yaml': valid.replace('name: qa', 'name: prod') });
    await expect(loadEnvironment('staging', dir)).rejects.toThrowError(/no environment 'staging'/);
    await expect(loadEnvironment('qa', dir)).rejects.toThrowError(/field 'name': expected 'qa'/);
    await expect(loadEnvironment('../etc', dir)).rejects.toThrowError(/not valid/);
  });

  it('resolves env: secrets and says which variable is missing', () => {
    process.env.SWITCHYARD_TEST_SECRET = 's3cret';
    expect(resolveSecret('env:SWITCHYARD_TEST_SECRET')).toBe('s3cret');
    expect(resolveSecret('literal-dev-secret')).toBe('literal-dev-secret');
    expect(() => resolveSecret('env:SWITCHYARD_TEST_UNSET')).toThrowError(/SWITCHYARD_TEST_UNSET is not set/);
  });
});
