/**
 * PROXY protocol v2, as the Network Load Balancer sends it when enabled: a binary header before
 * the first HTTP byte carrying the client's address. It is read off the raw socket; the rest of
 * the bytes go back to the socket for the HTTP parser. In this mode a connection without a valid
 * header is refused, since its client address could not be trusted.
 */
import type { Socket } from 'node:net';

export const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FIXED = 16;
/** Anything larger than this is not a header a load balancer sends. */
const MAX_HEADER = 16 + 536;

export interface ProxiedAddress {
  address: string;
  port: number;
}

export type ProxyHeader =
  | { kind: 'proxy'; source: ProxiedAddress; destination: ProxiedAddress }
  /** LOCAL (health checks of the balancer itself) or an address family we do not route: use the socket's own address. */
  | { kind: 'local' };

export class ProxyProtocolError extends Error {
  override name = 'ProxyProtocolError';
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Parses a complete header; `undefined` when more bytes are needed. Returns the header's length too. */
export function parseProxyHeader(buffer: Buffer): { header: ProxyHeader; length: number } | undefined {
  const prefix = Math.min(buffer.length, SIGNATURE.length);
  if (!buffer.subarray(0, prefix).equals(SIGNATURE.subarray(0, prefix)))
    throw new ProxyProtocolError('connection did not start with a PROXY protocol v2 signature');
  if (buffer.length < FIXED) return undefined;
  const versionCommand = buffer[12]!;
  if (versionCommand >> 4 !== 2)
    throw new ProxyProtocolError(`PROXY protocol version ${versionCommand >> 4} is not supported (expected 2)`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`PROXY protocol command ${command} is unknown`);
  const familyProtocol = buffer[13]!;
  const length = buffer.readUInt16BE(14);
  if (FIXED + length > MAX_HEADER)
    throw new ProxyProtocolError(`PROXY protocol header of ${FIXED + length} bytes is too long`);
  if (buffer.length < FIXED + length) return undefined;
  const body = buffer.subarray(FIXED, FIXED + length);
  if (command === 0) return { header: { kind: 'local' }, length: FIXED + length };
  const family = familyProtocol >> 4;
  if (family === 1) {
    if (length < 12) throw new ProxyProtocolError('PROXY protocol IPv4 address block is shorter than 12 bytes');
    return {
      header: {
        kind: 'proxy',
        source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) },
        destination: { address: [...body.subarray(4, 8)].join('.'), port: body.readUInt16BE(10) },
      },
      length: FIXED + length,
    };
  }
  if (family === 2) {
    if (length < 36) throw new ProxyProtocolError('PROXY protocol IPv6 address block is shorter than 36 bytes');
    return {
      header: {
        kind: 'proxy',
        source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) },
        destination: { address: ipv6(body.subarray(16, 32)), port: body.readUInt16BE(34) },
      },
      length: FIXED + length,
    };
  }
  return { header: { kind: 'local' }, length: FIXED + length };
}

/** Builds a PROXY v2 header for an IPv4 TCP connection, as the balancer sends it (for clients that stand in for one). */
export function encodeProxyHeader(source: ProxiedAddress, destination: ProxiedAddress): Buffer {
  const header = Buffer.alloc(FIXED + 12);
  SIGNATURE.copy(header, 0);
  header[12] = 0x21;
  header[13] = 0x11;
  header.writeUInt16BE(12, 14);
  source.address.split('.').forEach((octet, i) => (header[FIXED + i] = Number(octet)));
  destination.address.split('.').forEach((octet, i) => (header[FIXED + 4 + i] = Number(octet)));
  header.writeUInt16BE(source.port, FIXED + 8);
  header.writeUInt16BE(destination.port, FIXED + 10);
  return header;
}

/**
 * Reads the header off a fresh socket, then hands the socket on with any bytes read past it put
 * back. Destroys the socket when the header is invalid or does not arrive within `timeoutMs`.
 */
export function acceptProxied(
  socket: Socket,
  timeoutMs: number,
  onReady: (header: ProxyHeader) => void,
  onRefused: (reason: string) => void,
): void {
  let received = Buffer.alloc(0);
  const refuse = (reason: string) => {
    cleanup();
    onRefused(reason);
    socket.destroy();
  };
  const timer = setTimeout(() => refuse(`no PROXY protocol header within ${timeoutMs} ms`), timeoutMs);
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    let parsed;
    try {
      parsed = parseProxyHeader(received);
    } catch (error) {
      refuse((error as Error).message);
      return;
    }
    if (!parsed) return;
    cleanup();
    socket.pause();
    const rest = received.subarray(parsed.length);
    if (rest.length > 0) socket.unshift(rest);
    onReady(parsed.header);
    socket.resume();
  };
  const onClose = () => cleanup();
  function cleanup() {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
  }
  socket.on('data', onData);
  socket.on('close', onClose);
  socket.on('error', () => undefined);
}
