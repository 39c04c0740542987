/**
 * No Docker engine runs here, so the image is checked without building it: hadolint over the
 * Dockerfile, its stages read and held to the rules (multi-stage, Node 24, non-root, health
 * check, production dependencies only), and the final stage's filesystem assembled as its COPY
 * lines say, with node_modules installed as the deps stage installs it (production only), then
 * the worker started from there as ENTRYPOINT and CMD say, probed on /healthz and /metrics.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../src/config/environment.ts';
import { toolPath } from '../../src/tools.ts';
import { freePort } from '../../src/net.ts';
import { envOf, execForm, parseDockerfile, type Stage } from './dockerfile.ts';
import { tempDir } from '../support/temp-dir.ts';

const run = promisify(execFile);
const dockerfile = async () => parseDockerfile(await readFile(resolve(repoRoot, 'Dockerfile'), 'utf8'));
const finalStage = async () => (await dockerfile()).stages.at(-1)!;
const argsOf = (stage: Stage, keyword: string) =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

describe('the Dockerfile', () => {
  it('passes hadolint', async () => {
    const result = await run(toolPath('hadolint'), ['--no-color', resolve(repoRoot, 'Dockerfile')]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
  });

  it('is multi-stage on Node.js 24; dependencies are installed without dev dependencies and copied into the final stage', async () => {
    const { stages } = await dockerfile();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.from).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim$/);
    const deps = stages.find((s) => argsOf(s, 'RUN').some((r) => /\bnpm ci\b/.test(r)))!;
    expect(deps.name).toBeDefined();
    expect(
      argsOf(deps, 'RUN')
        .filter((r) => /\bnpm (ci|install|i)\b/.test(r))
        .every((r) => /npm ci --omit=dev\b/.test(r)),
    ).toBe(true);
    const final = stages.at(-1)!;
    expect(final).not.toBe(deps);
    expect(argsOf(final, 'RUN').some((r) => /\bnpm\b/.test(r))).toBe(false);
    expect(argsOf(final, 'COPY')).toContain(`--from=${deps.name} /app/node_modules ./node_modules`);
  });

  it('runs `switchyard worker` as a non-root user, with a health check on the probe', async () => {
    const final = await finalStage();
    const users = argsOf(final, 'USER');
    expect(users).toHaveLength(1);
    expect(users[0]).not.toMatch(/^(root|0)(:|$)/);
    const keywords = final.instructions.map((i) => i.keyword);
    expect(keywords.indexOf('USER')).toBeGreaterThan(keywords.lastIndexOf('COPY'));
    const [healthcheck] = argsOf(final, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/--start-period=\d+s/);
    expect(healthcheck).toMatch(/CMD \[.*\/healthz/);
    expect(argsOf(final, 'EXPOSE')).toEqual([envOf(final).SWITCHYARD_PROBE_PORT]);
    expect([...execForm(argsOf(final, 'ENTRYPOINT')[0]!), ...execForm(argsOf(final, 'CMD')[0]!)]).toEqual([
      'node',
      'bin/switchyard.js',
      'worker',
    ]);
  });

  it('.dockerignore keeps dependencies, tools and local data out of the build context', async () => {
    const ignored = (await readFile(resolve(repoRoot, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.tools', '.data', '.git', '.env']));
  });
});

describe('the image, assembled without Docker', () => {
  let root: string;
  let worker: ChildProcess | undefined;

  beforeAll(async () => {
    root = tempDir('switchyard-image-').path;
    const final = await finalStage();
    for (const copy of argsOf(final, 'COPY')) {
      const parts = copy.split(' ');
      if (parts[0]!.startsWith('--from=')) continue;
      const destination = parts.at(-1)!;
      for (const source of parts.slice(0, -1)) {
        await cp(
          resolve(repoRoot, source),
          destination.endsWith('/') ? join(root, destination, source) : join(root, destination),
          { recursive: true },
        );
      }
    }
    // The deps stage's `npm ci --omit=dev`, offline: the installed tree, hard-linked, pruned to
    // production dependencies. npm rewrites its hidden lockfile, so that one is a real copy.
    await run('cp', ['-al', resolve(repoRoot, 'node_modules'), join(root, 'node_modules')]);
    await rm(join(root, 'node_modules/.package-lock.json'));
    await cp(resolve(repoRoot, 'node_modules/.package-lock.json'), join(root, 'node_modules/.package-lock.json'));
    await run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: root, timeout: 120_000 });
  }, 180_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  });

  it('holds no dev dependency', async () => {
    const { devDependencies } = JSON.parse(await readFile(resolve(repoRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(Object.keys(devDependencies).length).toBeGreaterThan(3);
    const present = Object.keys(devDependencies).filter(
      (name) => existsSync(join(root, 'node_modules', name)) && !isProductionDependency(name),
    );
    expect(present).toEqual([]);
    expect(existsSync(join(root, 'node_modules/tsx/package.json'))).toBe(true);
  });

  it("starts the worker as ENTRYPOINT and CMD say: healthy, with the SDK's and Switchyard's metrics, and stops on SIGTERM", async () => {
    const final = await finalStage();
    const port = await freePort();
    const command = [...execForm(argsOf(final, 'ENTRYPOINT')[0]!), ...execForm(argsOf(final, 'CMD')[0]!)];
    worker = spawn(command[0] === 'node' ? process.execPath : command[0]!, command.slice(1), {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: root,
        ...envOf(final),
        // Loopback only here; the image listens on every address for Prometheus.
        SWITCHYARD_PROBE_HOST: '127.0.0.1',
        SWITCHYARD_PROBE_PORT: String(port),
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        SWITCHYARD_TASK_QUEUE: `image-test-${port}`,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    worker.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4_000);
    });
    const exited = new Promise<number | null>((res) => worker!.once('exit', (code) => res(code)));

    const probe = `http://127.0.0.1:${port}`;
    let health: { status: number; body: Record<string, unknown> } | undefined;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline && worker.exitCode === null;) {
      const res = await fetch(`${probe}/healthz`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      if (res) health = { status: res.status, body: (await res.json()) as Record<string, unknown> };
      if (health?.status === 200) break;
      await sleep(500);
    }
    expect(health, stderr).toMatchObject({
      status: 200,
      body: {
        ok: true,
        worker: 'RUNNING',
        pollers: { workflow: 'POLLING', activity: 'POLLING' },
        temporal: 'reachable',
      },
    });

    const metrics = await (await fetch(`${probe}/metrics`)).text();
    for (const name of ['temporal_worker_task_slots_available', 'temporal_num_pollers', 'temporal_request_total'])
      expect(metrics).toMatch(new RegExp(`^${name}\\{`, 'm'));
    for (const name of [
      'switchyard_switches_total',
      'switchyard_switch_phase_seconds',
      'switchyard_write_pause_seconds',
      'switchyard_restore_items_per_second',
    ]) {
      expect(metrics).toContain(`# TYPE ${name} `);
    }
    expect((await fetch(`${probe}/nothing`)).status).toBe(404);

    // The image's own HEALTHCHECK command, run as Docker would run it in the container.
    const [check, ...checkArgs] = execForm(argsOf(final, 'HEALTHCHECK')[0]!.replace(/^.*?CMD /, ''));
    const healthcheck = () =>
      run(check === 'node' ? process.execPath : check!, checkArgs, {
        env: { ...envOf(final), SWITCHYARD_PROBE_PORT: String(port) },
        timeout: 10_000,
      }).then(
        () => 0,
        (err: { code: number }) => err.code,
      );
    expect(await healthcheck()).toBe(0);

    worker.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    expect(await healthcheck()).toBe(1);
  }, 180_000);
});

/** A dev dependency that a production dependency also needs stays, as npm ci --omit=dev keeps it. */
function isProductionDependency(name: string): boolean {
  return name === '@types/node';
}
