/**
 * What a client request does in each fence mode (docs in server/README.md, "The flip"):
 * - open: handled here.
 * - fenced: reads are handled here (after reading the fence afresh, so none is served after the
 *   stack began forwarding); a write is held until the fence resolves, then forwarded (the stack
 *   now forwards) or handled here (unfenced, or the lease lapsed). A write still fenced after
 *   `holdMs` is handled here too: the store's fence check refuses it, and server/http/failures.ts
 *   answers that refusal, as it answers every write the store refuses as fenced (503 `fenced`).
 *   The hold never refuses by itself, so a fenced write has one answer, decided by the store.
 * - forwarding: relayed to the stack this one forwards to, streams included.
 * A write's body is read before any of this, so a write the store refuses as fenced (this node's
 * view of the fence was a moment old, or the fence caught the write in the store) is held, for a
 * whole hold from then, and handled again; the store undid whatever it had stored of it.
 */
import { MAX_ITEM_BYTES } from '../../src/navcloud/protocol.ts';
import type { AppContext } from '../http/context.ts';
import { keepBody } from '../http/io.ts';
import type { IncomingCall } from '../http/pipeline.ts';
import { StoreError } from '../store/port.ts';
import type { FenceWatch } from './fence-watch.ts';

export interface HoldOptions {
  /** Longest a write is held through a fence. */
  holdMs: number;
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
    let deadline = Date.now() + this.options.holdMs;
    let caught = false;
    let heldSince: number | undefined;
    const endHold = (outcome: 'forwarded' | 'applied' | 'timed-out') => {
      if (heldSince !== undefined) this.context.metrics.held(outcome, (Date.now() - heldSince) / 1000);
      heldSince = undefined;
    };
    for (;;) {
      let state = await this.watch.current();
      // Reads are served here while fenced, but never after the stack began forwarding.
      if (state.mode === 'fenced' && !write) state = await this.watch.fresh();
      let heldOut = false;
      if (state.mode === 'fenced' && write) {
        heldSince ??= Date.now();
        state = await this.watch.waitWhileFenced(deadline);
        if (state.mode === 'fenced') state = await this.watch.fresh();
        // Held as long as it may be: it goes to the store, whose fence check refuses it (or applies it, had the lease just lapsed).
        heldOut = state.mode === 'fenced';
      }
      if (state.mode === 'forwarding' && state.forwardTo) {
        endHold('forwarded');
        this.context.metrics.forwarded(call.route.name);
        return this.context.forwarder.forward(state.forwardTo, {
          request: call.exchange.request,
          response: call.exchange.response,
          client: call.client,
          body,
          stream: flip === 'stream',
        });
      }
      try {
        await handle();
      } catch (error) {
        const fenced = write && error instanceof StoreError && error.code === 'fenced';
        // This node's view of the fence was behind the store's, or the fence caught the write in the
        // store (on Riak, refused and undone after its object was stored, seconds after it came under
        // load): hold it after all, for a whole hold from now, once (when holds are on at all).
        if (fenced && !heldOut && !caught && this.options.holdMs > 0 && !call.exchange.response.headersSent) {
          caught = true;
          deadline = Math.max(deadline, Date.now() + this.options.holdMs);
          await this.watch.fresh();
          continue;
        }
        endHold(fenced ? 'timed-out' : 'applied');
        throw error;
      }
      endHold('applied');
      // A stream opened here just as the stack began forwarding would stay on this stack: send it over,
      // spread like the others (cutting every stream at once here would undo the spread).
      if (flip === 'stream' && this.watch.peek().mode === 'forwarding')
        this.context.hub.closeAll('forwarding', this.context.config.reconnectSpreadMs);
      return;
    }
  }
}
