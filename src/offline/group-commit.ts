// Group commit: a message answered 202 must be on disk first, and one fsync per message would cap
// acceptance at the disk's sync rate. So submissions are gathered for a few milliseconds (or until
// a batch is full), written in ONE transaction (one fsync), and only then is each submitter told
// its result — and only then does the router send the 202s.

export interface GroupCommitOptions<T, R> {
  /** runs synchronously, inside one transaction the caller provides, and returns one result per item */
  commit(items: readonly T[]): R[];
  /** how long the first item of a batch waits for company, ms (0: the next turn of the event loop) */
  windowMs: number;
  /** a full batch is committed at once */
  maxBatch: number;
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
  #closed = false;
  /** batches committed and items in them (bench/commit-stats.ts reads them) */
  readonly stats = { batches: 0, items: 0 };

  constructor(opts: GroupCommitOptions<T, R>) {
    this.#opts = opts;
  }

  /** Resolves once `item` is committed with the others of its batch; rejects if that commit failed. */
  submit(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(new Error('the spool is closed: the server is stopping'));
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#opts.maxBatch) this.flush();
      else if (this.#timer === undefined) {
        this.#timer = this.#opts.windowMs > 0 ? setTimeout(() => this.flush(), this.#opts.windowMs) : setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is pending now. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as ReturnType<typeof setTimeout>);
      clearImmediate(this.#timer as ReturnType<typeof setImmediate>);
      this.#timer = undefined;
    }
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let results: R[];
    try {
      results = this.#opts.commit(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`group commit returned ${results.length} results for ${batch.length} items`);
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    this.stats.batches++;
    this.stats.items += batch.length;
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }

  /** Commits what is pending, then refuses new submissions. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
