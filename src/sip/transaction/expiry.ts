// Timers J and K have one fixed duration each (64·T1 and T4), so what waits on one of them (the
// buckets of completed server transactions, completed.ts; client transactions) ends in the order
// it started waiting. A FIFO served by a single timer replaces a timer per
// transaction: at thousands of requests a second, those timers and what they kept alive for 32 s
// were most of the heap, and the garbage collector's pauses then dropped UDP datagrams.

export class ExpiryQueue<T> {
  readonly #delayMs: number;
  readonly #expire: (item: T) => void;
  readonly #now: () => number;
  #items: Array<T | undefined> = [];
  #due: number[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(delayMs: number, expire: (item: T) => void, now: () => number = () => performance.now()) {
    this.#delayMs = delayMs;
    this.#expire = expire;
    this.#now = now;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** `item` expires `delayMs` from now. */
  add(item: T): void {
    this.#items.push(item);
    this.#due.push(this.#now() + this.#delayMs);
    if (this.#timer === undefined) this.#arm(this.#delayMs);
  }

  /** Stops the timer and returns what had not expired yet, oldest first (for shutdown). */
  drain(): T[] {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const left = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#due = [];
    this.#head = 0;
    return left;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(ms)));
    // the queue alone must not keep a process alive that has nothing else to do
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = this.#now();
    while (this.#head < this.#items.length && (this.#due[this.#head] as number) <= now) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined;
      this.#head++;
      this.#expire(item);
    }
    // drop the expired prefix once it is the larger part, so the arrays do not grow for ever
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#due = this.#due.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head < this.#items.length) this.#arm((this.#due[this.#head] as number) - now);
    else if (this.#head > 0) {
      this.#items = [];
      this.#due = [];
      this.#head = 0;
    }
  }
}
