// The requests whose transactions ended at their final response although the transport is
// unreliable (RespondOptions.answerAgain): not their responses, only a 30-bit fingerprint of their
// transaction keys, for Timer J's time. A retransmission that comes later is then handed to the TU
// again, marked as one (NonInviteServerTransaction.retransmission), and the TU answers it as it did
// the first time, as a stateless server must (RFC 3261 §8.2.7). A completed transaction costs ~40
// bytes of JS heap and its key and response off the heap for 32 s over UDP (completed.ts); a
// fingerprint costs 4 to 8 bytes in a typed array (FingerprintSet), outside the JS heap.
//
// Two generations: fingerprints go into the current set; when it is a window old it becomes the
// previous one and the one before is dropped. A fingerprint is thus remembered for one to two
// windows. Two keys may share a fingerprint (one in 2^30 per lookup): the TU must check what the
// mark cannot prove (the registrar checks the credentials were used before, handler.ts).
//
// Why not a Set of small integers: at 8,000 REGISTER/s a window holds 256,000 fingerprints, and a
// V8 hash table takes ~20 bytes a slot in the old generation, copied whenever it doubles; these
// tables take 4-8 bytes a fingerprint in one ArrayBuffer the collector does not look into. Measured
// in-process (255,000 REGISTER calls within one window): 2.8 MiB less live heap, 12 MiB less peak RSS.

export class AnsweredRequests {
  readonly #windowMs: number;
  readonly #now: () => number;
  #current = new FingerprintSet();
  #previous = new FingerprintSet();
  #since: number;

  constructor(windowMs: number, now: () => number = () => performance.now()) {
    this.#windowMs = windowMs;
    this.#now = now;
    this.#since = now();
  }

  add(key: string): void {
    this.#rotate();
    this.#current.add(fingerprint(key));
  }

  /** true when a request with this transaction key was answered within the last one to two windows */
  has(key: string): boolean {
    // most requests come while nothing is remembered (only a registrar's answers are): no clock read
    if (this.#current.size === 0 && this.#previous.size === 0) return false;
    this.#rotate();
    if (this.#current.size === 0 && this.#previous.size === 0) return false;
    const f = fingerprint(key);
    return this.#current.has(f) || this.#previous.has(f);
  }

  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  clear(): void {
    this.#current = new FingerprintSet();
    this.#previous = new FingerprintSet();
  }

  #rotate(): void {
    const now = this.#now();
    if (now - this.#since < this.#windowMs) return;
    // idle for two windows or more: both generations are too old
    this.#previous = now - this.#since < 2 * this.#windowMs ? this.#current : new FingerprintSet();
    // sized for what the last window held: the next one likely holds as many, and grows no more
    this.#current = new FingerprintSet(this.#previous.size);
    this.#since = now;
  }
}

/** FNV-1a over the key's UTF-16 code units, cut to 30 bits: a small integer V8 keeps unboxed. */
export function fingerprint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

/** Slots of an empty FingerprintSet: 4 KiB. */
const MIN_SLOTS = 1024;

/**
 * A set of 30-bit fingerprints in one Uint32Array, open addressing with linear probing, kept at
 * most half full (doubled when it would be fuller). A slot holds fingerprint + 1; 0 is empty.
 * Nothing is ever removed: a whole set is dropped when its window ends.
 */
export class FingerprintSet {
  #slots: Uint32Array;
  #mask: number;
  #size = 0;

  /** `expected`: how many fingerprints it will likely hold (the table starts big enough for them) */
  constructor(expected = 0) {
    let slots = MIN_SLOTS;
    while (slots < 2 * expected) slots *= 2;
    this.#slots = new Uint32Array(slots);
    this.#mask = slots - 1;
  }

  get size(): number {
    return this.#size;
  }

  add(f: number): void {
    if (2 * (this.#size + 1) > this.#slots.length) this.#grow();
    if (place(this.#slots, this.#mask, f + 1)) this.#size++;
  }

  has(f: number): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    const v = f + 1;
    for (let i = spread(v) & mask; ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === v) return true;
      if (s === 0) return false;
    }
  }

  #grow(): void {
    const old = this.#slots;
    const slots = new Uint32Array(old.length * 2);
    const mask = slots.length - 1;
    for (let i = 0; i < old.length; i++) {
      const v = old[i] as number;
      if (v !== 0) place(slots, mask, v);
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

/** Puts the slot value `v` in its place; false when it is there already. */
function place(slots: Uint32Array, mask: number, v: number): boolean {
  for (let i = spread(v) & mask; ; i = (i + 1) & mask) {
    const s = slots[i] as number;
    if (s === v) return false;
    if (s === 0) {
      slots[i] = v;
      return true;
    }
  }
}

/** Mixes the high bits into the low ones (the table index takes the low bits). */
function spread(v: number): number {
  return Math.imul(v ^ (v >>> 15), 0x2c1b3c6d) >>> 0;
}
