import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket, { type DecodedPacket, type RecordType } from 'dns-packet';

/** The fields of an answer the tests look at, whatever its type. */
export interface PlainAnswer {
  type: string;
  name: string;
  ttl?: number;
  data: unknown;
}

/** One raw DNS query, so tests see the flags, rcode and TTLs a stub resolver would hide. */
export async function dnsQuery(
  host: string,
  port: number,
  name: string,
  type: RecordType,
  transport: 'udp' | 'tcp',
): Promise<DecodedPacket & { rcode?: string }> {
  const id = Math.floor(Math.random() * 65_535);
  const query = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
  });
  const reply = transport === 'udp' ? await overUdp(host, port, query) : await overTcp(host, port, query);
  const decoded = dnsPacket.decode(reply) as DecodedPacket & { rcode?: string };
  if (decoded.id !== id) throw new Error(`reply id ${decoded.id} does not match query id ${id}`);
  return decoded;
}

function overUdp(host: string, port: number, query: Buffer): Promise<Buffer> {
  return new Promise((res, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no UDP answer within 2 s'));
    }, 2_000);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      res(msg);
    });
    socket.send(query, port, host);
  });
}

function overTcp(host: string, port: number, query: Buffer): Promise<Buffer> {
  return new Promise((res, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no TCP answer within 2 s'));
    }, 2_000);
    let buffered = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        clearTimeout(timer);
        socket.destroy();
        res(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      }
    });
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    socket.write(Buffer.concat([length, query]));
  });
}
