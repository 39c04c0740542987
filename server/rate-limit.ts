/** Per-key token buckets (429 with Retry-After when empty). Idle full buckets are swept so the map stays small. */
import type { RateLimit } from './config.ts';

interface Bucket {
  tokens: number;
  at: number;
}

const SWEEP_MS = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = Date.now();

  constructor(private readonly limit: RateLimit) {}

  /** 0 when the request may go ahead, else the seconds to wait before retrying. */
  take(key: string, now = Date.now()): number {
    if (now - this.lastSweep > SWEEP_MS) this.sweep(now);
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = { tokens: this.limit.burst, at: now }));
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.limit.perSecond));
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond >= this.limit.burst)
        this.buckets.delete(key);
    }
  }
}
