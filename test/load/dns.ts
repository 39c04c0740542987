/**
 * A tiny authoritative DNS server on loopback UDP for one name, which a test can repoint: what the
 * local profile's responder does for a switch, without moto behind it.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';

export interface TestDns {
  host: string;
  port: number;
  /** A queries answered so far. */
  readonly queries: number;
  point(addresses: string[]): void;
  close(): Promise<void>;
}

export async function startTestDns(name: string, addresses: string[], ttlSeconds: number): Promise<TestDns> {
  const socket = createSocket('udp4');
  let current = addresses;
  let queries = 0;
  socket.on('message', (message, peer) => {
    let query;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    const known = question?.name.toLowerCase() === name.toLowerCase();
    if (known && question?.type === 'A') queries++;
    const answers =
      known && question?.type === 'A'
        ? current.map((address) => ({
            type: 'A' as const,
            class: 'IN' as const,
            name: question.name,
            ttl: ttlSeconds,
            data: address,
          }))
        : [];
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      // The low four bits are the RCODE: 3 is NXDOMAIN.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3),
      questions: query.questions,
      answers,
    });
    socket.send(response, peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    host: '127.0.0.1',
    port: socket.address().port,
    get queries() {
      return queries;
    },
    point(next) {
      current = next;
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
