import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/net.ts';
import { environmentsDir, environmentYaml, runCli } from './run-cli.ts';

// Everything here fails before Temporal is asked anything: exit 2 and one sentence on stderr.
const envs = environmentsDir({
  qa: environmentYaml('qa'),
  broken: 'name: broken\nttl: [1',
  wrongfield: environmentYaml('wrongfield').replace('ttl: 1', 'ttl: soon'),
  misnamed: environmentYaml('other'),
});
afterAll(() => envs.remove());

const withEnvs = (...args: string[]) => [...args, '--environments', envs.dir];

function expectUsage(result: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) {
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stdout).toBe('');
}

describe('switchyard arguments', () => {
  it('exits 2 with an unknown command', async () => {
    expectUsage(
      await runCli(['swich', '--env', 'qa']),
      /^switchyard: unknown command 'swich'.*\(Did you mean switch\?\)/,
    );
  });

  it('exits 2 with an unknown option', async () => {
    expectUsage(await runCli(withEnvs('status', '--env', 'qa', '--colour', 'blue')), /unknown option '--colour'/);
  });

  it('exits 2 when --env is missing', async () => {
    expectUsage(await runCli(['switch', '--wait']), /required option '--env <name>' not specified/);
  });

  it('exits 2 with an approval mode that does not exist', async () => {
    expectUsage(
      await runCli(withEnvs('switch', '--env', 'qa', '--approval', 'maybe')),
      /'maybe' is invalid.*auto, manual/,
    );
  });

  it('exits 2 without arguments, showing the help on stderr', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: switchyard');
  });

  it('exits 0 with --help', async () => {
    const result = await runCli(['switch', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--keep-failed');
  });

  it('exits 2 naming the file when the environment does not exist', async () => {
    expectUsage(
      await runCli(withEnvs('switch', '--env', 'nowhere')),
      /no environment 'nowhere': .*nowhere\.yaml does not exist/,
    );
  });

  it('exits 2 when the environment file is not YAML', async () => {
    expectUsage(await runCli(withEnvs('status', '--env', 'broken')), /broken\.yaml: not valid YAML/);
  });

  it('exits 2 naming the field when the environment file breaks the schema', async () => {
    expectUsage(await runCli(withEnvs('approve', '--env', 'wrongfield')), /wrongfield\.yaml: field 'ttl'/);
  });

  it('exits 2 when the name inside the file differs from the file name', async () => {
    expectUsage(await runCli(withEnvs('abort', '--env', 'misnamed')), /field 'name': expected 'misnamed'/);
  });

  it('reads the environments directory from SWITCHYARD_ENVIRONMENTS', async () => {
    expectUsage(
      await runCli(['status', '--env', 'broken'], { SWITCHYARD_ENVIRONMENTS: envs.dir }),
      /broken\.yaml: not valid YAML/,
    );
  });

  it('exits 2 when a TLS certificate comes without its key', async () => {
    expectUsage(
      await runCli(withEnvs('status', '--env', 'qa'), { TEMPORAL_TLS_CERT: '/nonexistent/client.pem' }),
      /TEMPORAL_TLS_CERT is set \(\/nonexistent\/client\.pem\) but TEMPORAL_TLS_KEY is not/,
    );
  });

  it('exits 2 in one sentence naming the address when Temporal is not reachable', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const result = await runCli(withEnvs('switch', '--env', 'qa'), { TEMPORAL_ADDRESS: address });
    expectUsage(result, new RegExp(`^switchyard: Temporal is not reachable at ${address.replace(/\./g, '\\.')}`));
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('prints the stack trace of an error only with --verbose', async () => {
    const result = await runCli(withEnvs('status', '--env', 'qa', '--verbose'), {
      TEMPORAL_TLS_CERT: '/x.pem',
      TEMPORAL_TLS_KEY: '/nonexistent/key.pem',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/TEMPORAL_TLS_CERT names \/x\.pem, which cannot be read: ENOENT/);
    expect(result.stderr).toMatch(/\n\s+at /);
  });
});
