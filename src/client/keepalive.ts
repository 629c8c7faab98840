// CRLF keep-alive on stream transports (RFC 5626 §3.5.1, §4.4.1): a CRLFCRLF ping every period,
// jittered to 80–100 % of it; the server answers with a CRLF pong. A server that never pongs is
// tolerated (pings still keep NAT bindings open); once one pong was seen, a missing pong within
// 10 s means the flow failed.

export class KeepAlive {
  readonly #intervalMs: number;
  readonly #pongTimeoutMs: number;
  readonly #sendPing: () => void;
  readonly #onFailed: () => void;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #pongTimer: ReturnType<typeof setTimeout> | null = null;
  #pongSeen = false;
  #stopped = false;

  constructor(intervalMs: number, sendPing: () => void, onFailed: () => void, pongTimeoutMs = 10_000) {
    this.#intervalMs = intervalMs;
    this.#sendPing = sendPing;
    this.#onFailed = onFailed;
    this.#pongTimeoutMs = pongTimeoutMs;
    this.#schedule();
  }

  /** A CRLF pong arrived. */
  pong(): void {
    this.#pongSeen = true;
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
    this.#pongTimer = null;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
    this.#timer = null;
    this.#pongTimer = null;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = unref(setTimeout(() => this.#ping(), this.#intervalMs * (0.8 + 0.2 * Math.random())));
  }

  #ping(): void {
    this.#timer = null;
    try {
      this.#sendPing();
    } catch {
      return; // the connection is going away; its close handler tears down
    }
    if (this.#pongSeen && this.#pongTimer === null) {
      this.#pongTimer = unref(setTimeout(() => {
        this.#pongTimer = null;
        if (!this.#stopped) this.#onFailed();
      }, this.#pongTimeoutMs));
    }
    this.#schedule();
  }
}

/** Keep-alive timers must not keep a Node process alive on their own (no-op in browsers). */
function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
