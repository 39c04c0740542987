/**
 * The Switchyard worker: task queue `switchyard`, workflows bundled from workflows/index.ts,
 * activities built from injected dependencies, every log line (SDK, core, workflows, activities)
 * through pino, and a graceful shutdown on SIGINT/SIGTERM that lets running activities finish.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  NativeConnection,
  Runtime,
  Worker,
  type Logger as TemporalLogger,
  type LogLevel,
  type LogMetadata,
} from '@temporalio/worker';
import { IllegalStateError } from '@temporalio/common';
import { loadEnvironment, resolveSecret } from '../config/environment.ts';
import { createPorts, type LocalCloud } from '../cloud/factory.ts';
import { createAdminClient } from '../navcloud/admin-client.ts';
import { runSmokeChecks } from '../navcloud/smoke.ts';
import type { Logger } from '../logging.ts';
import { dataDir } from '../tools.ts';
import { TASK_QUEUE } from '../switch/contract.ts';
import { createActivities, type ActivityDeps } from '../../activities/index.ts';
import { connectionOptions } from './client.ts';
import { SwitchMetrics } from './switch-metrics.ts';
import { startWorkerProbe, type ProbeOptions } from './worker-probe.ts';
import { freePort } from '../net.ts';

export const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

export interface RunWorkerOptions {
  /** Defaults: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (and TLS or API key) as read by src/temporal/client.ts. */
  address?: string;
  namespace?: string;
  taskQueue?: string;
  /** The real adapters (defaultDeps) or a test's. */
  deps: ActivityDeps;
  shutdownSignals?: NodeJS.Signals[];
  /** A child of the program's root logger; made with activityLogFields, adapters' lines name their workflow. */
  logger: Logger;
  /** How often at most an activity's heartbeats reach the server (and cancellations reach the activity). */
  heartbeatThrottleMs?: number;
  /** Called once the worker polls its task queue. */
  onRunning?: (worker: Worker) => void;
  /** How long running activities get to stop cleanly after a shutdown signal (default 10). */
  shutdownGraceSeconds?: number;
  /** Serve /healthz and /metrics (Switchyard's and the SDK's runtime metrics) here. */
  probe?: ProbeOptions;
  /** Called with the probe's base URL once it listens. */
  onProbe?: (url: string) => void;
}

/**
 * `readLocalCloud` reads the local environment, for environments of the local profile; each
 * environment's adapters log through a child of `logger` that names it.
 */
export function defaultDeps(readLocalCloud: () => LocalCloud, logger: Logger): ActivityDeps {
  return {
    loadEnvironment: (name) => loadEnvironment(name),
    ports: (env) => createPorts(env, logger.child({ env: env.name }), readLocalCloud),
    admin: (env, adminUrl) => createAdminClient({ adminUrl, jwtSecret: resolveSecret(env.jwtSecret) }),
    runSmokeChecks,
    reportsDir: resolve(dataDir, 'reports'),
  };
}

/** Runs until a shutdown signal (or worker.shutdown()) and its graceful end; rejects if the worker fails. */
export async function runWorker(options: RunWorkerOptions): Promise<void> {
  const { logger } = options;
  // The SDK's core serves its metrics on loopback only; the probe republishes them.
  const sdkMetricsPort = options.probe ? await freePort() : undefined;
  const sdkMetrics = installRuntime(logger, options.shutdownSignals ?? ['SIGINT', 'SIGTERM'], sdkMetricsPort);
  const target = connectionOptions();
  const connection = await NativeConnection.connect({
    ...target.connection,
    address: options.address ?? target.connection.address,
  });
  let worker: Worker | undefined;
  const metrics = options.probe ? new SwitchMetrics() : undefined;
  const probe =
    options.probe && metrics
      ? await startWorkerProbe(options.probe, {
          connection,
          worker: () => worker,
          metrics,
          logger,
          ...(sdkMetrics ? { sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` } : {}),
        })
      : undefined;
  if (probe) {
    logger.info({ probe: probe.url, sdkMetrics }, 'worker probe listening (/healthz, /metrics)');
    options.onProbe?.(probe.url);
  }
  try {
    const taskQueue = options.taskQueue ?? TASK_QUEUE;
    const throttle = options.heartbeatThrottleMs ?? 5_000;
    worker = await Worker.create({
      connection,
      namespace: options.namespace ?? target.namespace,
      taskQueue,
      workflowsPath,
      activities: createActivities(metrics ? { ...options.deps, metrics } : options.deps),
      maxHeartbeatThrottleInterval: throttle,
      defaultHeartbeatThrottleInterval: throttle,
      // On shutdown, running activities are cancelled and given this long to stop cleanly.
      shutdownGraceTime: `${options.shutdownGraceSeconds ?? 10}s`,
    });
    logger.info({ taskQueue, address: options.address ?? target.connection.address }, 'worker polling');
    const running = worker.run();
    options.onRunning?.(worker);
    await running;
    logger.info({ taskQueue }, 'worker stopped');
  } finally {
    await probe?.close();
    await connection.close();
  }
}

/**
 * The Temporal runtime is process-wide and installed once: a second worker in the process shares
 * it. Returns whether its metrics are served on `metricsPort` (only by the first install).
 */
function installRuntime(logger: Logger, shutdownSignals: NodeJS.Signals[], metricsPort?: number): boolean {
  try {
    Runtime.install({
      logger: pinoForTemporal(logger.child({ component: 'temporal' })),
      shutdownSignals,
      telemetryOptions: {
        logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} },
        ...(metricsPort
          ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${metricsPort}`, countersTotalSuffix: true } } }
          : {}),
      },
    });
    return metricsPort !== undefined;
  } catch (err) {
    if (!(err instanceof IllegalStateError)) throw err;
    return false;
  }
}

const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Temporal's Logger interface over pino: metadata (workflow id, env, phase...) becomes fields. */
export function pinoForTemporal(logger: Logger): TemporalLogger {
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => logger[levels[level]](meta ?? {}, message);
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}
