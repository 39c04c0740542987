/**
 * How every Switchyard process reaches Temporal: the local dev server by default, or a hosted
 * Temporal through mTLS (certificate + key) or an API key. One reading of the environment for
 * both the client `Connection` and the worker's `NativeConnection`.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { ConfigError } from '../config/environment.ts';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

/** The options `Connection.connect` and `NativeConnection.connect` have in common. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

export interface TemporalTarget {
  connection: TemporalConnectionOptions;
  namespace: string;
}

type Env = Record<string, string | undefined>;

/** A PEM value itself (as a container's secret injects it) or the path of a file holding one. */
const isPem = (value: string) => value.trimStart().startsWith('-----BEGIN ');
/** How errors name such a variable's value: never a key's PEM. */
const shown = (value: string) => (isPem(value) ? 'a PEM value' : value);

function readNamedFile(variable: string, env: Env): Uint8Array | undefined {
  const path = env[variable];
  if (!path) return undefined;
  if (isPem(path)) return Buffer.from(path);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      `${variable} names ${path}, which cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY (mTLS),
 * TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_TLS and TEMPORAL_API_KEY. Any TLS setting
 * or an API key turns TLS on; a half-configured or contradictory set is a ConfigError.
 */
export function connectionOptions(env: Env = process.env): TemporalTarget {
  const address = env.TEMPORAL_ADDRESS || DEFAULT_ADDRESS;
  const namespace = env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE;
  const apiKey = env.TEMPORAL_API_KEY || undefined;

  if (env.TEMPORAL_TLS_CERT && !env.TEMPORAL_TLS_KEY) {
    throw new ConfigError(
      `TEMPORAL_TLS_CERT is set (${shown(env.TEMPORAL_TLS_CERT)}) but TEMPORAL_TLS_KEY is not: mTLS needs both the certificate and its key`,
    );
  }
  if (env.TEMPORAL_TLS_KEY && !env.TEMPORAL_TLS_CERT) {
    throw new ConfigError(
      `TEMPORAL_TLS_KEY is set (${shown(env.TEMPORAL_TLS_KEY)}) but TEMPORAL_TLS_CERT is not: mTLS needs both the certificate and its key`,
    );
  }
  if (apiKey && env.TEMPORAL_TLS_CERT) {
    throw new ConfigError(
      'TEMPORAL_API_KEY and TEMPORAL_TLS_CERT are both set: authenticate with either an API key or a client certificate, not both',
    );
  }
  const tlsFlag = env.TEMPORAL_TLS?.toLowerCase();
  if (tlsFlag !== undefined && tlsFlag !== '' && !['true', 'false', '1', '0'].includes(tlsFlag)) {
    throw new ConfigError(`TEMPORAL_TLS is '${env.TEMPORAL_TLS}': expected true or false`);
  }
  if ((tlsFlag === 'false' || tlsFlag === '0') && (apiKey || env.TEMPORAL_TLS_CERT)) {
    throw new ConfigError(
      'TEMPORAL_TLS is false but TEMPORAL_API_KEY or TEMPORAL_TLS_CERT is set, and those are only sent over TLS',
    );
  }

  const crt = readNamedFile('TEMPORAL_TLS_CERT', env);
  const key = readNamedFile('TEMPORAL_TLS_KEY', env);
  const ca = readNamedFile('TEMPORAL_TLS_CA', env);
  const serverName = env.TEMPORAL_TLS_SERVER_NAME || undefined;

  const tlsWanted = tlsFlag === 'true' || tlsFlag === '1' || !!apiKey || !!crt || !!ca || !!serverName;
  const connection: TemporalConnectionOptions = { address };
  if (tlsWanted) {
    const tls: TLSConfig = {};
    if (crt && key) tls.clientCertPair = { crt, key };
    if (ca) tls.serverRootCACertificate = ca;
    if (serverName) tls.serverNameOverride = serverName;
    connection.tls = Object.keys(tls).length ? tls : true;
  }
  if (apiKey) connection.apiKey = apiKey;
  return { connection, namespace };
}

/** Raised when the Temporal frontend cannot be reached; names the address so the fix is obvious. */
export class TemporalUnreachableError extends Error {
  override name = 'TemporalUnreachableError';
  constructor(
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Temporal is not reachable at ${address} (set TEMPORAL_ADDRESS, or start it with \`switchyard up\`)`,
      options,
    );
  }
}

/** Connects eagerly so an unreachable server is reported once, up front, naming the address. */
export async function createClient(env: Env = process.env, connectTimeoutMs = 5_000): Promise<Client> {
  const { connection: options, namespace } = connectionOptions(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: connectTimeoutMs });
  } catch (err) {
    throw new TemporalUnreachableError(options.address, { cause: err });
  }
  return new Client({ connection, namespace });
}
