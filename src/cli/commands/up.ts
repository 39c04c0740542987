/** `switchyard up`: the local environment (README.md), in the background or, with --foreground, until Ctrl-C. */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { wholeNumber } from '../options.ts';
import { portFree } from '../../net.ts';
import { repoRoot } from '../../config/environment.ts';
import { createPorts } from '../../cloud/factory.ts';
import { EXIT } from '../../switch/contract.ts';
import { startLocalEnvironment } from '../../local/environment.ts';
import { alive, runningEnvironment } from '../../local/control.ts';
import { localDataDir, localStatePath, readLocalState, type LocalState } from '../../local/state.ts';
import type { CommandModule } from '../command.ts';
import type { Cli } from '../context.ts';
import { ExitError } from '../errors.ts';

export interface UpOptions {
  env: string[];
  foreground?: boolean;
  temporalPort: number;
  uiPort: number;
  dnsPort: number;
  seedItems: number;
}

const START_TIMEOUT_MS = 240_000;

const port = wholeNumber(1, 65_535, 'a port number (1-65535)');
const count = wholeNumber(1, 1_000_000);

export const upCommand: CommandModule = (program, cli) => {
  program
    .command('up')
    .description(
      'start the local environment: Temporal with its Web UI, moto, RabbitMQ, the DNS responder, a worker, seeded environments',
    )
    .option('--env <name...>', 'local-profile environments to prepare', ['dev'])
    .option('--foreground', 'stay in the foreground and stop everything on Ctrl-C')
    .option('--temporal-port <port>', 'Temporal frontend port', port, 7233)
    .option('--ui-port <port>', 'Temporal Web UI port', port, 8233)
    .option('--dns-port <port>', 'DNS responder port on 127.0.0.1', port, 5353)
    .option('--seed-items <n>', 'items in a freshly seeded environment', count, 1000)
    .action((options: UpOptions) => (options.foreground ? runForeground(cli, options) : runBackground(cli, options)));
};

async function runForeground(cli: Cli, options: UpOptions): Promise<void> {
  const stateFile = localStatePath();
  const running = runningEnvironment(stateFile);
  if (running)
    throw new ExitError(
      EXIT.usage,
      `the local environment is already running (supervisor pid ${running.processes.supervisor}); stop it with 'switchyard down'`,
    );
  for (const [what, option, value] of [
    ['Temporal', '--temporal-port', options.temporalPort],
    ['the Temporal Web UI', '--ui-port', options.uiPort],
    ['the DNS responder', '--dns-port', options.dnsPort],
  ] as const) {
    if (!(await portFree(value)))
      throw new ExitError(
        EXIT.usage,
        `port ${value} on 127.0.0.1 (for ${what}) is in use: free it or choose another with ${option}`,
      );
  }
  const localEnvironment = await startLocalEnvironment({
    dataDir: localDataDir(),
    envs: options.env,
    environmentsDir: cli.environmentsDir,
    temporalPort: options.temporalPort,
    uiPort: options.uiPort,
    persistTemporal: true,
    dnsPort: options.dnsPort,
    seedItems: options.seedItems,
    log: cli.serviceLogger({ component: 'local-env' }),
  });
  const stop = new Promise<NodeJS.Signals>((res) => {
    process.once('SIGINT', () => res('SIGINT'));
    process.once('SIGTERM', () => res('SIGTERM'));
  });
  try {
    cli.out(await summary(cli, localEnvironment.state, options.env));
    cli.out('Ctrl-C stops everything.');
    const signal = await stop;
    cli.err(`${signal}: stopping the local environment`);
  } finally {
    await localEnvironment.stop();
  }
}

/** Starts `up --foreground` detached, so it outlives this command, and waits until it is ready. */
async function runBackground(cli: Cli, options: UpOptions): Promise<void> {
  const stateFile = localStatePath();
  const running = runningEnvironment(stateFile);
  if (running) {
    cli.out(await summary(cli, running, options.env));
    return;
  }
  const logFile = resolve(localDataDir(), 'logs/up.log');
  mkdirSync(resolve(localDataDir(), 'logs'), { recursive: true });
  const log = openSync(logFile, 'a');
  const args = [
    resolve(repoRoot, 'bin/switchyard.js'),
    'up',
    '--foreground',
    '--env',
    ...options.env,
    '--temporal-port',
    String(options.temporalPort),
    '--ui-port',
    String(options.uiPort),
    '--dns-port',
    String(options.dnsPort),
    '--seed-items',
    String(options.seedItems),
    '--environments',
    cli.environmentsDir,
  ];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...cli.io.env, LOG_FORMAT: 'json' },
  });
  closeSync(log);
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    await sleep(250);
    if (!alive(child.pid!))
      throw new ExitError(
        EXIT.failed,
        `the local environment did not start; the end of ${logFile}:\n${tail(logFile, 15)}`,
      );
    const state = runningEnvironment(stateFile);
    if (state?.readyAt && state.processes.supervisor === child.pid) {
      cli.out(await summary(cli, readLocalState(stateFile), options.env));
      cli.out(`Logs: ${join(localDataDir(), 'logs')}. Stop with 'switchyard down'.`);
      return;
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGTERM');
      throw new ExitError(
        EXIT.failed,
        `the local environment was not ready within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`,
      );
    }
  }
}

async function summary(cli: Cli, state: LocalState, envNames: string[]): Promise<string> {
  const [dnsHost, dnsPort] = state.dnsServer.split(':');
  const lines = [
    `Local environment up (supervisor pid ${state.processes.supervisor}).`,
    `  Temporal Web UI     ${state.temporalUiUrl ?? '(headless)'}`,
    `  Temporal            ${state.temporalAddress}`,
    `  DNS responder       ${state.dnsServer}`,
    `  moto (S3, Route53)  ${state.motoEndpoint}`,
    `  RabbitMQ            ${state.bus}`,
    `  Stacks' store       ${state.store === 'sqlite' ? 'SQLite (set RIAK_URL=http://HOST:8098 for Riak)' : state.store}`,
  ];
  for (const name of envNames) {
    const env = await cli.environment(name);
    const live = await createPorts(env, cli.logger, state).dns.current(env.recordName);
    const target = live && (live.target.kind === 'a' ? live.target.addresses.join(', ') : live.target.dnsName);
    lines.push(
      `  ${env.name}: ${env.recordName} -> ${live ? `${live.stack} (${target})` : 'no record'}, port ${env.parameters.port}`,
    );
    lines.push(`    resolve it:  dig @${dnsHost} -p ${dnsPort} ${env.recordName}`);
    lines.push(`    switch it:   TEMPORAL_ADDRESS=${state.temporalAddress} switchyard switch --env ${env.name} --wait`);
  }
  return lines.join('\n');
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
