/** What every handler of one node works with. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../src/logging.ts';
import type { Principal } from '../auth.ts';
import type { EventBus } from '../bus/port.ts';
import type { ServerConfig } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import type { SyncStore } from '../store/port.ts';
import type { StreamHub } from '../streams.ts';
import type { Forwarder } from '../flip/forward.ts';

export interface NodeState {
  draining: boolean;
  shuttingDown: boolean;
  startedAt: number;
}

export interface AppContext {
  config: ServerConfig;
  store: SyncStore;
  bus: EventBus;
  hub: StreamHub;
  /** Requests and streams relayed to the stack this one forwards to. */
  forwarder: Forwarder;
  metrics: Metrics;
  logger: Logger;
  state: NodeState;
  /** Tells every node's streams (through the bus) that these users' feeds moved to `seq`. */
  announce(seq: number, users: Iterable<string>): void;
}

export interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  principal: Principal;
  /** Path parameters, in pattern order. */
  params: string[];
  query: URLSearchParams;
  /**
   * The whole body once read (io.ts `keepBody`): a write held through a fence has its body read
   * before it waits, and its handler, run once or again, reads it from here.
   */
  body?: Buffer;
}

export type Handler = (context: AppContext, exchange: Exchange) => Promise<void>;
