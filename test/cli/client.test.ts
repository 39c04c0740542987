import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/environment.ts';
import { connectionOptions } from '../../src/temporal/client.ts';
import { tempDir } from '../support/temp-dir.ts';

const dir = tempDir('switchyard-tls-').path;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const cert = file('client.pem', 'CERT');
const key = file('client.key', 'KEY');
const ca = file('ca.pem', 'CA');

const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString() : undefined);

describe('connectionOptions', () => {
  it('defaults to the local dev server without TLS', () => {
    expect(connectionOptions({})).toEqual({ connection: { address: '127.0.0.1:7233' }, namespace: 'default' });
  });

  it('reads the address and namespace', () => {
    const { connection, namespace } = connectionOptions({
      TEMPORAL_ADDRESS: '127.0.0.9:7000',
      TEMPORAL_NAMESPACE: 'switchyard-prod',
    });
    expect(connection.address).toBe('127.0.0.9:7000');
    expect(namespace).toBe('switchyard-prod');
  });

  it('builds mTLS from the certificate, key, CA and server name files', () => {
    const { connection } = connectionOptions({
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    if (typeof connection.tls !== 'object') throw new Error('expected a TLS config');
    expect(text(connection.tls.clientCertPair?.crt)).toBe('CERT');
    expect(text(connection.tls.clientCertPair?.key)).toBe('KEY');
    expect(text(connection.tls.serverRootCACertificate)).toBe('CA');
    expect(connection.tls.serverNameOverride).toBe('temporal.internal');
    expect(connection.apiKey).toBeUndefined();
  });

  it('takes the certificate and key as PEM values, as container secrets inject them, and never shows a key', () => {
    const pemCert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const pemKey = '-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n';
    const { connection } = connectionOptions({ TEMPORAL_TLS_CERT: pemCert, TEMPORAL_TLS_KEY: pemKey });
    if (typeof connection.tls !== 'object') throw new Error('expected a TLS config');
    expect(text(connection.tls.clientCertPair?.crt)).toBe(pemCert);
    expect(text(connection.tls.clientCertPair?.key)).toBe(pemKey);
    expect(() => connectionOptions({ TEMPORAL_TLS_KEY: pemKey })).toThrow(
      'TEMPORAL_TLS_KEY is set (a PEM value) but TEMPORAL_TLS_CERT is not',
    );
  });

  it('turns TLS on for an API key', () => {
    const { connection } = connectionOptions({ TEMPORAL_API_KEY: 'k-123' });
    expect(connection).toEqual({ address: '127.0.0.1:7233', tls: true, apiKey: 'k-123' });
  });

  it.each([
    [{ TEMPORAL_TLS_CERT: cert }, /TEMPORAL_TLS_CERT is set .* but TEMPORAL_TLS_KEY is not/],
    [{ TEMPORAL_TLS_KEY: key }, /TEMPORAL_TLS_KEY is set .* but TEMPORAL_TLS_CERT is not/],
    [
      { TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: join(dir, 'missing.key') },
      /TEMPORAL_TLS_KEY names .*missing\.key, which cannot be read: ENOENT/,
    ],
    [{ TEMPORAL_TLS_CA: dir }, /TEMPORAL_TLS_CA names .*, which cannot be read: EISDIR/],
    [
      { TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key },
      /either an API key or a client certificate/,
    ],
    [{ TEMPORAL_TLS: 'yes' }, /TEMPORAL_TLS is 'yes': expected true or false/],
    [{ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' }, /only sent over TLS/],
  ])('refuses %o', (env, message) => {
    expect(() => connectionOptions(env)).toThrow(ConfigError);
    expect(() => connectionOptions(env)).toThrow(message);
  });
});
