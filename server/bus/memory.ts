/** The one-process bus: events reach this node's streams and nothing else, and are never lost in between. */
import type { ChangeEvent, EventBus } from './port.ts';

export class MemoryBus implements EventBus {
  private readonly listeners = new Set<(event: ChangeEvent) => void>();

  publish(event: ChangeEvent): void {
    // Delivered on a later tick, as a broker would, so a publisher never runs stream code inline.
    queueMicrotask(() => {
      for (const listener of this.listeners) listener(event);
    });
  }

  subscribe(listener: (event: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onResync(): () => void {
    // Nothing between publisher and subscriber can drop an event, so there is never a gap to resync.
    return () => undefined;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
