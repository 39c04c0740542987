import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { freePort, waitForPort } from '../net.ts';
import { ServiceFailedError, spawnService, SupervisedProcess, waitReady, type Service } from './services.ts';

/** Debian's package puts the real start script here; /usr/sbin/rabbitmq-server would `su rabbitmq`. */
export const RABBITMQ_SERVER_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
export const EPMD = '/usr/bin/epmd';

export interface BrokerPorts {
  port: number;
  distPort: number;
  epmdPort: number;
}

/**
 * Writes a private broker's configuration into `dir` and returns the environment that runs it:
 * its own epmd port (4369 may belong to another node), node name, data and logs, loopback only,
 * as the current user, so it needs no access to /var/lib/rabbitmq.
 */
export function brokerEnvironment(dir: string, { port, distPort, epmdPort }: BrokerPorts): NodeJS.ProcessEnv {
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.1 = 127.0.0.1:${port}`,
      'loopback_users.guest = true',
      // A nearly full disk must not stop the stacks' event fan-out.
      'disk_free_limit.absolute = 1MB',
      'log.console = false',
      'log.file.level = warning',
    ].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  return {
    ...process.env,
    HOME: dir,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: `switchyard-${randomBytes(4).toString('hex')}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
  };
}

/**
 * True once a broker at `url` completes an AMQP handshake. The socket's timeout bounds the handshake
 * too, so a listener that accepts and says nothing (a broker still booting) fails within timeoutMs.
 */
export async function completesHandshake(url: string, timeoutMs = 2_000): Promise<boolean> {
  const connection = await connect(url, { timeout: timeoutMs });
  await connection.close();
  return true;
}

export interface Broker {
  url: string;
  /** epmd, which stays up when the broker is restarted. */
  epmd: Service;
  /** rabbitmq-server with its Erlang VM: restarted on the same port, node name and data. */
  rabbitmq: SupervisedProcess;
  stop(): Promise<void>;
}

/**
 * The local environment's RabbitMQ: the stacks' nodes fan their change events out through it,
 * so a write on one node of a stack reaches streams on the others (SYNC_BUS). It runs as the
 * current user with its own epmd, node name, ports and data under `dir`, on loopback only.
 */
export async function startBroker(
  dir: string,
  logDir: string,
  started: (name: string, pid: number) => void = () => undefined,
): Promise<Broker> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const env = brokerEnvironment(dir, { port, distPort, epmdPort });
  const epmd = spawnService({
    name: 'epmd',
    command: EPMD,
    args: ['-port', String(epmdPort), '-address', '127.0.0.1'],
    env,
    logFile: join(logDir, 'epmd.log'),
  });
  started(epmd.name, epmd.pid);
  const url = `amqp://127.0.0.1:${port}`;
  const rabbitmq = new SupervisedProcess(
    'rabbitmq',
    async () => {
      const logFile = join(logDir, 'rabbitmq.log');
      const bootLog = existsSync(logFile) ? statSync(logFile).size : 0;
      const broker = spawnService({
        name: 'rabbitmq',
        command: RABBITMQ_SERVER_SCRIPT,
        args: [],
        env,
        cwd: dir,
        logFile,
      });
      // The listener opens before boot finishes: only a completed AMQP handshake means ready.
      try {
        await waitReady(broker, 'rabbitmq-server', 90_000, async () => {
          // The Erlang VM may linger writing a crash dump after a failed boot: read the verdict from this boot's log.
          if (readFileSync(broker.logFile, 'utf8').slice(bootLog).includes('init terminating in do_boot')) {
            throw new ServiceFailedError(`rabbitmq-server failed to boot; see ${broker.logFile}`);
          }
          return completesHandshake(url);
        });
      } catch (err) {
        await broker.stop(2_000);
        throw err;
      }
      return { pid: broker.pid, kill: () => broker.kill(), stop: () => broker.stop(20_000) };
    },
    (pid) => started('rabbitmq', pid),
  );
  const stop = async () => {
    await rabbitmq.stop();
    await epmd.stop(20_000);
  };
  try {
    await waitForPort('127.0.0.1', epmdPort, 10_000, 'epmd');
    await rabbitmq.start();
    return { url, epmd, rabbitmq, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
