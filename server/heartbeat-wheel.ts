/**
 * One timer for every stream's heartbeat. Members sit in one of `period / tick` slots and each
 * tick visits the slots that fell due, so 20,000 streams cost one interval and a slice of the
 * period's work per tick, not 20,000 timers.
 */
export class HeartbeatWheel<T> {
  private readonly slots: Set<T>[];
  private readonly slotOf = new Map<T, number>();
  private readonly tickMs: number;
  private readonly origin = Date.now();
  /** Absolute index of the next slot to visit; slot k falls due at origin + k * tickMs. */
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `beat` gets each member once per period with how late (ms) its beat is. */
  constructor(private readonly periodMs: number, private readonly beat: (member: T, lagMs: number, now: number) => void) {
    this.tickMs = Math.max(5, Math.min(50, Math.floor(periodMs / 4)));
    this.slots = Array.from({ length: Math.max(1, Math.round(periodMs / this.tickMs)) }, () => new Set<T>());
  }

  start(): void {
    this.next = Math.floor((Date.now() - this.origin) / this.tickMs) + 1;
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** First beat about one period from now: in the slot just visited. */
  add(member: T): void {
    const slot = (this.next - 1 + this.slots.length) % this.slots.length;
    this.slots[slot]!.add(member);
    this.slotOf.set(member, slot);
  }

  remove(member: T): void {
    const slot = this.slotOf.get(member);
    if (slot === undefined) return;
    this.slots[slot]!.delete(member);
    this.slotOf.delete(member);
  }

  private tick(): void {
    const now = Date.now();
    // Visit every slot due by now, even after a stall, so no member skips a beat.
    while (this.origin + this.next * this.tickMs <= now) {
      const lag = now - (this.origin + this.next * this.tickMs);
      for (const member of this.slots[this.next % this.slots.length]!) this.beat(member, lag, now);
      this.next++;
    }
  }
}
