/**
 * The node's Prometheus metrics (DESIGN §9): requests, open streams, heartbeat lag, store latency
 * and bus lag. Hand-rolled text exposition: a handful of series does not warrant a client library
 * on the request path.
 */

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  render(name: string, labels = ''): string[] {
    const join = labels ? `${labels},` : '';
    const lines: string[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${name}_bucket{${join}le="${bound}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{${join}le="+Inf"} ${this.count}`);
    lines.push(`${name}_sum${labels ? `{${labels}}` : ''} ${this.sum}`);
    lines.push(`${name}_count${labels ? `{${labels}}` : ''} ${this.count}`);
    return lines;
  }
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const RATE_WINDOW_SECONDS = 10;

export class Metrics {
  /** route → method → status → count: nested so counting builds no label string per request. */
  private readonly requests = new Map<string, Map<string, Map<number, number>>>();
  private readonly storeLatency = new Map<string, Histogram>();
  private readonly heartbeatLag = new Histogram(SECONDS);
  private readonly busLag = new Histogram(SECONDS);
  private readonly streamCuts = new Map<string, number>();
  private heartbeats = 0;
  /** Writes held through a fence, by how the hold ended (forwarded, applied, timed-out). */
  private readonly holds = new Map<string, number>();
  private readonly holdTime = new Histogram(SECONDS);
  /** Requests relayed to the stack this one forwards to, by route. */
  private readonly forwards = new Map<string, number>();
  /** Requests per second over the last RATE_WINDOW_SECONDS, admin calls excluded (NodeStats.requestRate). */
  private readonly window = new Array<number>(RATE_WINDOW_SECONDS).fill(0);
  private windowSecond = Math.floor(Date.now() / 1000);

  constructor(private readonly openStreams: () => number) {}

  request(route: string, method: string, status: number): void {
    let byMethod = this.requests.get(route);
    if (!byMethod) this.requests.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
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
    let histogram = this.storeLatency.get(operation);
    if (!histogram) this.storeLatency.set(operation, (histogram = new Histogram(SECONDS)));
    histogram.observe(seconds);
  }

  heartbeat(lagSeconds: number): void {
    this.heartbeats++;
    this.heartbeatLag.observe(lagSeconds);
  }

  busEvent(lagSeconds: number): void {
    this.busLag.observe(lagSeconds);
  }

  held(outcome: 'forwarded' | 'applied' | 'timed-out', seconds: number): void {
    this.holds.set(outcome, (this.holds.get(outcome) ?? 0) + 1);
    this.holdTime.observe(seconds);
  }

  forwarded(route: string): void {
    this.forwards.set(route, (this.forwards.get(route) ?? 0) + 1);
  }

  streamCut(reason: string): void {
    this.streamCuts.set(reason, (this.streamCuts.get(reason) ?? 0) + 1);
  }

  render(): string {
    const lines: string[] = [
      '# HELP navcloud_http_requests_total HTTP requests answered, by route pattern, method and status.',
      '# TYPE navcloud_http_requests_total counter',
    ];
    for (const [route, byMethod] of this.requests) {
      for (const [method, byStatus] of byMethod) {
        for (const [status, value] of byStatus) lines.push(`navcloud_http_requests_total{route="${route}",method="${method}",status="${status}"} ${value}`);
      }
    }
    lines.push(
      '# HELP navcloud_open_streams Streams this node holds open.',
      '# TYPE navcloud_open_streams gauge',
      `navcloud_open_streams ${this.openStreams()}`,
      '# HELP navcloud_stream_reconnects_total Streams this node closed with a reconnect message, by reason.',
      '# TYPE navcloud_stream_reconnects_total counter',
    );
    for (const [reason, value] of this.streamCuts) lines.push(`navcloud_stream_reconnects_total{reason="${reason}"} ${value}`);
    lines.push(
      '# HELP navcloud_heartbeats_total Heartbeats written to streams.',
      '# TYPE navcloud_heartbeats_total counter',
      `navcloud_heartbeats_total ${this.heartbeats}`,
      '# HELP navcloud_heartbeat_lag_seconds How late heartbeats were written relative to their schedule.',
      '# TYPE navcloud_heartbeat_lag_seconds histogram',
      ...this.heartbeatLag.render('navcloud_heartbeat_lag_seconds'),
      '# HELP navcloud_store_latency_seconds Store call latency, by operation.',
      '# TYPE navcloud_store_latency_seconds histogram',
    );
    for (const [operation, histogram] of this.storeLatency) lines.push(...histogram.render('navcloud_store_latency_seconds', `operation="${operation}"`));
    lines.push(
      '# HELP navcloud_bus_lag_seconds Time from a change event being published to this node receiving it.',
      '# TYPE navcloud_bus_lag_seconds histogram',
      ...this.busLag.render('navcloud_bus_lag_seconds'),
      '# HELP navcloud_requests_held_total Writes held while the stack was fenced, by how the hold ended.',
      '# TYPE navcloud_requests_held_total counter',
    );
    for (const [outcome, value] of this.holds) lines.push(`navcloud_requests_held_total{outcome="${outcome}"} ${value}`);
    lines.push(
      '# HELP navcloud_hold_seconds How long held writes waited for the fence to resolve.',
      '# TYPE navcloud_hold_seconds histogram',
      ...this.holdTime.render('navcloud_hold_seconds'),
      '# HELP navcloud_requests_forwarded_total Requests relayed to the stack this one forwards to, by route.',
      '# TYPE navcloud_requests_forwarded_total counter',
    );
    for (const [route, value] of this.forwards) lines.push(`navcloud_requests_forwarded_total{route="${route}"} ${value}`);
    return `${lines.join('\n')}\n`;
  }

  private rotate(): void {
    const now = Math.floor(Date.now() / 1000);
    if (now === this.windowSecond) return;
    for (let s = this.windowSecond + 1; s <= now && s <= this.windowSecond + RATE_WINDOW_SECONDS; s++) this.window[s % RATE_WINDOW_SECONDS] = 0;
    this.windowSecond = now;
  }
}
