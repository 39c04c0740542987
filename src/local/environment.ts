import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { ConfigError, loadEnvironment, environmentsDir as defaultEnvironmentsDir } from '../config/environment.ts';
import type { Logger } from '../logging.ts';
import { freePort, portFree, waitForPort } from '../net.ts';
import { repoRoot } from '../config/environment.ts';
import { toolPath } from '../tools.ts';
import { TASK_QUEUE } from '../switch/contract.ts';
import { startDevServer, type DevServer } from '../temporal/dev-server.ts';
import { route53Client, s3Client } from '../cloud/aws/clients.ts';
import { createPorts, LOCAL_CREDENTIALS } from '../cloud/factory.ts';
import { LocalStackProvisioner } from '../cloud/local/stack-provisioner.ts';
import { startBroker, type Broker } from './broker.ts';
import { spawnService, SupervisedProcess, waitReady, type RunningProcess, type Service } from './services.ts';
import { ensureBucket, ensureHostedZone, seedEnvironment, type SeedResult } from './seed.ts';
import { writeLocalState, type LocalState } from './state.ts';
import { describeLocalStore, type LocalStore } from '../cloud/local/stack-spec.ts';

export interface LocalEnvironmentOptions {
  /** Where stacks, logs, Temporal's database and local.json go (`.data` for `up`). */
  dataDir: string;
  /** Environments to prepare (bucket, hosted zone, seed): local-profile files only. */
  envs: string[];
  environmentsDir?: string;
  /** Temporal frontend port; 0 picks a free one. The Web UI is served only when uiPort is set. */
  temporalPort: number;
  uiPort?: number;
  /** Keep Temporal's history in dataDir/temporal.sqlite across restarts. */
  persistTemporal: boolean;
  /** DNS responder port on 127.0.0.1; 0 picks a free one. */
  dnsPort: number;
  /** Items written into each seeded environment's first stack (and so into its first backup). */
  seedItems: number;
  /** The store of stacks whose parameters name none; by default Riak at RIAK_URL when it is set, else SQLite. */
  store?: LocalStore;
  /** Every stack node keeps an acknowledgment journal (SYNC_ACK_JOURNAL) under dataDir/acks/<stack>/, kept after the stack is deleted. */
  ackJournals?: boolean;
  region?: string;
  log: Logger;
}

export interface LocalEnvironment {
  state: LocalState;
  stateFile: string;
  seeded: Record<string, SeedResult | undefined>;
  /** The processes a crash or a freeze can hit alone, each restarted as it was (fault drills, `npm run chaos`). */
  processes: Record<'worker' | 'temporal' | 'dns' | 'rabbitmq', SupervisedProcess>;
  stop(): Promise<void>;
}

/** RIAK_URL=http://HOST:8098 puts every local stack on that Riak, each in a bucket of its own. */
function storeOfEnvironment(): LocalStore {
  const riak = process.env.RIAK_URL;
  if (!riak) return 'sqlite';
  const store = `riak:${riak}` as const;
  const problem = describeLocalStore(store);
  if (problem) throw new ConfigError(`RIAK_URL=${JSON.stringify(riak)}: ${problem}`);
  return store;
}

/**
 * The whole local profile on one machine: moto (S3 and Route53), RabbitMQ (the stacks' event
 * bus), a Temporal dev server, the DNS responder, and a worker in a child process so it can be
 * killed and started again like a real deployment. Each environment gets its bucket and hosted
 * zone, and a first live stack with a backup if it has none. Everything started is stopped by
 * stop(), stacks included.
 */
export async function startLocalEnvironment(options: LocalEnvironmentOptions): Promise<LocalEnvironment> {
  const { log } = options;
  const dataDir = resolve(options.dataDir);
  const logDir = join(dataDir, 'logs');
  const stateFile = join(dataDir, 'local.json');
  const environmentsDir = options.environmentsDir ?? defaultEnvironmentsDir;
  const region = options.region ?? 'us-east-1';
  mkdirSync(logDir, { recursive: true });
  const envs = await Promise.all(options.envs.map((name) => loadEnvironment(name, environmentsDir)));
  for (const env of envs) {
    if (env.profile !== 'local')
      throw new Error(
        `environment '${env.name}' has profile ${env.profile}; the local environment runs only local-profile environments`,
      );
  }
  const store = options.store ?? storeOfEnvironment();
  log.info({ store }, 'stacks of the local environment use this store unless their parameters name one');
  await removeStacks(dataDir, log);

  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((err: unknown) => log.error({ err }, 'stopping a local service failed'));
    stops.length = 0;
  };
  const processes: Record<string, number> = { supervisor: process.pid };
  // `down` must find every process even if this supervisor was killed without cleaning up.
  const recordPid = (name: string, pid: number) => {
    processes[name] = pid;
    if (state) writeLocalState(state, stateFile);
  };
  let state: LocalState | undefined;
  try {
    const startTemporal = async (): Promise<{ supervised: SupervisedProcess; address: string }> => {
      const port = options.temporalPort || (await freePort());
      // Restarts keep the port (clients and the worker reconnect to it) and, with persistTemporal, the history.
      const supervised = new SupervisedProcess(
        'temporal',
        async () => {
          const server: DevServer = await startDevServer({
            port,
            uiPort: options.uiPort,
            logFile: join(logDir, 'temporal.log'),
            dbFile: options.persistTemporal ? join(dataDir, 'temporal.sqlite') : undefined,
          });
          return { pid: server.process.pid!, kill: server.kill, stop: server.stop };
        },
        (pid) => recordPid('temporal', pid),
      );
      await supervised.start();
      return { supervised, address: `127.0.0.1:${port}` };
    };
    const [moto, broker, temporal] = await Promise.all([
      withRetries('moto', log, () => startMoto(logDir, region)).then((s) => {
        stops.push(() => s.service.stop(5_000));
        return s;
      }),
      withRetries('RabbitMQ', log, () => startBroker(join(dataDir, 'rabbitmq'), logDir, recordPid)).then(
        (b: Broker) => {
          stops.push(b.stop);
          return b;
        },
      ),
      withRetries('the Temporal dev server', log, startTemporal).then((t) => {
        stops.push(() => t.supervised.stop());
        return t;
      }),
    ]);
    recordPid('moto', moto.service.pid);
    const temporalAddress = temporal.address;

    const aws = { region, endpoint: moto.endpoint, credentials: LOCAL_CREDENTIALS };
    const route53 = route53Client(aws);
    const hostedZones: Record<string, string> = {};
    for (const env of envs) {
      await ensureBucket(s3Client(aws), env.backups.bucket);
      const zone = await ensureHostedZone(route53, env.recordName);
      hostedZones[zone.domain] = zone.id;
    }
    const dnsPort = options.dnsPort || (await freeTcpAndUdpPort());
    const dns = new SupervisedProcess(
      'dns',
      () => startDnsProcess(moto.endpoint, region, dnsPort, logDir),
      (pid) => recordPid('dns', pid),
    );
    await dns.start();
    stops.push(() => dns.stop());

    state = {
      dataDir,
      region,
      motoEndpoint: moto.endpoint,
      temporalAddress,
      temporalUiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
      dnsServer: `127.0.0.1:${dnsPort}`,
      bus: broker.url,
      store,
      hostedZones,
      ...(options.ackJournals ? { ackJournals: join(dataDir, 'acks') } : {}),
      processes,
      startedAt: new Date().toISOString(),
    };
    writeLocalState(state, stateFile);

    const worker = new SupervisedProcess('worker', async () => {
      const service = spawnService({
        name: 'worker',
        command: process.execPath,
        args: ['--import', 'tsx', resolve(repoRoot, 'src/local/worker-main.ts')],
        cwd: repoRoot,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: temporalAddress,
          SWITCHYARD_LOCAL_STATE: stateFile,
          SWITCHYARD_ENVIRONMENTS: environmentsDir,
          LOG_FORMAT: 'json',
        },
        logFile: join(logDir, 'worker.log'),
      });
      recordPid('worker', service.pid);
      await waitReady(service, 'the worker', 60_000, (signal) => hasWorkflowPoller(temporalAddress, signal));
      log.info({ pid: service.pid }, 'worker polling');
      return { pid: service.pid, kill: () => service.kill(), stop: () => service.stop(10_000) };
    });
    stops.push(() => worker.stop());
    stops.push(async () => {
      await removeStacks(dataDir, log);
    });
    await worker.start();

    const seeded: Record<string, SeedResult | undefined> = {};
    for (const env of envs)
      seeded[env.name] = await seedEnvironment(
        env,
        createPorts(env, log.child({ env: env.name }), state),
        options.seedItems,
        log,
      );
    state.readyAt = new Date().toISOString();
    writeLocalState(state, stateFile);

    return {
      state,
      stateFile,
      seeded,
      processes: { worker, temporal: temporal.supervised, dns, rabbitmq: broker.rabbitmq },
      stop: async () => {
        await stopAll();
        rmSync(stateFile, { force: true });
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** A port free for both TCP and UDP on 127.0.0.1 right now (the DNS responder needs both). */
async function freeTcpAndUdpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (await portFree(port)) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1 after 20 tries');
}

/** The DNS responder (src/local/dns-main.ts) on 127.0.0.1:port; it serves once its TCP listener (opened after UDP) accepts. */
async function startDnsProcess(
  motoEndpoint: string,
  region: string,
  port: number,
  logDir: string,
): Promise<RunningProcess> {
  const service = spawnService({
    name: 'dns',
    command: process.execPath,
    args: ['--import', 'tsx', resolve(repoRoot, 'src/local/dns-main.ts')],
    cwd: repoRoot,
    env: {
      ...process.env,
      SWITCHYARD_MOTO_ENDPOINT: motoEndpoint,
      SWITCHYARD_DNS_PORT: String(port),
      AWS_REGION: region,
      LOG_FORMAT: 'json',
    },
    logFile: join(logDir, 'dns.log'),
  });
  await waitReady(service, 'the DNS responder', 30_000, async () => {
    await waitForPort('127.0.0.1', port, 200);
    return true;
  });
  return { pid: service.pid, kill: () => service.kill(), stop: () => service.stop(5_000) };
}

/**
 * A port freePort() found can be taken by another process before the service binds it (a busy
 * shared machine): starting afresh, with new ports, is the remedy. Each start cleans up after
 * itself when it fails; each failure is logged, so a slow start says why.
 */
async function withRetries<T>(what: string, log: Logger, start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= attempts) throw err;
      log.warn({ err, attempt, attempts }, `starting ${what} failed; starting it again on fresh ports`);
    }
  }
}

async function startMoto(logDir: string, region: string): Promise<{ endpoint: string; service: Service }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const service = spawnService({
    name: 'moto',
    command: toolPath('moto_server'),
    args: ['-H', '127.0.0.1', '-p', String(port)],
    // moto takes the account it emulates from these; the developer's real AWS settings stay out.
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_DEFAULT_REGION: region },
    logFile: join(logDir, 'moto.log'),
  });
  try {
    await waitReady(service, 'moto_server', 60_000, async (signal) => {
      const res = await fetch(`${endpoint}/moto-api/`, { signal });
      await res.arrayBuffer();
      return res.ok;
    });
  } catch (err) {
    await service.stop(2_000);
    throw err;
  }
  return { endpoint, service };
}

/** True once some worker polls the switchyard task queue for workflow tasks. */
async function hasWorkflowPoller(address: string, signal: AbortSignal): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    const queue = await connection.withAbortSignal(signal, () =>
      connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: TASK_QUEUE },
        taskQueueType: 1,
      }),
    );
    return (queue.pollers?.length ?? 0) > 0;
  } finally {
    await connection.close();
  }
}

/** Deletes every stack under dataDir/stacks: leftovers of a run that crashed, or the run ending. */
export async function removeStacks(dataDir: string, log: Logger): Promise<string[]> {
  const stacksDir = join(dataDir, 'stacks');
  if (!existsSync(stacksDir)) return [];
  // delete() drains with each stack's own secret (kept in its folder); this one is never used.
  const provisioner = new LocalStackProvisioner({
    stacksDir,
    jwtSecret: 'unused-local-cleanup-secret-0123456789abcdef',
    logger: log,
  });
  const names = readdirSync(stacksDir).filter((name) => !name.startsWith('.'));
  for (const name of names) {
    await provisioner.delete(name);
    log.info({ stack: name }, 'removed local stack');
  }
  return names;
}
