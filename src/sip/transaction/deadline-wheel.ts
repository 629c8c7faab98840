// Timer F of client transactions over reliable flows (RFC 3261 §17.1.2.2: Timer E is not used
// there, so F is the transaction's only timer). A presence change fans out to thousands of
// watchers at once: one setTimeout per NOTIFY, cleared a few milliseconds later by the 200, cost
// more than building the NOTIFY. A wheel of 64 slots per duration does with one timer for all, and
// cancelling is a Set deletion. A deadline fires between its duration and one slot (1/64 of it)
// later: Timer F says when to give up, not a precise instant.
//
// The wheel counts its own ticks rather than reading a clock, so mocked timers drive it as they
// drive setTimeout.

const SLOTS = 64;

/** What waits on the wheel: told when its deadline passes. */
export interface Expiring {
  expire(): void;
}

/** Where an item waits: give it back to cancel(). */
export type Slot<T> = Set<T>;

export class DeadlineWheel<T extends Expiring> {
  readonly #slotMs: number;
  /** tick → what is due at its end */
  readonly #due = new Map<number, Slot<T>>();
  #tick = 0;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(durationMs: number) {
    this.#slotMs = Math.max(1, Math.ceil(durationMs / SLOTS));
  }

  get size(): number {
    return this.#size;
  }

  /** `item.expire()` runs once, one duration (up to a slot more) from now, unless cancelled. */
  add(item: T): Slot<T> {
    // the current slot is partly gone: a deadline waits SLOTS whole slots after it
    const at = this.#tick + SLOTS + 1;
    let slot = this.#due.get(at);
    if (slot === undefined) this.#due.set(at, (slot = new Set()));
    slot.add(item);
    this.#size++;
    this.#timer ??= setTimeout(() => this.#advance(), this.#slotMs);
    return slot;
  }

  /** The item will not expire; harmless after it did. */
  cancel(slot: Slot<T>, item: T): void {
    if (!slot.delete(item) || --this.#size > 0) return;
    // nothing waits: no timer runs for nothing (nor keeps the process alive)
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due.clear();
  }

  #advance(): void {
    this.#timer = undefined;
    const tick = ++this.#tick;
    const slot = this.#due.get(tick);
    if (slot !== undefined) {
      this.#due.delete(tick);
      // each leaves the wheel before it is told: what it does then (cancel, add) finds it gone
      for (const item of slot) {
        slot.delete(item);
        this.#size--;
        item.expire();
      }
    }
    if (this.#size > 0) this.#timer ??= setTimeout(() => this.#advance(), this.#slotMs);
  }
}
