// A bounded, fair queue for password hashing. Checking an HTTP Basic password costs one scrypt
// run (~80 ms of a libuv thread, 32 MiB); Node queues such work without limit, so 300 wrong
// passwords in flight made every other sign-in wait behind all of them. Here:
//
//  - at most `concurrency` hashes run at once (the rest of the libuv pool stays free for files
//    and DNS);
//  - waiting jobs are taken round-robin by source: a source with one job waiting is served after
//    at most one job of each other source, however many those have queued;
//  - a source may hold at most `maxPerSource` jobs (running or waiting), and all sources together
//    at most `maxQueued` waiting: past that a job is refused at once, with a Retry-After estimate,
//    instead of queueing (the HTTP edge answers 429 for a source over its share, 503 when full).

export interface FairQueueOptions {
  /** jobs running at once */
  concurrency: number;
  /** jobs waiting, all sources together */
  maxQueued: number;
  /** jobs running or waiting, per source */
  maxPerSource: number;
  /** for the mean job time behind Retry-After; default performance.now */
  clock?: () => number;
}

export type Admission<T> =
  | { readonly admitted: true; readonly value: T }
  /** `source`: this source holds its share already; `full`: the queue is full */
  | { readonly admitted: false; readonly reason: 'source' | 'full'; readonly retryAfterSeconds: number };

type Start = () => void;

/** the mean job time before any was measured: about one scrypt run */
const INITIAL_MEAN_MS = 100;

export class FairQueue {
  readonly #opts: FairQueueOptions;
  readonly #clock: () => number;
  /** source → its waiting jobs; the Map's order is the rotation (the first source goes next) */
  readonly #waiting = new Map<string, Start[]>();
  /** source → its jobs running or waiting */
  readonly #held = new Map<string, number>();
  #running = 0;
  #queued = 0;
  #meanMs = INITIAL_MEAN_MS;

  constructor(opts: FairQueueOptions) {
    if (!(opts.concurrency >= 1 && opts.maxPerSource >= 1 && opts.maxQueued >= 0)) throw new RangeError('FairQueue needs concurrency ≥ 1, maxPerSource ≥ 1, maxQueued ≥ 0');
    this.#opts = opts;
    this.#clock = opts.clock ?? (() => performance.now());
  }

  /** jobs running now */
  get running(): number {
    return this.#running;
  }

  /** jobs waiting now */
  get queued(): number {
    return this.#queued;
  }

  /** Runs `job` for `source` when its turn comes, or refuses at once. A job's rejection is passed on. */
  run<T>(source: string, job: () => Promise<T>): Promise<Admission<T>> {
    const held = this.#held.get(source) ?? 0;
    if (held >= this.#opts.maxPerSource) return Promise.resolve({ admitted: false, reason: 'source', retryAfterSeconds: this.#retryAfter() });
    const startNow = this.#running < this.#opts.concurrency;
    if (!startNow && this.#queued >= this.#opts.maxQueued) return Promise.resolve({ admitted: false, reason: 'full', retryAfterSeconds: this.#retryAfter() });
    this.#held.set(source, held + 1);
    return new Promise<Admission<T>>((resolve, reject) => {
      const start: Start = () => {
        this.#running++;
        const began = this.#clock();
        let pending: Promise<T>;
        try {
          pending = job();
        } catch (err) {
          pending = Promise.reject(err as Error);
        }
        pending.then(
          (value) => resolve({ admitted: true, value }),
          (err: unknown) => reject(err),
        ).finally(() => this.#done(source, this.#clock() - began));
      };
      if (startNow) start();
      else this.#enqueue(source, start);
    });
  }

  #enqueue(source: string, start: Start): void {
    const jobs = this.#waiting.get(source);
    if (jobs === undefined) this.#waiting.set(source, [start]);
    else jobs.push(start);
    this.#queued++;
  }

  #done(source: string, tookMs: number): void {
    this.#running--;
    this.#meanMs = 0.8 * this.#meanMs + 0.2 * tookMs;
    const held = (this.#held.get(source) ?? 1) - 1;
    if (held <= 0) this.#held.delete(source);
    else this.#held.set(source, held);
    this.#next();
  }

  /** Starts the next job: the first source in the rotation gives one, then goes to the back. */
  #next(): void {
    while (this.#running < this.#opts.concurrency && this.#queued > 0) {
      const first = this.#waiting.entries().next();
      if (first.done === true) return;
      const [source, jobs] = first.value;
      const start = jobs.shift() as Start;
      this.#waiting.delete(source);
      if (jobs.length > 0) this.#waiting.set(source, jobs);
      this.#queued--;
      start();
    }
  }

  /** Seconds until the queue has room again, about: what is ahead, at the measured pace. */
  #retryAfter(): number {
    return Math.max(1, Math.ceil(((this.#queued + this.#running) * this.#meanMs) / this.#opts.concurrency / 1000));
  }
}
