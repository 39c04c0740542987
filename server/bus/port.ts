/**
 * Fan-out of "something changed" between the nodes of a stack, so a write on node A reaches the
 * streams on node B. Events are hints: streams read the changes themselves from the store after
 * their cursor, so a lost or late event delays delivery but never loses a change.
 * Adapters: memory.ts (one process) and amqp.ts (RabbitMQ fanout exchange).
 */
export interface ChangeEvent {
  seq: number;
  /** Users whose feed the change touches (owner and sharees). */
  users: string[];
  node: string;
  /** When the change was published (epoch ms), for the bus lag metric; optional on the wire. */
  at?: number;
}

export interface EventBus {
  publish(event: ChangeEvent): void;
  /** Called for every event, this node's own included. */
  subscribe(listener: (event: ChangeEvent) => void): () => void;
  /**
   * Called after a gap in delivery (broker reconnect): every stream must re-read the store,
   * since events published during the outage are gone.
   */
  onResync(listener: () => void): () => void;
  close(): Promise<void>;
}
