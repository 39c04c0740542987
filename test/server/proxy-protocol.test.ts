import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeProxyHeader, parseProxyHeader, ProxyProtocolError } from '../../server/proxy-protocol.ts';
import { startTestNode, type TestNode } from './helpers.ts';

/** Sends raw bytes on a fresh connection and collects everything until the server closes it. */
function exchange(port: number, bytes: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', (error) =>
      (error as NodeJS.ErrnoException).code === 'ECONNRESET'
        ? resolve(Buffer.concat(received).toString())
        : reject(error),
    );
    socket.on('close', () => resolve(Buffer.concat(received).toString()));
    socket.on('connect', () => {
      (async () => {
        for (const part of bytes) {
          socket.write(part);
          await new Promise((wait) => setTimeout(wait, 20));
        }
      })().catch(reject);
    });
  });
}

function httpGet(path: string, extra = ''): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${extra}\r\n`);
}

describe('PROXY protocol v2 (SYNC_PROXY_PROTOCOL=1)', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ proxyProtocol: true, rateLimit: { perSecond: 1, burst: 1 } });
  });
  afterAll(async () => node.stop());

  it('serves a connection that starts with a valid header, also when the header arrives in pieces', async () => {
    const header = encodeProxyHeader({ address: '203.0.113.7', port: 40_000 }, { address: '10.0.0.1', port: 443 });
    const whole = await exchange(node.port, [Buffer.concat([header, httpGet('/healthz')])]);
    expect(whole).toMatch(/^HTTP\/1.1 200 OK/);
    expect(whole).toContain('"status":"ok"');
    const pieces = await exchange(node.port, [header.subarray(0, 5), header.subarray(5), httpGet('/healthz')]);
    expect(pieces).toMatch(/^HTTP\/1.1 200 OK/);
  });

  it('refuses a connection without a header, or with a broken one', async () => {
    expect(await exchange(node.port, [httpGet('/healthz')])).toBe('');
    const broken = encodeProxyHeader({ address: '203.0.113.7', port: 1 }, { address: '10.0.0.1', port: 443 });
    broken[12] = 0x31;
    expect(await exchange(node.port, [Buffer.concat([broken, httpGet('/healthz')])])).toBe('');
  });

  it('rate-limits by the address in the header, not the balancer connection', async () => {
    const from = (address: string) => encodeProxyHeader({ address, port: 5000 }, { address: '10.0.0.1', port: 443 });
    const unauthenticated = (address: string) =>
      exchange(node.port, [Buffer.concat([from(address), httpGet('/v1/inbox')])]);
    expect(await unauthenticated('198.51.100.1')).toMatch(/^HTTP\/1.1 401/);
    expect(await unauthenticated('198.51.100.1')).toMatch(/^HTTP\/1.1 429/);
    expect(await unauthenticated('198.51.100.2')).toMatch(/^HTTP\/1.1 401/);
  });
});

describe('parseProxyHeader', () => {
  it('reads IPv4 and IPv6 addresses, LOCAL commands, and waits for missing bytes', () => {
    const v4 = encodeProxyHeader({ address: '192.0.2.10', port: 1234 }, { address: '192.0.2.20', port: 80 });
    expect(parseProxyHeader(v4)).toEqual({
      header: {
        kind: 'proxy',
        source: { address: '192.0.2.10', port: 1234 },
        destination: { address: '192.0.2.20', port: 80 },
      },
      length: 28,
    });
    expect(parseProxyHeader(v4.subarray(0, 20))).toBeUndefined();
    const v6 = Buffer.alloc(16 + 36);
    v4.copy(v6, 0, 0, 12);
    v6[12] = 0x21;
    v6[13] = 0x21;
    v6.writeUInt16BE(36, 14);
    v6[16 + 15] = 1;
    v6.writeUInt16BE(9000, 16 + 32);
    expect(parseProxyHeader(v6)?.header).toMatchObject({ kind: 'proxy', source: { address: '::1', port: 9000 } });
    const local = Buffer.from(v4.subarray(0, 16));
    local[12] = 0x20;
    local.writeUInt16BE(0, 14);
    expect(parseProxyHeader(local)).toEqual({ header: { kind: 'local' }, length: 16 });
    expect(() => parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(ProxyProtocolError);
  });
});
