/**
 * The `riak:` store URL: `http://HOST:8098[/PREFIX]?type=navcloud&bucket=items&counter_type=counters
 * &r=quorum&pr=1&w=quorum&pw=1&dw=1&timeout_ms=10000&export_grace_ms=1000`. Every parameter is
 * optional; quorum values left out are the bucket type's own defaults (docs/riak.md says which to
 * choose). `r` and `pr` apply to every read, `w`, `pw` and `dw` to the fence object: item writes and
 * numbers choose their own (riak/store.ts). `export_grace_ms` is how long an export lets writes in
 * flight land before it vouches for their numbers; a write still in flight after it is not
 * acknowledged (its former name, write_deadline_ms, is still read).
 */
export interface RiakQuorum {
  r?: string;
  pr?: string;
  w?: string;
  pw?: string;
  dw?: string;
  /** Replicas on this many different nodes must have answered a write (not settable in the URL). */
  node_confirms?: string;
}

export interface RiakConfig {
  /** Origin and optional path prefix, without a trailing slash. */
  base: string;
  /** Bucket type of the item and fence objects (allow_mult must be true, as it is for typed buckets). */
  bucketType: string;
  bucket: string;
  /** Bucket type with `datatype = counter`, holding the sequence counter. */
  counterType: string;
  quorum: RiakQuorum;
  timeoutMs: number;
  /** How long an export lets writes in flight land before it raises the export watermark (riak/watermark.ts). */
  exportGraceMs: number;
}

const QUORUM_NAMES = ['r', 'pr', 'w', 'pw', 'dw'] as const;
/** What `export_grace_ms` was called before exports kept a watermark: stacks started with it still start. */
const FORMER_GRACE = 'write_deadline_ms';
const KNOWN = new Set<string>([
  'type',
  'bucket',
  'counter_type',
  'timeout_ms',
  'export_grace_ms',
  FORMER_GRACE,
  ...QUORUM_NAMES,
]);
/** Riak's symbolic quorum values, or a replica count. */
const QUORUM_VALUE = /^(one|quorum|all|default|[0-9]{1,2})$/;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function parseRiakUrl(url: string): RiakConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `SYNC_STORE riak URL ${JSON.stringify(url)} is not a URL; expected riak:http://HOST:8098[?type=…&bucket=…&r=…]`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`SYNC_STORE riak URL must be http:// or https://, got ${parsed.protocol}`);
  }
  for (const key of parsed.searchParams.keys()) {
    if (!KNOWN.has(key))
      throw new Error(
        `SYNC_STORE riak URL has unknown parameter ${JSON.stringify(key)}; known: ${[...KNOWN].join(', ')}`,
      );
  }
  const name = (key: string, fallback: string): string => {
    const value = parsed.searchParams.get(key) ?? fallback;
    if (!NAME.test(value))
      throw new Error(
        `SYNC_STORE riak URL parameter ${key}=${JSON.stringify(value)} must be 1-64 characters of A-Za-z0-9_.-`,
      );
    return value;
  };
  const quorum: RiakQuorum = {};
  for (const key of QUORUM_NAMES) {
    const value = parsed.searchParams.get(key);
    if (value === null) continue;
    if (!QUORUM_VALUE.test(value))
      throw new Error(
        `SYNC_STORE riak URL parameter ${key}=${JSON.stringify(value)} must be one, quorum, all, default or a replica count`,
      );
    quorum[key] = value;
  }
  const milliseconds = (key: string, fallback: number, min: number, max: number): number => {
    const text = parsed.searchParams.get(key) ?? String(fallback);
    const value = Number(text);
    if (!/^[0-9]+$/.test(text) || value < min || value > max) {
      throw new Error(
        `SYNC_STORE riak URL parameter ${key}=${JSON.stringify(text)} must be an integer from ${min} to ${max}`,
      );
    }
    return value;
  };
  return {
    base: `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`,
    bucketType: name('type', 'navcloud'),
    bucket: name('bucket', 'items'),
    counterType: name('counter_type', 'counters'),
    quorum,
    timeoutMs: milliseconds('timeout_ms', 10_000, 100, 600_000),
    exportGraceMs: milliseconds(
      parsed.searchParams.has('export_grace_ms') || !parsed.searchParams.has(FORMER_GRACE)
        ? 'export_grace_ms'
        : FORMER_GRACE,
      1_000,
      0,
      60_000,
    ),
  };
}
