import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { repoRoot } from '../../src/config/environment.ts';
import { toolPath } from '../../src/tools.ts';
import { gitlabConfig, gitlabJob } from './gitlab-schema.ts';
import { tempDir } from '../support/temp-dir.ts';

const githubFile = resolve(repoRoot, 'examples/ci/github-actions/switch.yml');
const gitlabFile = resolve(repoRoot, 'examples/ci/gitlab-ci.yml');
const run = promisify(execFile);

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
async function githubJob() {
  const workflow = parse(await readFile(githubFile, 'utf8')) as {
    jobs: { switch: { env: Record<string, string>; steps: Step[] } };
  };
  return workflow.jobs.switch;
}

/**
 * Runs a pipeline's switch script with `npx` replaced by a stub that writes a report and exits
 * with `code`, as `switchyard switch --wait --json` would.
 */
async function runScript(script: string, code: number, env: Record<string, string> = {}) {
  const dir = tempDir('switchyard-ci-').path;
  const stub = join(dir, 'npx');
  const report = JSON.stringify({
    env: 'prod',
    outcome: code === 0 ? 'switched' : 'rolled-back',
    reason: 'smoke checks failed',
    phases: [{ name: 'restoring', durationMs: 1500 }],
  });
  await writeFile(
    stub,
    `#!/usr/bin/env bash\necho "$@" > "${dir}/args"\n${code === 3 ? '' : `echo '${report}'\n`}exit ${code}\n`,
  );
  await chmod(stub, 0o755);
  await writeFile(join(dir, 'output'), '');
  await writeFile(join(dir, 'summary'), '');
  const result = await run('bash', ['-e', '-c', script], {
    cwd: dir,
    env: {
      PATH: `${dir}:${process.env.PATH}`,
      SWITCH_ENV: 'prod',
      SWITCH_VERSION: '1.4.2',
      SWITCH_APPROVAL: 'auto',
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      ...env,
    },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
  );
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  return {
    ...result,
    args: (await read('args')).trim(),
    output: await read('output'),
    summary: await read('summary'),
    report: await read('switch-report.json'),
  };
}

describe('the GitHub Actions example', () => {
  it('passes actionlint (with ShellCheck over its scripts)', async () => {
    const result = await run(toolPath('actionlint'), ['-no-color', githubFile]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  });

  it('switches with --wait --json, takes credentials from the secret store and archives the report whatever happened', async () => {
    const job = await githubJob();
    expect(job.env.TEMPORAL_API_KEY).toBe('${{ secrets.TEMPORAL_API_KEY }}');
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.if).toBe('always()');
    expect(upload.with?.path).toBe('switch-report.json');
  });

  it('passes on exit 0, fails on exit 1 naming the outcome, and reports exit 3 as another switch running', async () => {
    const step = (await githubJob()).steps.find((s) => s.id === 'switch')!;
    const switched = await runScript(step.run!, 0);
    expect(switched.code).toBe(0);
    expect(switched.args).toBe(
      '--no-install switchyard switch --env prod --version 1.4.2 --approval auto --wait --json',
    );
    expect(JSON.parse(switched.report).outcome).toBe('switched');
    expect(switched.output).toBe('exit-code=0\n');
    expect(switched.summary).toContain('| restoring | 1.5 |');

    const failed = await runScript(step.run!, 1);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('::error title=Switch failed::rolled-back: smoke checks failed');

    const busy = await runScript(step.run!, 3);
    expect(busy.code).toBe(3);
    expect(busy.stdout).toContain('::error title=Another switch is running::');
    expect(busy.output).toBe('exit-code=3\n');
  });
});

describe('the GitLab CI example', () => {
  it('uses only keys GitLab accepts, in shapes it accepts', async () => {
    const config = parse(await readFile(gitlabFile, 'utf8'));
    const checked = gitlabConfig.safeParse(config);
    expect(checked.success ? [] : checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([]);
    // The schema is strict: it refuses what GitLab refuses.
    expect(gitlabJob.safeParse({ script: 'x', artefacts: {} }).success).toBe(false);
    expect(gitlabJob.safeParse({ script: 'x', allow_failure: { exit_code: 3 } }).success).toBe(false);
    expect(gitlabConfig.safeParse({ stages: ['build'], job: { stage: 'deploy', script: 'x' } }).success).toBe(false);
  });

  it('archives the report always, reports exit 3 distinctly (allowed to fail) and fails on exit 1', async () => {
    const job = (parse(await readFile(gitlabFile, 'utf8')) as Record<string, any>).switch;
    expect(job.artifacts).toMatchObject({ when: 'always', paths: ['switch-report.json'] });
    expect(job.allow_failure).toEqual({ exit_codes: [3] });
    const script = (job.script as string[]).join('\n');

    const switched = await runScript(script, 0);
    expect(switched.code).toBe(0);
    expect(switched.args).toBe(
      '--no-install switchyard switch --env prod --version 1.4.2 --approval auto --wait --json',
    );
    const failed = await runScript(script, 1);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('SWITCH FAILED: rolled-back: smoke checks failed');
    const busy = await runScript(script, 3);
    expect(busy.code).toBe(3);
    expect(busy.stdout).toContain('ANOTHER SWITCH IS RUNNING');
  });
});
