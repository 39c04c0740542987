/**
 * This node's view of the stack's fence (the store holds it for every node). Requests read a
 * cached copy at most `pollMs` old, so a busy node reads the store at most once per `pollMs`
 * and an idle one not at all for requests. A timer refreshes it too, every `pollMs` while the
 * stack is fenced or a request waits on it (a held write learns within `pollMs` that the store
 * now forwards or opened again: unfenced, or its lease lapsed) and every `idleMs` otherwise (so
 * open streams learn that the stack forwards even when no request comes).
 */
import type { Logger } from '../../src/logging.ts';
import type { FenceState, SyncStore } from '../store/port.ts';

export interface FenceWatchOptions {
  /** Refresh interval while fenced or while requests wait (about 25 ms). */
  pollMs: number;
  /** Refresh interval otherwise. */
  idleMs: number;
  logger: Logger;
}

type Listener = (now: FenceState, before: FenceState) => void;

interface Waiter {
  resolve: (state: FenceState) => void;
  timer: NodeJS.Timeout;
}

export class FenceWatch {
  private state: FenceState = { mode: 'open', epoch: 0, seq: 0 };
  private fetchedAt = 0;
  private fetching: Promise<FenceState> | undefined;
  /** Reads of the store started so far. */
  private started = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The timer runs on `pollMs`. */
  private polling = false;
  private stopped = false;
  private readonly waiters = new Set<Waiter>();
  private readonly listeners: Listener[] = [];

  constructor(
    private readonly store: Pick<SyncStore, 'fenceState'>,
    private readonly options: FenceWatchOptions,
  ) {}

  /** Reads the fence once and keeps it fresh from then on; a node whose store is down still starts (and answers 503). */
  async start(): Promise<void> {
    await this.refresh().catch((error: unknown) =>
      this.options.logger.warn({ err: error }, 'could not read the fence at start; requests will try again'),
    );
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const waiter of [...this.waiters]) this.release(waiter);
  }

  /** The fence as read at most `pollMs` ago. */
  async current(): Promise<FenceState> {
    if (Date.now() - this.fetchedAt <= this.options.pollMs) return this.state;
    return this.refresh();
  }

  /**
   * The fence as read by a store read that started after this call: what a read served while
   * fenced needs, so it never misses a forward (and the writes the new stack took since) that
   * committed before it arrived.
   */
  async fresh(): Promise<FenceState> {
    const mark = this.started;
    for (;;) {
      if (this.fetching && this.started > mark) return this.fetching;
      if (!this.fetching) return this.refresh();
      await this.fetching.catch(() => undefined);
    }
  }

  /** The cached fence, however old. */
  peek(): FenceState {
    return this.state;
  }

  /** Reads the store now (one read at a time, shared by every caller). */
  refresh(): Promise<FenceState> {
    if (this.fetching) return this.fetching;
    this.started++;
    this.fetching = this.store
      .fenceState()
      .then((state) => {
        this.fetchedAt = Date.now();
        this.apply(state);
        return state;
      })
      .finally(() => {
        this.fetching = undefined;
      });
    return this.fetching;
  }

  /** Resolves with the fence once it is no longer 'fenced', or with it as it is at `deadline`. */
  waitWhileFenced(deadline: number): Promise<FenceState> {
    if (this.state.mode !== 'fenced' || this.stopped) return Promise.resolve(this.state);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => this.release(waiter), Math.max(0, deadline - Date.now())),
      };
      this.waiters.add(waiter);
      // The timer may be on the idle interval: switch to polling now.
      if (!this.polling) this.schedule();
    });
  }

  /** Called on every change of mode or forward target, after the cache holds the new state. */
  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  private apply(state: FenceState): void {
    const before = this.state;
    this.state = state;
    if (state.mode === before.mode && state.forwardTo === before.forwardTo) return;
    this.options.logger.info(
      {
        mode: state.mode,
        was: before.mode,
        epoch: state.epoch,
        forwardTo: state.forwardTo,
        leaseLeftMs: state.leaseLeftMs,
      },
      'fence changed',
    );
    // Held requests first: they are released before anything else sees the change.
    if (state.mode !== 'fenced') for (const waiter of [...this.waiters]) this.release(waiter);
    for (const listener of this.listeners) listener(state, before);
  }

  private release(waiter: Waiter): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    waiter.resolve(this.state);
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.polling = this.state.mode === 'fenced' || this.waiters.size > 0;
    this.timer = setTimeout(
      () => {
        this.refresh().then(
          () => this.schedule(),
          (error: unknown) => {
            this.options.logger.warn({ err: error }, 'could not read the fence; keeping the last state read');
            this.schedule();
          },
        );
      },
      this.polling ? this.options.pollMs : this.options.idleMs,
    );
    this.timer.unref();
  }
}
