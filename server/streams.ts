/**
 * The node's open streams (GET /v1/stream). A stream is a cursor and a socket: bus events only
 * wake it, and it then reads the store after its cursor, so a late or lost event delays a change
 * but never drops or repeats one. Heartbeats come from one shared wheel. A client that stops
 * reading is not buffered for: a stream loads and queues at most a bound of unsent bytes (or one
 * larger message), then waits for the client; if it waits too long it is cut off with `reconnect`.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../src/logging.ts';
import type { StreamMessage } from '../src/navcloud/protocol.ts';
import type { ChangeEvent, EventBus } from './bus/port.ts';
import { HeartbeatWheel, type WheelMember } from './heartbeat-wheel.ts';
import { spreadOver } from './spread.ts';
import type { Metrics } from './metrics.ts';
import { StoreError, type SyncStore } from './store/port.ts';
import { streamMessageOf } from './wire.ts';

const PAGE = 200;
/** Lines are sent in chunks of about this many characters. */
const CHUNK_CHARS = 64 * 1024;
/** A reconnect still stuck behind a full buffer is given this long before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
const STORE_RETRY_MS = 1000;

interface Stream extends WheelMember {
  user: string;
  cursor: number;
  response: ServerResponse;
  /** Lines go to the socket as ready-made chunks (see frame()); only the end goes through the response. */
  socket: Socket;
  reading: boolean;
  /** Woken while reading: read again before going idle. */
  woken: boolean;
  closed: boolean;
  /** Since when the stream has been waiting for the client to take its unsent bytes. */
  congestedSince: number | undefined;
  /** Resolves a read waiting for the socket to drain. */
  drained: (() => void) | undefined;
}

/**
 * One HTTP/1.1 chunk holding `text`. Streams write these straight to the socket: the heartbeat
 * chunk is built once per tick and shared by every stream beating in it, which saves 20,000
 * streams a string encoding and a three-part write each per heartbeat.
 */
function frame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  return Buffer.from(`${length.toString(16)}\r\n${text}\r\n`);
}

export interface StreamHubOptions {
  store: SyncStore;
  bus: EventBus;
  metrics: Metrics;
  logger: Logger;
  nodeId: string;
  heartbeatMs: number;
  bufferBytes: number;
  slowStreamMs: number;
}

export class StreamHub {
  private readonly byUser = new Map<string, Set<Stream>>();
  private readonly wheel: HeartbeatWheel<Stream>;
  private readonly unsubscribe: Array<() => void>;
  private count = 0;
  private heartbeatAt = -1;
  private heartbeatChunk: Buffer = Buffer.alloc(0);

  constructor(private readonly options: StreamHubOptions) {
    this.wheel = new HeartbeatWheel(options.heartbeatMs, (stream, lag, now) => this.heartbeat(stream, lag, now));
    this.wheel.start();
    this.unsubscribe = [
      options.bus.subscribe((event) => this.onChange(event)),
      options.bus.onResync(() => this.wakeAll()),
    ];
  }

  get size(): number {
    return this.count;
  }

  /** Streams `user` holds open on this node. */
  streamsOf(user: string): number {
    return this.byUser.get(user)?.size ?? 0;
  }

  /** Takes over a response whose headers are not sent yet; `since` was checked against the store. */
  open(user: string, since: number, response: ServerResponse): void {
    const socket = response.socket;
    if (!socket || socket.destroyed) return;
    response.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    response.flushHeaders();
    socket.setNoDelay(true);
    const stream: Stream = {
      user,
      cursor: since,
      response,
      socket,
      reading: false,
      woken: false,
      closed: false,
      congestedSince: undefined,
      drained: undefined,
      wheelSlot: undefined,
    };
    response.on('close', () => this.forget(stream));
    let peers = this.byUser.get(user);
    if (!peers) this.byUser.set(user, (peers = new Set()));
    peers.add(stream);
    this.count++;
    this.wheel.add(stream);
    this.wake(stream);
  }

  /**
   * Sends `reconnect` to every stream and closes them (drain, forward, shutdown), all at once or
   * spread evenly over `spreadMs` (server/spread.ts says why). Returns how many it closes.
   */
  closeAll(reason: string, spreadMs = 0): number {
    const streams = [...this.byUser.values()].flatMap((peers) => [...peers]);
    spreadOver(streams, spreadMs, (stream) => this.cut(stream, reason));
    return streams.length;
  }

  stop(): void {
    this.wheel.stop();
    for (const unsubscribe of this.unsubscribe) unsubscribe();
  }

  private onChange(event: ChangeEvent): void {
    if (event.at !== undefined) this.options.metrics.busEvent(Math.max(0, Date.now() - event.at) / 1000);
    for (const user of event.users) {
      const peers = this.byUser.get(user);
      if (!peers) continue;
      for (const stream of peers) if (event.seq > stream.cursor) this.wake(stream);
    }
  }

  private wakeAll(): void {
    for (const peers of this.byUser.values()) for (const stream of peers) this.wake(stream);
  }

  private wake(stream: Stream): void {
    if (stream.closed) return;
    if (stream.reading) {
      stream.woken = true;
      return;
    }
    stream.reading = true;
    void this.read(stream).finally(() => {
      stream.reading = false;
    });
  }

  private async read(stream: Stream): Promise<void> {
    do {
      stream.woken = false;
      const next = await this.sendPage(stream);
      if (next === 'stop' || stream.closed) return;
      if (next === 'wait') {
        // Read no further until the client catches up; the heartbeat wheel cuts it off if it never does.
        await new Promise<void>((resolve) => {
          stream.drained = resolve;
          stream.socket.once('drain', resolve);
        });
        stream.drained = undefined;
        if (stream.closed) return;
      }
    } while (stream.woken);
  }

  /**
   * Loads what the socket has room for after the stream's cursor and sends it. Its own frame, so
   * the page and its text are garbage by the time a stream waits for a slow client.
   * 'wait': the rest waits for the client to take what is buffered; 'stop': the read ends here.
   */
  private async sendPage(stream: Stream): Promise<'go' | 'wait' | 'stop'> {
    const bound = this.options.bufferBytes;
    // Only what the socket has room for is loaded: more would sit in memory for a slow client.
    const room = Math.max(1, bound - stream.socket.writableLength);
    let changes;
    try {
      changes = await this.options.store.changes(stream.user, stream.cursor, PAGE, room);
    } catch (error) {
      if (error instanceof StoreError && error.code === 'cursor-gone') {
        // The store went back in time under this stream (a restore): the client must start over.
        this.cut(stream, 'cursor-gone');
        return 'stop';
      }
      this.options.logger.warn({ err: error, user: stream.user }, 'stream could not read the store; retrying');
      setTimeout(() => this.wake(stream), STORE_RETRY_MS).unref();
      return 'stop';
    }
    if (stream.closed) return 'stop';
    let chunk = '';
    let sent = 0;
    let written = 0;
    let full = false;
    for (const change of changes) {
      const line = `${JSON.stringify(streamMessageOf(change, stream.user))}\n`;
      // Unsent bytes stay within the bound, except for a page's first message (a stream always moves):
      // a client that stops reading costs the node its bound, or one larger message, at most.
      if (sent > 0 && stream.socket.writableLength + chunk.length + line.length > bound) {
        full = true;
        break;
      }
      chunk += line;
      stream.cursor = change.seq;
      sent++;
      if (chunk.length >= CHUNK_CHARS) {
        const framed = frame(chunk);
        written += framed.length;
        stream.socket.write(framed);
        chunk = '';
      }
    }
    if (chunk) {
      const framed = frame(chunk);
      written += framed.length;
      stream.socket.write(framed);
    }
    // A page the store cut by size holds at least `room` bytes of data, so at least that much was written.
    if (full || changes.length === PAGE || written >= room) stream.woken = true;
    // Without a pending drain, the next page's first message goes out regardless.
    return stream.woken && stream.socket.writableNeedDrain && (full || stream.socket.writableLength > bound)
      ? 'wait'
      : 'go';
  }

  private heartbeat(stream: Stream, lagMs: number, now: number): void {
    if (stream.closed) return;
    // Congested: waiting for the client to take what is buffered before sending more.
    if (stream.drained !== undefined || stream.socket.writableLength > this.options.bufferBytes) {
      stream.congestedSince ??= now;
      if (now - stream.congestedSince >= this.options.slowStreamMs) this.cut(stream, 'slow-reader');
      return;
    }
    stream.congestedSince = undefined;
    if (now !== this.heartbeatAt) {
      // One serialisation per tick serves every stream beating in it.
      this.heartbeatAt = now;
      const message: StreamMessage = { type: 'heartbeat', at: new Date(now).toISOString(), node: this.options.nodeId };
      this.heartbeatChunk = frame(`${JSON.stringify(message)}\n`);
    }
    stream.socket.write(this.heartbeatChunk);
    this.options.metrics.heartbeat(lagMs / 1000);
  }

  private cut(stream: Stream, reason: string): void {
    if (stream.closed) return;
    const message: StreamMessage = { type: 'reconnect', reason };
    this.forget(stream);
    this.options.metrics.streamCut(reason);
    const { response } = stream;
    response.end(`${JSON.stringify(message)}\n`);
    const force = setTimeout(() => response.destroy(), CLOSE_GRACE_MS);
    force.unref();
    response.once('close', () => clearTimeout(force));
  }

  private forget(stream: Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.wheel.remove(stream);
    const peers = this.byUser.get(stream.user);
    peers?.delete(stream);
    if (peers?.size === 0) this.byUser.delete(stream.user);
    this.count--;
    const resume = stream.drained;
    stream.drained = undefined;
    resume?.();
  }
}
