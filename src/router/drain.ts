// A stopping server (SIGTERM) drains: the requests already being handled finish, new ones are
// refused. The refusal is 503 Service Unavailable with Retry-After (RFC 3261 §21.5.4: the server
// is unavailable for maintenance): a client that knows other servers of the domain tries the next
// one at once (RFC 3263 §4.3), and one that does not waits before it tries here again, instead of
// waiting out its own 32 s transaction timeout on a request the server silently dropped.

export class RequestDrain {
  /** seconds a refused client should wait before it tries this server again (Retry-After) */
  readonly retryAfter: number;
  #draining = false;
  #inFlight = 0;
  #idle: Array<() => void> = [];

  constructor(retryAfter: number) {
    this.retryAfter = Math.max(1, Math.ceil(retryAfter));
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** requests whose handling has started and not finished */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** From now on new requests are refused. */
  start(): void {
    this.#draining = true;
  }

  /** Counts a request's handling until it settles (its handler's promise). */
  track(handling: Promise<unknown>): void {
    this.#inFlight++;
    const done = (): void => {
      if (--this.#inFlight > 0) return;
      const waiting = this.#idle;
      this.#idle = [];
      for (const resolve of waiting) resolve();
    };
    handling.then(done, done);
  }

  /** Resolves once no request is in flight, or after `timeoutMs`; true when none is left. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
