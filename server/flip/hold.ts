/**
 * What a client request does in each fence mode (docs in server/README.md, "The flip"):
 * - open: handled here.
 * - fenced: reads are handled here (after reading the fence afresh, so none is served after the
 *   stack began forwarding); a write is held until the fence resolves, then forwarded (the stack
 *   now forwards), handled here (unfenced, or the lease lapsed), or after `holdMs` answered 503
 *   `fenced` with Retry-After and Connection: close.
 * - forwarding: relayed to the stack this one forwards to, streams included.
 * A write's body is read before any of this, so a write the store refuses as fenced (this node's
 * view of the fence was a moment old) is held and handled again, never answered 503 at once.
 */
import { MAX_ITEM_BYTES } from '../../src/navcloud/protocol.ts';
import { ApiError } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { keepBody } from '../http/io.ts';
import type { IncomingCall } from '../http/pipeline.ts';
import { StoreError } from '../store/port.ts';
import type { FenceWatch } from './fence-watch.ts';

export interface HoldOptions {
  /** Longest a write is held through a fence. */
  holdMs: number;
  /** Retry-After (seconds) of a hold that timed out. */
  retryAfterSeconds: number;
}

/** Where each client request is handled while the stack is open, fenced or forwarding (above). */
export class HoldOrForward {
  constructor(
    private readonly context: AppContext,
    private readonly watch: FenceWatch,
    private readonly options: HoldOptions,
  ) {
    watch.onChange((now, before) => {
      if (now.mode === 'forwarding' && (before.mode !== 'forwarding' || now.forwardTo !== before.forwardTo)) {
        const streams = context.hub.closeAll('forwarding', context.config.reconnectSpreadMs);
        context.logger.info({ streams, forwardTo: now.forwardTo }, 'forwarding: local streams told to reconnect');
      }
      if (before.mode === 'forwarding' && (now.mode !== 'forwarding' || now.forwardTo !== before.forwardTo)) {
        context.forwarder.closeStreams(context.config.reconnectSpreadMs);
      }
    });
  }

  /** Runs `handle` (the route's handler) here, or holds, or relays the request instead. */
  async dispatch(call: IncomingCall, handle: () => Promise<void>): Promise<void> {
    const { flip } = call.route;
    if (flip === 'local') return handle();
    const write = flip === 'write';
    const body = write ? await keepBody(call.exchange, MAX_ITEM_BYTES) : undefined;
    const deadline = Date.now() + this.options.holdMs;
    let heldSince: number | undefined;
    for (;;) {
      let state = await this.watch.current();
      // Reads are served here while fenced, but never after the stack began forwarding.
      if (state.mode === 'fenced' && !write) state = await this.watch.fresh();
      if (state.mode === 'fenced' && write) {
        heldSince ??= Date.now();
        state = await this.watch.waitWhileFenced(deadline);
        // A refusal is decided on the store's own word, not on a view that may be a moment old.
        if (state.mode === 'fenced') state = await this.watch.fresh();
        if (state.mode === 'fenced') {
          this.context.metrics.held('timed-out', (Date.now() - heldSince) / 1000);
          throw new ApiError(503, 'fenced', `writes were held ${this.options.holdMs} ms while the service switches stacks: retry shortly`, {
            'retry-after': String(this.options.retryAfterSeconds),
            connection: 'close',
          });
        }
      }
      if (heldSince !== undefined) {
        this.context.metrics.held(state.mode === 'forwarding' ? 'forwarded' : 'applied', (Date.now() - heldSince) / 1000);
        heldSince = undefined;
      }
      if (state.mode === 'forwarding' && state.forwardTo) {
        this.context.metrics.forwarded(call.route.name);
        return this.context.forwarder.forward(state.forwardTo, { request: call.exchange.request, response: call.exchange.response, client: call.client, body, stream: flip === 'stream' });
      }
      try {
        await handle();
      } catch (error) {
        // This node's view of the fence was behind the store's: hold the write after all.
        if (write && error instanceof StoreError && error.code === 'fenced' && !call.exchange.response.headersSent && Date.now() < deadline) {
          await this.watch.fresh();
          continue;
        }
        throw error;
      }
      // A stream opened here just as the stack began forwarding would stay on this stack: send it over,
      // spread like the others (cutting every stream at once here would undo the spread).
      if (flip === 'stream' && this.watch.peek().mode === 'forwarding') this.context.hub.closeAll('forwarding', this.context.config.reconnectSpreadMs);
      return;
    }
  }
}
