import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { repoRoot } from '../../src/config/environment.ts';
import { tempDir } from '../support/temp-dir.ts';
import { runCli as runCliLibrary } from '../../src/cli/main.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  /** What it wrote to stderr so far. */
  stderr(): string;
  done: Promise<CliRun>;
}

/** Standard output or error of an in-process run, kept as text. */
class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** A command line running through the CLI library in this process. */
export interface InProcessCli {
  /** What it wrote to stderr so far. */
  stderr(): string;
  done: Promise<CliRun>;
}

/**
 * One command line through the CLI library in this process, with `env` over this process's
 * environment as its environment. What reads process.env itself rather than the CLI's environment
 * (the AWS SDK, SWITCHYARD_LOCAL_STATE) needs runBin.
 */
export function startCli(args: string[], env: Record<string, string | undefined> = {}): InProcessCli {
  const stdout = new Captured();
  const stderr = new Captured();
  const done = runCliLibrary(args, {
    stdout,
    stderr,
    env: { ...process.env, CI: undefined, LOG_LEVEL: undefined, ...env },
  }).then((code) => ({ code, stdout: stdout.text, stderr: stderr.text }));
  return { stderr: () => stderr.text, done };
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return startCli(args, env).done;
}

/** Starts the real `switchyard` launcher as CI would; killed if it outlives timeoutMs. */
export function startBin(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): RunningCli {
  const child = spawn(process.execPath, [resolve(repoRoot, 'bin/switchyard.js'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, CI: undefined, LOG_LEVEL: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliRun>((resolveRun, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
  return { child, stderr: () => stderr, done };
}

export function runBin(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<CliRun> {
  return startBin(args, env, timeoutMs).done;
}

/** A valid local environment file's fields; tests override what they need. */
export function environmentYaml(name: string, extra = ''): string {
  return [
    `name: ${name}`,
    'profile: local',
    'region: us-east-1',
    'hostedZoneId: ZLOCAL',
    `recordName: sync.${name}.navcloud.test`,
    'ttl: 1',
    'template: local',
    `backups: { bucket: navcloud-${name}-backups }`,
    'smoke: { heartbeatMs: 100 }',
    'verifySeconds: 0',
    'drainSeconds: 1',
    'jwtSecret: test-secret-for-the-cli-0123456789abcdef',
    extra,
  ].join('\n');
}

/** A temp directory of environment files, for `--environments`. */
export function environmentsDir(files: Record<string, string>): { dir: string; remove(): void } {
  const dir = tempDir('switchyard-envs-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, `${name}.yaml`), text);
  return { dir: dir.path, remove: dir.remove };
}
