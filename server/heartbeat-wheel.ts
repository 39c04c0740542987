/**
 * One timer for every stream's heartbeat. Members sit in one of `period / tick` slots and each
 * tick visits the slots that fell due, so 20,000 streams cost one interval and a slice of the
 * period's work per tick, not 20,000 timers.
 */
/** A wheel member remembers its own slot: no per-member index beside the slots themselves. */
export interface WheelMember {
  wheelSlot: number | undefined;
}

export class HeartbeatWheel<T extends WheelMember> {
  private readonly slots: Set<T>[];
  private readonly tickMs: number;
  private readonly origin = Date.now();
  /** Absolute index of the next slot to visit; slot k falls due at origin + k * tickMs. */
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `beat` gets each member once per period with how late (ms) its beat is. */
  constructor(
    periodMs: number,
    private readonly beat: (member: T, lagMs: number, now: number) => void,
  ) {
    this.tickMs = Math.max(5, Math.min(50, Math.floor(periodMs / 4)));
    this.slots = Array.from({ length: Math.max(1, Math.round(periodMs / this.tickMs)) }, () => new Set<T>());
  }

  start(): void {
    this.next = Math.floor((Date.now() - this.origin) / this.tickMs) + 1;
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** First beat about one period from now: in the slot just visited. */
  add(member: T): void {
    const slot = (this.next - 1 + this.slots.length) % this.slots.length;
    this.slots[slot]!.add(member);
    member.wheelSlot = slot;
  }

  remove(member: T): void {
    if (member.wheelSlot === undefined) return;
    this.slots[member.wheelSlot]!.delete(member);
    member.wheelSlot = undefined;
  }

  /** Wakes exactly when the next slot falls due (an interval would drift up to a tick off the slots). */
  private schedule(): void {
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.origin + this.next * this.tickMs - Date.now()));
  }

  private tick(): void {
    const now = Date.now();
    // Visit every slot due by now, even after a stall, so no member skips a beat.
    while (this.origin + this.next * this.tickMs <= now) {
      const lag = now - (this.origin + this.next * this.tickMs);
      for (const member of this.slots[this.next % this.slots.length]!) this.beat(member, lag, now);
      this.next++;
    }
    if (this.timer !== undefined) this.schedule();
  }
}
