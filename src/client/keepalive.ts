// Keep-alives that find a dead server within seconds (RFC 5626 §3.5.1, §4.4.1): a ping every
// period, jittered to 80–100 % of it, and a failed flow when its answer does not come within the
// pong timeout. What a ping is belongs to the user agent: a CRLFCRLF on TCP/TLS, answered by a CRLF
// pong; over WebSocket, where the browser API has no ping, an OPTIONS request, answered by any
// final response. A server that has never answered is tolerated unless `expectPong` (pings still
// keep NAT bindings open): a CRLF keep-alive is optional for a server.

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 5_000;
export const DEFAULT_PONG_TIMEOUT_MS = 4_000;

export interface KeepAliveOptions {
  intervalMs: number;
  /** how long a ping may wait for its answer once the server is known to answer */
  pongTimeoutMs: number;
  /** the server is known to answer pings (OPTIONS always is; a server that ponged before) */
  expectPong: boolean;
  /** sends one ping; a throw means the connection is going away (its close handler tears down) */
  ping(): void;
  /** no answer in time: the flow failed */
  failed(): void;
}

export class KeepAlive {
  readonly #options: KeepAliveOptions;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #pongTimer: ReturnType<typeof setTimeout> | null = null;
  #pongSeen: boolean;
  #stopped = false;

  constructor(options: KeepAliveOptions) {
    this.#options = options;
    this.#pongSeen = options.expectPong;
    this.#schedule();
  }

  /** The answer to a ping arrived. */
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
    this.#timer = unref(setTimeout(() => this.#ping(), this.#options.intervalMs * (0.8 + 0.2 * Math.random())));
  }

  #ping(): void {
    this.#timer = null;
    try {
      this.#options.ping();
    } catch {
      return; // the connection is going away; its close handler tears down
    }
    if (this.#pongSeen && this.#pongTimer === null) {
      this.#pongTimer = unref(setTimeout(() => {
        this.#pongTimer = null;
        if (!this.#stopped) this.#options.failed();
      }, this.#options.pongTimeoutMs));
    }
    this.#schedule();
  }
}

/** Keep-alive timers must not keep a Node process alive on their own (no-op in browsers). */
function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
