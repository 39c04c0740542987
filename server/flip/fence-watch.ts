/**
 * This node's view of the stack's fence (the store holds it for every node). Requests read a
 * cached copy, never the store: a timer refreshes it, every `idleMs` while the stack is open or
 * forwarding and every `pollMs` while it is fenced or a request waits on it, so a held write
 * learns within `pollMs` that the store now forwards or opened again (unfenced, or its lease lapsed).
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
  private state: FenceState = { mode: 'open', seq: 0 };
  private fetchedAt = 0;
  private fetching: Promise<FenceState> | undefined;
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

  /** Reads the fence once and keeps it fresh from then on. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const waiter of [...this.waiters]) this.release(waiter);
  }

  /** The fence as last read; read again first when the timer has fallen behind (a busy event loop). */
  async current(): Promise<FenceState> {
    if (Date.now() - this.fetchedAt <= 2 * this.options.idleMs) return this.state;
    return this.refresh();
  }

  /** The cached fence, however old. */
  peek(): FenceState {
    return this.state;
  }

  /** Reads the store now (one read at a time, shared by every caller). */
  refresh(): Promise<FenceState> {
    this.fetching ??= this.store.fenceState()
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
      const waiter: Waiter = { resolve, timer: setTimeout(() => this.release(waiter), Math.max(0, deadline - Date.now())) };
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
    this.options.logger.info({ mode: state.mode, was: before.mode, forwardTo: state.forwardTo, leaseExpiresAt: state.leaseExpiresAt }, 'fence changed');
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
    this.timer = setTimeout(() => {
      this.refresh().then(
        () => this.schedule(),
        (error: unknown) => {
          this.options.logger.warn({ err: error }, 'could not read the fence; keeping the last state read');
          this.schedule();
        },
      );
    }, this.polling ? this.options.pollMs : this.options.idleMs);
    this.timer.unref();
  }
}
