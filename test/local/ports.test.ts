import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { freePort, portFree } from '../../src/net.ts';

describe('ports', () => {
  it('finds a free port, and says a port is taken while TCP or UDP holds it', async () => {
    const port = await freePort();
    expect(await portFree(port)).toBe(true);

    const tcp = createServer().listen({ host: '127.0.0.1', port });
    await once(tcp, 'listening');
    try {
      expect(await portFree(port)).toBe(false);
    } finally {
      tcp.close();
    }

    const udp = createSocket('udp4');
    udp.bind(port, '127.0.0.1');
    await once(udp, 'listening');
    try {
      expect(await portFree(port)).toBe(false);
    } finally {
      udp.close();
    }
  });
});
