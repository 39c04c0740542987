import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { freePort, waitForPort } from '../../src/net.ts';
import { repoRoot } from '../../src/config/environment.ts';
import { brokerEnvironment, EPMD, RABBITMQ_SERVER_SCRIPT } from '../../src/local/broker.ts';

export interface RabbitMq {
  /** amqp://127.0.0.1:PORT — stays the same across stop() and start(). */
  url: string;
  port: number;
  /** Stops the broker (clean shutdown); its epmd and data directory stay for start(). */
  stop(): Promise<void>;
  /** Starts the broker again on the same port, name and data directory. */
  start(): Promise<void>;
  /** Stops everything and removes the temporary directory. */
  dispose(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A test that crashes must not leave a broker behind on a shared machine.
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => child.once('exit', () => res()));
}

async function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
  // erl_child_setup and inet_gethost may outlive the VM by a moment.
  killGroup(child, 'SIGKILL');
  running.delete(child);
}

/**
 * Starts a real Debian `rabbitmq-server` on free loopback ports, with its own epmd (the fixed
 * port 4369 may belong to another node on the machine), node name, data, logs and config in a
 * temporary directory. Resolves once the broker accepts an AMQP connection. Runs as the current
 * user (root on CI), so it needs no access to /var/lib/rabbitmq.
 */
export async function startRabbitMq(): Promise<RabbitMq> {
  for (const path of [RABBITMQ_SERVER_SCRIPT, EPMD]) {
    if (!existsSync(path))
      throw new Error(
        `${path} is missing: run 'npm run bootstrap' (scripts/bootstrap installs Debian's rabbitmq-server)`,
      );
  }
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-rabbitmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const logDir = resolve(repoRoot, 'test-artifacts');
  mkdirSync(logDir, { recursive: true });
  const logFile = resolve(logDir, `rabbitmq-${port}.log`);
  const env = brokerEnvironment(dir, { port, distPort, epmdPort });

  const epmd = spawn(EPMD, ['-port', String(epmdPort), '-address', '127.0.0.1'], {
    env,
    detached: true,
    stdio: 'ignore',
  });
  running.add(epmd);
  await waitForPort('127.0.0.1', epmdPort, 10_000, 'epmd');

  let broker: ChildProcess | undefined;
  const url = `amqp://127.0.0.1:${port}`;

  const start = async (): Promise<void> => {
    const log = openSync(logFile, 'a');
    const child = spawn(RABBITMQ_SERVER_SCRIPT, [], { env, cwd: dir, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    running.add(child);
    broker = child;
    const died = exited(child).then(() => {
      throw new Error(`rabbitmq-server exited with ${child.exitCode ?? child.signalCode}; see ${logFile}`);
    });
    died.catch(() => undefined);
    await Promise.race([acceptsAmqp(url, 60_000), died]);
  };

  const stop = async (): Promise<void> => {
    if (broker) await stopGroup(broker, 20_000);
    broker = undefined;
  };

  try {
    await start();
  } catch (error) {
    await stop();
    await stopGroup(epmd, 2_000);
    throw error;
  }

  return {
    url,
    port,
    stop,
    start,
    dispose: async () => {
      await stop();
      await stopGroup(epmd, 2_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The TCP listener opens before boot finishes; only a completed AMQP handshake means ready. */
async function acceptsAmqp(url: string, timeoutMs: number): Promise<void> {
  const { hostname, port } = new URL(url);
  await waitForPort(hostname, Number(port), timeoutMs, 'rabbitmq-server');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await connect(url);
      await connection.close();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`rabbitmq-server at ${url} refused AMQP for ${timeoutMs} ms: ${String(error)}`);
      await sleep(200);
    }
  }
}
