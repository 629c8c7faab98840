// Group commit: a message answered 202 must be on disk first, and one fsync per message would cap
// acceptance at the disk's sync rate. So submissions are gathered for a few milliseconds (or until
// a batch is full), written in ONE transaction (one fsync), and only then is each submitter told
// its result — and only then does the router send the 202s.
//
// A commit may finish later (a writer thread): one batch is written at a time, and what arrives
// meanwhile waits and goes in the next batch as soon as that one is done.

export interface GroupCommitOptions<T, R> {
  /** writes the items in one transaction and returns one result per item, at once or later */
  commit(items: readonly T[]): R[] | Promise<R[]>;
  /** how long the first item of a batch waits for company, ms (0: the next turn of the event loop) */
  windowMs: number;
  /** a full batch is committed at once */
  maxBatch: number;
}

/** What the group commit has done so far (for metrics and bench/commit-stats.ts). */
export interface GroupCommitStats {
  /** batches committed, and items in them */
  batches: number;
  items: number;
  maxBatch: number;
  /** ms from handing each batch to `commit` until it was committed, summed; and the longest */
  commitMs: number;
  maxCommitMs: number;
  /** batch sizes in power-of-two buckets "1", "2-3", "4-7", … */
  sizes: Record<string, number>;
}

interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export class GroupCommit<T, R> {
  readonly #opts: GroupCommitOptions<T, R>;
  #pending: Array<Pending<T, R>> = [];
  #timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  /** the batch being written, when its commit finishes later */
  #writing: Promise<void> | undefined;
  #closed = false;
  readonly stats: GroupCommitStats = { batches: 0, items: 0, maxBatch: 0, commitMs: 0, maxCommitMs: 0, sizes: {} };

  constructor(opts: GroupCommitOptions<T, R>) {
    this.#opts = opts;
  }

  /** Resolves once `item` is committed with the others of its batch; rejects if that commit failed. */
  submit(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(new Error('the spool is closed: the server is stopping'));
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      // while a batch is being written, the next one starts when it is done
      if (this.#writing !== undefined) return;
      if (this.#pending.length >= this.#opts.maxBatch) this.flush();
      else if (this.#timer === undefined) {
        this.#timer = this.#opts.windowMs > 0 ? setTimeout(() => this.flush(), this.#opts.windowMs) : setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is pending now (up to a full batch), unless a batch is being written. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as ReturnType<typeof setTimeout>);
      clearImmediate(this.#timer as ReturnType<typeof setImmediate>);
      this.#timer = undefined;
    }
    if (this.#writing !== undefined || this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#opts.maxBatch);
    const started = performance.now();
    let results: R[] | Promise<R[]>;
    try {
      results = this.#opts.commit(batch.map((p) => p.item));
    } catch (error) {
      this.#fail(batch, error);
      this.flush();
      return;
    }
    if (!(results instanceof Promise)) {
      this.#settle(batch, results, started);
      this.flush();
      return;
    }
    this.#writing = results.then(
      (r) => this.#settle(batch, r, started),
      (error: unknown) => this.#fail(batch, error),
    ).finally(() => {
      this.#writing = undefined;
      this.flush();
    });
  }

  /** Commits what is pending, then refuses new submissions; resolves when all is written. */
  async close(): Promise<void> {
    this.#closed = true;
    this.flush();
    while (this.#writing !== undefined) await this.#writing;
  }

  #settle(batch: Array<Pending<T, R>>, results: R[], started: number): void {
    if (results.length !== batch.length) {
      this.#fail(batch, new Error(`group commit returned ${results.length} results for ${batch.length} items`));
      return;
    }
    const ms = performance.now() - started;
    const stats = this.stats;
    stats.batches++;
    stats.items += batch.length;
    stats.maxBatch = Math.max(stats.maxBatch, batch.length);
    stats.commitMs += ms;
    stats.maxCommitMs = Math.max(stats.maxCommitMs, ms);
    const low = 2 ** Math.floor(Math.log2(batch.length));
    const bucket = low === 1 ? '1' : `${low}-${low * 2 - 1}`;
    stats.sizes[bucket] = (stats.sizes[bucket] ?? 0) + 1;
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }

  #fail(batch: Array<Pending<T, R>>, error: unknown): void {
    for (const p of batch) p.reject(error);
  }
}
