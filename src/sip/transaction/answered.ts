// The requests whose transactions ended at their final response although the transport is
// unreliable (RespondOptions.answerAgain): not their responses, only a 30-bit fingerprint of their
// transaction keys, for Timer J's time. A retransmission that comes later is then handed to the TU
// again, marked as one (NonInviteServerTransaction.retransmission), and the TU answers it as it did
// the first time, as a stateless server must (RFC 3261 §8.2.7). A completed transaction costs ~40
// bytes of JS heap and its key and response off the heap for 32 s over UDP (completed.ts); a
// fingerprint, a small integer in one of two Sets, ~30 bytes of heap in the Sets' tables, and no
// object the garbage collector has to copy or trace.
//
// Two generations: fingerprints go into the current Set; when it is a window old it becomes the
// previous one and the one before is dropped. A fingerprint is thus remembered for one to two
// windows. Two keys may share a fingerprint (one in 2^30 per lookup): the TU must check what the
// mark cannot prove (the registrar checks the credentials were used before, handler.ts).

export class AnsweredRequests {
  readonly #windowMs: number;
  readonly #now: () => number;
  #current = new Set<number>();
  #previous = new Set<number>();
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
    this.#rotate();
    if (this.#current.size === 0 && this.#previous.size === 0) return false;
    const f = fingerprint(key);
    return this.#current.has(f) || this.#previous.has(f);
  }

  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  clear(): void {
    this.#current = new Set();
    this.#previous = new Set();
  }

  #rotate(): void {
    const now = this.#now();
    if (now - this.#since < this.#windowMs) return;
    // idle for two windows or more: both generations are too old
    this.#previous = now - this.#since < 2 * this.#windowMs ? this.#current : new Set();
    this.#current = new Set();
    this.#since = now;
  }
}

/** FNV-1a over the key's UTF-16 code units, cut to 30 bits: a small integer V8 keeps unboxed. */
export function fingerprint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}
