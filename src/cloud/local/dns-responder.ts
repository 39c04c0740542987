import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Question, type RecordType } from 'dns-packet';
import {
  ListHostedZonesCommand,
  ListResourceRecordSetsCommand,
  type ListResourceRecordSetsCommandOutput,
  type ResourceRecordSet,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import type { Logger } from '../../logging.ts';

/**
 * Real DNS (UDP and TCP) for the hosted zones Route53 keeps — in the local profile, moto's. A
 * switch changes the record in Route53 through the real adapter, and clients resolving through
 * this responder follow it with the record's own TTL, as they would follow Route53's name servers.
 */
export interface DnsResponderOptions {
  route53: Route53Client;
  host?: string;
  /** 0 (the default) picks a free port; UDP and TCP share it. */
  port?: number;
  /** How long a copy of the zones is served before Route53 is asked again. */
  cacheMs?: number;
  logger: Logger;
}

export interface DnsResponder {
  host: string;
  port: number;
  /** `host:port`, as node's dns Resolver#setServers takes it. */
  address: string;
  close(): Promise<void>;
}

interface Zone {
  /** Lower case, no trailing dot. */
  name: string;
  records: ResourceRecordSet[];
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const QUERY_FLAG_RD = dnsPacket.RECURSION_DESIRED;
const UDP_LIMIT = 512;

export async function startDnsResponder(options: DnsResponderOptions): Promise<DnsResponder> {
  const host = options.host ?? '127.0.0.1';
  const log = options.logger.child({ component: 'dns-responder' });
  const zones = new ZoneCache(options.route53, options.cacheMs ?? 100);
  const answer = (query: Buffer, udp: boolean) => respond(zones, query, udp, log);

  // With port 0 the kernel picks the UDP port; TCP must then get the same one, which a rare
  // race can take: try a few times.
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(host, options.port ?? 0, answer, log);
    const port = udp.address().port;
    try {
      const tcp = await listenTcp(host, port, answer, log);
      log.info({ host, port }, 'DNS responder listening (UDP and TCP)');
      return {
        host,
        port,
        address: `${host}:${port}`,
        close: async () => {
          await new Promise<void>((res) => udp.close(() => res()));
          await tcp.close();
        },
      };
    } catch (err) {
      udp.close();
      if (options.port || attempt >= 5) throw err;
    }
  }
}

function bindUdp(
  host: string,
  port: number,
  answer: (q: Buffer, udp: boolean) => Promise<Buffer | undefined>,
  log: Logger,
): Promise<UdpSocket> {
  return new Promise((res, reject) => {
    const socket = createSocket('udp4');
    socket.on('message', (msg, peer) => {
      answer(msg, true).then(
        (reply) => {
          if (reply) socket.send(reply, peer.port, peer.address);
        },
        (err: unknown) => log.error({ err }, 'DNS answer failed'),
      );
    });
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', (err) => log.error({ err }, 'DNS UDP socket error'));
      res(socket);
    });
  });
}

function listenTcp(
  host: string,
  port: number,
  answer: (q: Buffer, udp: boolean) => Promise<Buffer | undefined>,
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      // Each message is prefixed by its 2-byte length (RFC 1035 §4.2.2); answer every whole one.
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        answer(message, false).then(
          (reply) => {
            if (!reply || socket.destroyed) return;
            const length = Buffer.alloc(2);
            length.writeUInt16BE(reply.length);
            socket.write(Buffer.concat([length, reply]));
          },
          (err: unknown) => log.error({ err }, 'DNS answer failed'),
        );
      }
    });
  });
  // Closing must not wait for a client that keeps its connection open.
  const close = () =>
    new Promise<void>((res) => {
      for (const socket of connections) socket.destroy();
      server.close(() => res());
    });
  return new Promise((res, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      res({ close });
    });
  });
}

/** The reply to one query, or undefined for bytes that are not a DNS query at all. */
async function respond(zones: ZoneCache, query: Buffer, udp: boolean, log: Logger): Promise<Buffer | undefined> {
  let request: DecodedPacket;
  try {
    request = dnsPacket.decode(query);
  } catch {
    // Only a readable id lets the client match a FORMERR to its question.
    return query.length >= 2 ? reply(query.readUInt16BE(0), 0, [], RCODE.FORMERR) : undefined;
  }
  if (request.type !== 'query') return undefined;
  const opcode = ((request.flags ?? 0) >> 11) & 0xf;
  const questions = request.questions ?? [];
  if (opcode !== 0) return reply(request.id ?? 0, request.flags ?? 0, questions, RCODE.NOTIMP);
  if (questions.length !== 1) return reply(request.id ?? 0, request.flags ?? 0, questions, RCODE.FORMERR);

  let snapshot: Zone[];
  try {
    snapshot = await zones.get();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot read the hosted zones; answering SERVFAIL');
    return reply(request.id ?? 0, request.flags ?? 0, questions, RCODE.SERVFAIL);
  }
  const { rcode, answers, authorities } = lookup(snapshot, questions[0]!);
  const encoded = reply(request.id ?? 0, request.flags ?? 0, questions, rcode, answers, authorities);
  if (!udp || encoded.length <= UDP_LIMIT) return encoded;
  // Too big for plain UDP: the client must ask again over TCP.
  return reply(request.id ?? 0, (request.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, questions, rcode);
}

function reply(
  id: number,
  queryFlags: number,
  questions: Question[],
  rcode: number,
  answers: Answer[] = [],
  authorities: Answer[] = [],
): Buffer {
  const flags = (queryFlags & (QUERY_FLAG_RD | dnsPacket.TRUNCATED_RESPONSE)) | dnsPacket.AUTHORITATIVE_ANSWER | rcode;
  return dnsPacket.encode({ type: 'response', id, flags, questions, answers, authorities });
}

function lookup(zones: Zone[], question: Question): { rcode: number; answers: Answer[]; authorities: Answer[] } {
  const qname = normalise(question.name);
  const zone = zones
    .filter((z) => qname === z.name || qname.endsWith(`.${z.name}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
  if (!zone) return { rcode: RCODE.REFUSED, answers: [], authorities: [] };

  const atName = zone.records.filter((r) => normalise(r.Name ?? '') === qname);
  const soa = zone.records.find((r) => r.Type === 'SOA' && normalise(r.Name ?? '') === zone.name);
  const negative = soa ? toAnswers(soa, question.name).map((a) => ({ ...a, name: zone.name })) : [];
  if (!atName.length) {
    // A name with records below it exists (an empty non-terminal): no data, but not NXDOMAIN.
    const below = zone.records.some((r) => normalise(r.Name ?? '').endsWith(`.${qname}`));
    return { rcode: below ? RCODE.NOERROR : RCODE.NXDOMAIN, answers: [], authorities: negative };
  }
  const cname = atName.find((r) => r.Type === 'CNAME');
  const matching =
    cname && question.type !== 'CNAME'
      ? [cname]
      : atName.filter((r) => r.Type === question.type || (question.type as string) === 'ANY');
  const answers = matching.flatMap((r) => toAnswers(r, question.name));
  return { rcode: RCODE.NOERROR, answers, authorities: answers.length ? [] : negative };
}

const SUPPORTED = ['A', 'AAAA', 'CNAME', 'NS', 'TXT', 'MX', 'SOA', 'PTR'] as const satisfies readonly RecordType[];
type SupportedType = (typeof SUPPORTED)[number];
const isSupported = (type: string | undefined): type is SupportedType =>
  (SUPPORTED as readonly (string | undefined)[]).includes(type);

/** Route53 keeps values as zone-file text; dns-packet wants them structured. */
function toAnswers(record: ResourceRecordSet, name: string): Answer[] {
  const type = record.Type;
  // Alias records have no values of their own; the local profile never writes one.
  if (!isSupported(type) || !record.ResourceRecords) return [];
  const ttl = Number(record.TTL ?? 0);
  return record.ResourceRecords.flatMap((rr): Answer[] => {
    const value = rr.Value ?? '';
    switch (type) {
      case 'TXT':
        return [{ type, name, ttl, class: 'IN', data: txtStrings(value) }];
      case 'MX': {
        const [preference, exchange] = value.trim().split(/\s+/);
        return [
          {
            type,
            name,
            ttl,
            class: 'IN',
            data: { preference: Number(preference), exchange: normalise(exchange ?? '') },
          },
        ];
      }
      case 'SOA': {
        const [mname, rname, serial, refresh, retry, expire, minimum] = value.trim().split(/\s+/);
        return [
          {
            type,
            name,
            ttl,
            class: 'IN',
            data: {
              mname: normalise(mname ?? ''),
              rname: normalise(rname ?? ''),
              serial: Number(serial),
              refresh: Number(refresh),
              retry: Number(retry),
              expire: Number(expire),
              minimum: Number(minimum),
            },
          },
        ];
      }
      case 'A':
      case 'AAAA':
        return [{ type, name, ttl, class: 'IN', data: value.trim() }];
      case 'CNAME':
      case 'NS':
      case 'PTR':
        return [{ type, name, ttl, class: 'IN', data: normalise(value) }];
    }
  });
}

/** `"a b" "c"` → ['a b', 'c'] (zone-file character strings, with \" and \\ escapes). */
function txtStrings(value: string): string[] {
  const strings = [...value.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  return strings.length ? strings : [value];
}

/** Lower case, no trailing dot, Route53's \NNN octal escapes decoded (it writes '*' as \052). */
function normalise(name: string): string {
  return name
    .replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
    .replace(/\.$/, '')
    .toLowerCase();
}

/**
 * All hosted zones with their records, re-read at most every `ttlMs`; concurrent queries share
 * one read, so a burst of lookups costs Route53 one round of calls.
 */
class ZoneCache {
  private snapshot?: { at: number; zones: Zone[] };
  private inflight?: Promise<Zone[]>;

  constructor(
    private readonly route53: Route53Client,
    private readonly ttlMs: number,
  ) {}

  get(): Promise<Zone[]> {
    if (this.snapshot && Date.now() - this.snapshot.at < this.ttlMs) return Promise.resolve(this.snapshot.zones);
    this.inflight ??= this.load()
      .then((zones) => {
        this.snapshot = { at: Date.now(), zones };
        return zones;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async load(): Promise<Zone[]> {
    const zones: Zone[] = [];
    let marker: string | undefined;
    do {
      const page = await this.route53.send(new ListHostedZonesCommand({ Marker: marker }));
      for (const hz of page.HostedZones ?? []) {
        if (hz.Config?.PrivateZone) continue;
        zones.push({ name: normalise(hz.Name ?? ''), records: await this.records(hz.Id!) });
      }
      marker = page.IsTruncated ? page.NextMarker : undefined;
    } while (marker);
    return zones;
  }

  private async records(zoneId: string): Promise<ResourceRecordSet[]> {
    const records: ResourceRecordSet[] = [];
    let next: { name?: string; type?: string; id?: string } | undefined = {};
    while (next) {
      const page: ListResourceRecordSetsCommandOutput = await this.route53.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          StartRecordName: next.name,
          StartRecordType: next.type as never,
          StartRecordIdentifier: next.id,
        }),
      );
      records.push(...(page.ResourceRecordSets ?? []));
      next = page.IsTruncated
        ? { name: page.NextRecordName, type: page.NextRecordType, id: page.NextRecordIdentifier }
        : undefined;
    }
    return records;
  }
}
