/**
 * One sync node put together: its store, bus, stream hub and metrics, the request pipeline in
 * front of the route table, and the listener; then its graceful close. `startServer` is what the
 * `navcloud-sync` bin runs and what tests and the local profile start in-process.
 */
import type { Logger } from '../src/logging.ts';
import { Authenticator } from './auth.ts';
import { openBus } from './bus/open.ts';
import type { EventBus } from './bus/port.ts';
import { defaultConfig, type ServerConfig } from './config.ts';
import { FenceWatch } from './flip/fence-watch.ts';
import { Forwarder } from './flip/forward.ts';
import { HoldOrForward } from './flip/hold.ts';
import type { AppContext, NodeState } from './http/context.ts';
import { requestPipeline } from './http/pipeline.ts';
import { listen } from './listener.ts';
import { Metrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { AckJournal, journalStore } from './store/ack-journal.ts';
import { instrumentStore } from './store/instrumented.ts';
import { openStore } from './store/open.ts';
import type { SyncStore } from './store/port.ts';
import { StreamHub } from './streams.ts';

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  nodeId: string;
  /** Graceful: stop accepting, send reconnect to every stream, finish in-flight requests, close the store. */
  close(): Promise<void>;
}

export interface StartOptions extends Partial<ServerConfig> {
  jwtSecret: string;
  /** The program's logger; the node logs through a child carrying its id. */
  logger: Logger;
  /** An already-open store (tests of other adapters); otherwise `store` is opened. It is closed with the server. */
  storeInstance?: SyncStore;
  busInstance?: EventBus;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const { logger: givenLogger, storeInstance, busInstance, ...overrides } = options;
  const config = defaultConfig(overrides);
  const logger = givenLogger.child({ node: config.nodeId });
  const state: NodeState = { draining: false, shuttingDown: false, startedAt: Date.now() };
  let hub: StreamHub | undefined;
  const forwarder = new Forwarder({ timeoutMs: 30_000, logger });
  const metrics = new Metrics(() => (hub?.size ?? 0) + forwarder.openStreams);
  const opened = storeInstance ?? (await openStore(config.store, logger));
  const journaled = config.ackJournal ? journalStore(opened, AckJournal.open(config.ackJournal)) : opened;
  const store = instrumentStore(journaled, (operation, seconds) => metrics.storeCall(operation, seconds));
  const bus = busInstance ?? (await openBus(config.bus, config.nodeId, logger));
  hub = new StreamHub({
    store,
    bus,
    metrics,
    logger,
    nodeId: config.nodeId,
    heartbeatMs: config.heartbeatMs,
    bufferBytes: config.streamBufferBytes,
    slowStreamMs: config.slowStreamMs,
  });
  const context: AppContext = {
    config,
    store,
    bus,
    hub,
    forwarder,
    metrics,
    logger,
    state,
    announce(seq, users) {
      bus.publish({ seq, users: [...new Set(users)], node: config.nodeId, at: Date.now() });
    },
  };
  const fence = new FenceWatch(store, { pollMs: config.fencePollMs, idleMs: config.fenceIdleMs, logger });
  await fence.start();
  const holdOrForward = new HoldOrForward(context, fence, { holdMs: config.holdMs });
  const handle = requestPipeline({
    context,
    authenticator: new Authenticator(config.jwtSecret),
    limiter: config.rateLimit ? new RateLimiter(config.rateLimit) : undefined,
    dispatch: (call, handleHere) => holdOrForward.dispatch(call, handleHere),
  });
  const listener = await listen(
    { host: config.host, port: config.port, proxyProtocol: config.proxyProtocol, logger },
    handle,
  );
  logger.info(
    {
      url: listener.url,
      store: config.store.replace(/\/\/[^@/]*@/, '//[redacted]@'),
      bus: config.bus.replace(/\/\/[^@/]*@/, '//[redacted]@'),
      heartbeatMs: config.heartbeatMs,
      proxyProtocol: config.proxyProtocol,
    },
    'sync node listening',
  );

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    closing ??= (async () => {
      state.shuttingDown = true;
      state.draining = true;
      const stopped = listener.stopAccepting();
      const streams = hub!.closeAll('shutdown') + forwarder.closeStreams();
      fence.stop();
      await listener.settle(config.shutdownGraceMs);
      await stopped;
      hub!.stop();
      forwarder.close();
      await bus.close();
      await store.close();
      logger.info({ streams, unfinished: listener.inFlight }, 'sync node stopped');
    })();
    return closing;
  }

  return { url: listener.url, port: listener.port, nodeId: config.nodeId, close };
}
