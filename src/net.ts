import { createSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Binds TCP host:port (0: any free port) and lets go again: the port bound, or the bind error. */
function bindTcp(host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A port the kernel says is free on `host` right now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return bindTcp(host, 0);
}

/** True when both TCP and UDP can bind host:port right now (a DNS responder needs both). */
export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  const tcp = await bindTcp(host, port).then(
    () => true,
    () => false,
  );
  const udp = await new Promise<boolean>((res) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      res(false);
    });
    socket.bind(port, host, () => socket.close(() => res(true)));
  });
  return tcp && udp;
}

/** Resolves once something accepts TCP connections on host:port, or rejects after timeoutMs. */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  what = `${host}:${port}`,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        res(true);
      });
      socket.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not accept connections within ${timeoutMs} ms`);
    await sleep(100);
  }
}
