// One user's tracked nonces for digest's replay check (RFC 7616 §3.4: a nonce count used twice with
// one nonce is a replay), kept in typed arrays, a slot per nonce: no object and no Map entry per
// authenticated request. Many clients (sipp, many phones) take a fresh nonce for each request, so
// every request added a tracked nonce that lived until 64 more of that user's pushed it out: long
// enough to be promoted to V8's old generation and die there, the largest share (about 40 % of the
// sampled bytes) of what a relayed MESSAGE left for the mark-compacts to collect (issue 20). Slots
// are found by a scan of at most maxPerUser (64) small integers.

/** nonce counts may arrive out of order (UDP): accept any unseen count within this many of the highest */
const COUNT_WINDOW = 32;
/** slots a user starts with; doubled as needed, up to the issuer's maxPerUser */
const FIRST_CAPACITY = 4;

export class UserNonces {
  /** a nonce issued at or before this time (ms) and not tracked was forgotten: it is not accepted again */
  floor = -Infinity;
  /** slots in use: 0..size-1 */
  size = 0;
  /** 30 bits of the nonce's random part (a small integer: see nonceKey) */
  #keys = new Int32Array(FIRST_CAPACITY);
  /** when the nonce was issued (ms), read from the nonce itself */
  #issuedAt = new Float64Array(FIRST_CAPACITY);
  /** the highest count used, and a bitmap of the COUNT_WINDOW below it (bit i: count highest-1-i) */
  #highest = new Uint32Array(FIRST_CAPACITY);
  #seen = new Uint32Array(FIRST_CAPACITY);
  /** the issuer's use stamp when the nonce was last used: the lowest is the one unused longest */
  #used = new Float64Array(FIRST_CAPACITY);

  /** The slot of the nonce tracked under `key`, or -1. */
  find(key: number): number {
    const keys = this.#keys;
    for (let i = 0; i < this.size; i++) if (keys[i] === key) return i;
    return -1;
  }

  issuedAt(slot: number): number {
    return this.#issuedAt[slot] as number;
  }

  /** Tracks a nonce first used with count `nc`. */
  add(key: number, issuedAt: number, nc: number, stamp: number): void {
    if (this.size === this.#keys.length) this.#grow();
    const slot = this.size++;
    this.#keys[slot] = key;
    this.#issuedAt[slot] = issuedAt;
    this.#highest[slot] = nc;
    this.#seen[slot] = 0;
    this.#used[slot] = stamp;
  }

  /**
   * Counts `nc` into the slot's window, in place: false when it was used already or lies below the
   * window. An accepted count marks the nonce used at `stamp`.
   */
  count(slot: number, nc: number, stamp: number): boolean {
    const highest = this.#highest[slot] as number;
    const seen = this.#seen[slot] as number;
    if (nc > highest) {
      const shift = nc - highest;
      // the old highest moves to bit shift-1
      this.#seen[slot] = shift > COUNT_WINDOW ? 0 : shift === COUNT_WINDOW ? 1 << 31 : (seen << shift) | (1 << (shift - 1));
      this.#highest[slot] = nc;
    } else {
      const bit = highest - nc - 1;
      if (bit < 0 || bit >= COUNT_WINDOW || (seen & (1 << bit)) !== 0) return false;
      this.#seen[slot] = seen | (1 << bit);
    }
    this.#used[slot] = stamp;
    return true;
  }

  /** The slot unused longest, or -1 when none is tracked. */
  oldest(): number {
    let oldest = -1;
    let least = Infinity;
    const used = this.#used;
    for (let i = 0; i < this.size; i++) {
      if ((used[i] as number) < least) {
        least = used[i] as number;
        oldest = i;
      }
    }
    return oldest;
  }

  /** Forgets a slot: the last one takes its place. */
  remove(slot: number): void {
    const last = --this.size;
    if (slot === last) return;
    this.#keys[slot] = this.#keys[last] as number;
    this.#issuedAt[slot] = this.#issuedAt[last] as number;
    this.#highest[slot] = this.#highest[last] as number;
    this.#seen[slot] = this.#seen[last] as number;
    this.#used[slot] = this.#used[last] as number;
  }

  /** Forgets the nonces issued before `before` (ms); how many. */
  expire(before: number): number {
    let forgotten = 0;
    for (let i = this.size - 1; i >= 0; i--) {
      if ((this.#issuedAt[i] as number) < before) {
        this.remove(i);
        forgotten++;
      }
    }
    return forgotten;
  }

  #grow(): void {
    const capacity = this.#keys.length * 2;
    this.#keys = grown(this.#keys, new Int32Array(capacity));
    this.#issuedAt = grown(this.#issuedAt, new Float64Array(capacity));
    this.#highest = grown(this.#highest, new Uint32Array(capacity));
    this.#seen = grown(this.#seen, new Uint32Array(capacity));
    this.#used = grown(this.#used, new Float64Array(capacity));
  }
}

/** `to`, a larger array, with `from` copied into its start. */
function grown<T extends Int32Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
