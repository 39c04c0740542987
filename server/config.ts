/**
 * The server's configuration, from the environment variables of server/README.md or given directly to
 * startServer. Every bad value is refused up front with the variable, the value and what was expected.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describeSecretProblem } from './auth.ts';
import { describeStoreSpec } from './store/open.ts';
import { describeBusSpec } from './bus/open.ts';

export interface RateLimit {
  /** Tokens added per second, per user (or per client address before authentication). */
  perSecond: number;
  burst: number;
}

export interface ServerConfig {
  host: string;
  /** 0: any free port (tests). */
  port: number;
  /** `sqlite:PATH` or `riak:http://HOST:PORT`. */
  store: string;
  /** `memory` or `amqp://…`. */
  bus: string;
  jwtSecret: string;
  heartbeatMs: number;
  nodeId: string;
  /** What this node runs (NAVCLOUD_VERSION, set by the stack; the package version otherwise), shown by `fleet list`. */
  version: string;
  /** Expect a PROXY protocol v2 header on every connection (behind the NLB). */
  proxyProtocol: boolean;
  /** undefined: no limit. */
  rateLimit: RateLimit | undefined;
  /** A stream that has waited this long for its client to take its unsent bytes (at most streamBufferBytes) is cut off with reconnect. */
  slowStreamMs: number;
  streamBufferBytes: number;
  /** How long shutdown waits for in-flight requests. */
  shutdownGraceMs: number;
  /** Longest a write is held while the stack is fenced before it is answered 503 (SYNC_HOLD_SECONDS). */
  holdMs: number;
  /** Streams told to reconnect by a drain or a forward are told over this long, not all at once (SYNC_RECONNECT_SPREAD_MS). */
  reconnectSpreadMs: number;
  /** How often a node reads the fence while it is fenced or holds writes, and otherwise. */
  fencePollMs: number;
  fenceIdleMs: number;
  /** Retry-After (seconds) on 503s caused by a fence or a drain. */
  retryAfterSeconds: number;
  /** SYNC_ACK_JOURNAL: a file every write this node acknowledges is appended to (store/ack-journal.ts); undefined: none. */
  ackJournal?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const defaultRateLimit: RateLimit = { perSecond: 5000, burst: 10_000 };

export function defaultConfig(overrides: Partial<ServerConfig> & Pick<ServerConfig, 'jwtSecret'>): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    store: 'sqlite:.data/navcloud.sqlite',
    bus: 'memory',
    heartbeatMs: 25_000,
    nodeId: hostname(),
    version: packageVersion,
    proxyProtocol: false,
    rateLimit: defaultRateLimit,
    slowStreamMs: 30_000,
    streamBufferBytes: 256 * 1024,
    shutdownGraceMs: 10_000,
    retryAfterSeconds: 5,
    holdMs: 5_000,
    reconnectSpreadMs: 3_000,
    fencePollMs: 25,
    fenceIdleMs: 250,
    ...overrides,
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function rateLimit(raw: string | undefined): RateLimit | undefined {
  if (raw === undefined || raw === '') return defaultRateLimit;
  if (raw === 'off') return undefined;
  const match = /^(\d+)(?::(\d+))?$/.exec(raw.trim());
  const perSecond = Number(match?.[1]);
  const burst = match?.[2] === undefined ? perSecond * 2 : Number(match[2]);
  if (!match || perSecond < 1 || burst < 1) {
    throw new ConfigError(
      `SYNC_RATE_LIMIT must be off or REQUESTS_PER_SECOND[:BURST] (positive integers), got ${JSON.stringify(raw)}`,
    );
  }
  return { perSecond, burst };
}

/** For the commands (`navcloud-sync`, `navcloud-admin`): the configuration, or exit 2 with one line naming what is wrong. */
export function configFromEnvOrExit(env: NodeJS.ProcessEnv, command: string): ServerConfig {
  try {
    return configFromEnv(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${command}: ${error.message}\n`);
    process.exit(2);
  }
}

/** The configuration `navcloud-sync` runs with. */
export function configFromEnv(env: NodeJS.ProcessEnv): ServerConfig {
  const jwtSecret = env.SYNC_JWT_SECRET;
  if (!jwtSecret) throw new ConfigError('SYNC_JWT_SECRET is required: the HS256 secret client tokens are signed with');
  const secretProblem = describeSecretProblem(jwtSecret);
  if (secretProblem) throw new ConfigError(secretProblem);
  const store = env.SYNC_STORE || 'sqlite:.data/navcloud.sqlite';
  const storeProblem = describeStoreSpec(store);
  if (storeProblem) throw new ConfigError(storeProblem);
  const bus = env.SYNC_BUS || 'memory';
  const busProblem = describeBusSpec(bus);
  if (busProblem) throw new ConfigError(busProblem);
  const host = env.HOST || '127.0.0.1';
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw new ConfigError(`HOST must be an address or host name, got ${JSON.stringify(host)}`);
  const nodeId = env.SYNC_NODE_ID || hostname();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId))
    throw new ConfigError(`SYNC_NODE_ID must be 1-64 characters of A-Za-z0-9._-, got ${JSON.stringify(nodeId)}`);
  const proxy = env.SYNC_PROXY_PROTOCOL ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(proxy))
    throw new ConfigError(`SYNC_PROXY_PROTOCOL must be 1 or 0, got ${JSON.stringify(proxy)}`);
  return defaultConfig({
    host,
    port: integer(env, 'PORT', 8080, 0, 65_535),
    store,
    bus,
    jwtSecret,
    heartbeatMs: integer(env, 'SYNC_HEARTBEAT_MS', 25_000, 10, 3_600_000),
    nodeId,
    ...(env.NAVCLOUD_VERSION ? { version: env.NAVCLOUD_VERSION.slice(0, 64) } : {}),
    proxyProtocol: proxy === '1' || proxy === 'true',
    rateLimit: rateLimit(env.SYNC_RATE_LIMIT),
    slowStreamMs: integer(env, 'SYNC_SLOW_STREAM_MS', 30_000, 100, 3_600_000),
    shutdownGraceMs: integer(env, 'SYNC_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    holdMs: integer(env, 'SYNC_HOLD_SECONDS', 5, 0, 60) * 1000,
    reconnectSpreadMs: integer(env, 'SYNC_RECONNECT_SPREAD_MS', 3_000, 0, 600_000),
    ...(env.SYNC_ACK_JOURNAL ? { ackJournal: env.SYNC_ACK_JOURNAL } : {}),
  });
}
