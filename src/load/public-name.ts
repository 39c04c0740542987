/**
 * The service's public name as a mobile client sees it: resolved over real DNS, cached for the
 * record's TTL, and forgotten early when the service says so (a stream's `reconnect`) or an
 * address stops answering. This is what makes clients follow a switch.
 */
import { Resolver } from 'node:dns/promises';

export interface ResolverAddress {
  host: string;
  port: number;
}

interface Answer {
  addresses: string[];
  expiresAt: number;
}

/** The name could not be resolved (no answer, no address): a client retries as for a refused connection. */
export class NameResolutionError extends Error {
  override name = 'NameResolutionError';
}

export class PublicName {
  private readonly resolver: Resolver;
  private answer: Answer | undefined;
  private pending: Promise<Answer> | undefined;
  /** Answers received, for logs and tests. */
  resolutions = 0;

  constructor(
    readonly name: string,
    server: ResolverAddress,
    /** Bound on one lookup; the resolver retries once within it. */
    timeoutMs = 4_000,
  ) {
    this.resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs / 2)), tries: 2 });
    this.resolver.setServers([`${server.host}:${server.port}`]);
  }

  /** Current addresses of the name, from the cache while the record's TTL allows. */
  async addresses(): Promise<string[]> {
    if (this.answer && Date.now() < this.answer.expiresAt) return this.answer.addresses;
    this.pending ??= this.lookUp().finally(() => {
      this.pending = undefined;
    });
    return (await this.pending).addresses;
  }

  /** Drops the cached answer so the next call asks DNS again. */
  forget(): void {
    this.answer = undefined;
  }

  close(): void {
    this.resolver.cancel();
  }

  private async lookUp(): Promise<Answer> {
    let records: Array<{ address: string; ttl: number }>;
    try {
      records = await this.resolver.resolve4(this.name, { ttl: true });
    } catch (err) {
      throw new NameResolutionError(`${this.name}: ${(err as Error).message}`, { cause: err });
    }
    if (!records.length) throw new NameResolutionError(`${this.name} resolved to no address`);
    const ttl = Math.min(...records.map((r) => r.ttl));
    this.resolutions++;
    this.answer = { addresses: records.map((r) => r.address), expiresAt: Date.now() + ttl * 1000 };
    return this.answer;
  }
}
