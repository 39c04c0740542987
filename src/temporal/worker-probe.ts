/**
 * The worker's HTTP probe: `/healthz` answers 200 while the worker runs, both its pollers poll
 * and Temporal answers, 503 (saying which part failed) otherwise; `/metrics` is Switchyard's
 * metrics followed by the Temporal SDK's runtime metrics (task slots, schedule-to-start latency,
 * polls), which the SDK's core serves on a loopback-only port of its own. One scrape target.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from '../logging.ts';
import type { SwitchMetrics } from './switch-metrics.ts';

export interface ProbeOptions {
  host: string;
  port: number;
}

export interface ProbeSubject {
  connection: NativeConnection;
  /** The worker, once created. */
  worker(): Worker | undefined;
  metrics: SwitchMetrics;
  /** Where the SDK's core serves its Prometheus metrics (http://127.0.0.1:PORT/metrics), if it does. */
  sdkMetricsUrl?: string;
  logger: Logger;
}

export interface Health {
  ok: boolean;
  worker: string;
  pollers: { workflow: string; activity: string };
  temporal: string;
}

const TEMPORAL_CHECK_MS = 3_000;

export async function health(subject: ProbeSubject): Promise<Health> {
  const status = subject.worker()?.getStatus();
  let temporal = 'reachable';
  try {
    await subject.connection.withDeadline(Date.now() + TEMPORAL_CHECK_MS, () =>
      subject.connection.workflowService.getSystemInfo({}),
    );
  } catch (err) {
    temporal = `unreachable: ${(err as Error).message}`;
  }
  const result = {
    worker: status?.runState ?? 'not started',
    pollers: { workflow: status?.workflowPollerState ?? 'none', activity: status?.activityPollerState ?? 'none' },
    temporal,
  };
  const ok =
    result.worker === 'RUNNING' &&
    result.pollers.workflow === 'POLLING' &&
    result.pollers.activity === 'POLLING' &&
    temporal === 'reachable';
  return { ok, ...result };
}

async function metricsText(subject: ProbeSubject): Promise<string> {
  const own = await subject.metrics.registry.metrics();
  if (!subject.sdkMetricsUrl) return own;
  try {
    const res = await fetch(subject.sdkMetricsUrl, { signal: AbortSignal.timeout(TEMPORAL_CHECK_MS) });
    const text = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return `${own}\n${text}`;
  } catch (err) {
    // A comment keeps the exposition valid: Switchyard's metrics are still worth scraping.
    return `${own}\n# Temporal SDK metrics unavailable: ${(err as Error).message.replace(/\n/g, ' ')}\n`;
  }
}

export async function startWorkerProbe(
  options: ProbeOptions,
  subject: ProbeSubject,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/healthz' && path !== '/metrics')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /healthz or /metrics\n');
      return;
    }
    const answer =
      path === '/healthz'
        ? health(subject).then((h) => {
            if (!h.ok) subject.logger.warn({ health: h }, 'worker unhealthy');
            res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h) + '\n');
          })
        : metricsText(subject).then((text) => {
            res.writeHead(200, { 'content-type': subject.metrics.registry.contentType }).end(text);
          });
    answer.catch((err: Error) => {
      subject.logger.error({ err }, 'worker probe failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('probe failed\n');
    });
  });
  // A scraper or health checker never needs a long-lived connection.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
