/**
 * The node's Prometheus metrics through prom-client: requests, open streams, stream
 * reconnects, heartbeats and their lag, store latency and bus lag, beside prom-client's default
 * process metrics (CPU, memory, event-loop lag, GC). Each node has its own registry (tests run
 * several nodes in one process); the process metrics are collected once per process and exposed
 * by every node of it.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FlipCounts } from '../src/navcloud/protocol.ts';

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const RATE_WINDOW_SECONDS = 10;

let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class Metrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly streamCuts: Counter<'reason'>;
  private readonly heartbeats: Counter;
  private readonly heartbeatLag: Histogram;
  private readonly storeLatency: Histogram<'operation'>;
  private readonly busLag: Histogram;
  /** route → method → status → counter child: the request path looks labels up without building a key. */
  private readonly requestChildren = new Map<string, Map<string, Map<number, { inc(): void }>>>();
  private readonly storeChildren = new Map<string, { observe(value: number): void }>();
  /** Writes held through a fence, by how the hold ended (forwarded, applied, timed-out). */
  private readonly holds: Counter<'outcome'>;
  private readonly holdTime: Histogram;
  /** Requests relayed to the stack this one forwards to, by route. */
  private readonly forwards: Counter<'route'>;
  /** The flip's counts since the node started, for GET /admin/stats (the switch's report sums them over the old stack). */
  readonly flip: FlipCounts = { requestsHeld: 0, holdsTimedOut: 0, requestsForwarded: 0 };
  /** Requests per second over the last RATE_WINDOW_SECONDS, admin calls excluded (NodeStats.requestRate). */
  private readonly window = new Array<number>(RATE_WINDOW_SECONDS).fill(0);
  private windowSecond = Math.floor(Date.now() / 1000);

  constructor(openStreams: () => number) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'navcloud_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    new Gauge({
      name: 'navcloud_open_streams',
      help: 'Streams this node holds open.',
      registers,
      collect() {
        this.set(openStreams());
      },
    });
    this.streamCuts = new Counter({
      name: 'navcloud_stream_reconnects_total',
      help: 'Streams this node closed with a reconnect message, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.heartbeats = new Counter({
      name: 'navcloud_heartbeats_total',
      help: 'Heartbeats written to streams.',
      registers,
    });
    this.heartbeatLag = new Histogram({
      name: 'navcloud_heartbeat_lag_seconds',
      help: 'How late heartbeats were written relative to their schedule.',
      buckets: SECONDS,
      registers,
    });
    this.storeLatency = new Histogram({
      name: 'navcloud_store_latency_seconds',
      help: 'Store call latency, by operation.',
      labelNames: ['operation'],
      buckets: SECONDS,
      registers,
    });
    this.busLag = new Histogram({
      name: 'navcloud_bus_lag_seconds',
      help: 'Time from a change event being published to this node receiving it.',
      buckets: SECONDS,
      registers,
    });
    this.holds = new Counter({
      name: 'navcloud_requests_held_total',
      help: 'Writes held while the stack was fenced, by how the hold ended.',
      labelNames: ['outcome'],
      registers,
    });
    this.holdTime = new Histogram({
      name: 'navcloud_hold_seconds',
      help: 'How long held writes waited for the fence to resolve.',
      buckets: SECONDS,
      registers,
    });
    this.forwards = new Counter({
      name: 'navcloud_requests_forwarded_total',
      help: 'Requests relayed to the stack this one forwards to, by route.',
      labelNames: ['route'],
      registers,
    });
  }

  request(route: string, method: string, status: number): void {
    let byMethod = this.requestChildren.get(route);
    if (!byMethod) this.requestChildren.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (!child) byStatus.set(status, (child = this.requests.labels(route, method, String(status))));
    child.inc();
    if (route.charCodeAt(1) !== 97 /* a: /admin… */) {
      this.rotate();
      this.window[this.windowSecond % RATE_WINDOW_SECONDS]!++;
    }
  }

  requestRate(): number {
    this.rotate();
    return this.window.reduce((a, b) => a + b, 0) / RATE_WINDOW_SECONDS;
  }

  storeCall(operation: string, seconds: number): void {
    let child = this.storeChildren.get(operation);
    if (!child) this.storeChildren.set(operation, (child = this.storeLatency.labels(operation)));
    child.observe(seconds);
  }

  heartbeat(lagSeconds: number): void {
    this.heartbeats.inc();
    this.heartbeatLag.observe(lagSeconds);
  }

  busEvent(lagSeconds: number): void {
    this.busLag.observe(lagSeconds);
  }

  held(outcome: 'forwarded' | 'applied' | 'timed-out', seconds: number): void {
    this.holds.labels(outcome).inc();
    this.holdTime.observe(seconds);
    this.flip.requestsHeld++;
    if (outcome === 'timed-out') this.flip.holdsTimedOut++;
  }

  forwarded(route: string): void {
    this.forwards.labels(route).inc();
    this.flip.requestsForwarded++;
  }

  streamCut(reason: string): void {
    this.streamCuts.labels(reason).inc();
  }

  /** The Prometheus text exposition: this node's series, then the process's. */
  async render(): Promise<string> {
    const [node, process] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${node}\n${process}`;
  }

  /** The content type of render()'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  private rotate(): void {
    const now = Math.floor(Date.now() / 1000);
    if (now === this.windowSecond) return;
    for (let s = this.windowSecond + 1; s <= now && s <= this.windowSecond + RATE_WINDOW_SECONDS; s++)
      this.window[s % RATE_WINDOW_SECONDS] = 0;
    this.windowSecond = now;
  }
}
