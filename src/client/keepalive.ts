// Keep-alives that find a dead server within seconds (RFC 5626 §3.5.1, §4.4.1): a ping every
// period, jittered to 80–100 % of it, and a failed flow when no answer comes within the pong
// timeout. Two kinds of ping, on every transport: a CRLFCRLF, answered by a CRLF pong (RFC 5626
// §4.4.1 on TCP/TLS; over WebSocket, where RFC 7118 defines no keep-alive, some servers answer it
// too), and an OPTIONS request, answered by any final response (RFC 3261 §11: every server must).
// The first ping of a connection is both; when the CRLF was answered the pings are CRLFCRLF alone
// (no transaction for the server), else OPTIONS alone. So a server that pongs is never asked for
// more than four bytes, and one that does not is still found dead from the first ping on. The I/O
// is the user agent's.

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 5_000;
export const DEFAULT_PONG_TIMEOUT_MS = 4_000;

export interface KeepAliveOptions {
  intervalMs: number;
  /** how long a ping may wait for its answer */
  pongTimeoutMs: number;
  /** sends CRLFCRLF; a throw means the connection is going away (its close handler tears down) */
  sendCrlf(): void;
  /** sends an OPTIONS; resolves on its final response, rejects when it could not complete */
  sendOptions(): Promise<unknown>;
  /** no answer in time: the flow failed */
  failed(): void;
}

export class KeepAlive {
  readonly #options: KeepAliveOptions;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #pongTimer: ReturnType<typeof setTimeout> | null = null;
  #pings = 0;
  /** the server answered a CRLFCRLF with a CRLF on this connection */
  #crlfAnswered = false;
  #stopped = false;

  constructor(options: KeepAliveOptions) {
    this.#options = options;
    this.#schedule();
  }

  /** A CRLF pong arrived. */
  pong(): void {
    this.#crlfAnswered = true;
    this.#answered();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
    this.#timer = null;
    this.#pongTimer = null;
  }

  #answered(): void {
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
    this.#pongTimer = null;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = unref(setTimeout(() => this.#ping(), this.#options.intervalMs * (0.8 + 0.2 * Math.random())));
  }

  #ping(): void {
    this.#timer = null;
    this.#pings += 1;
    try {
      if (this.#pings === 1 || this.#crlfAnswered) this.#options.sendCrlf();
      if (!this.#crlfAnswered) {
        this.#options.sendOptions().then(
          () => this.#answered(),
          () => undefined, // the connection closing: its teardown says so
        );
      }
    } catch {
      return; // the connection is going away; its close handler tears down
    }
    if (this.#pongTimer === null) {
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
