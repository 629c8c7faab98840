// What the harnesses of the two browser SIP stacks (test/harness/jssip.ts, test/harness/sipjs.ts)
// share: their options, the MESSAGE a test reads, the queue of received MESSAGEs, and the check
// that Node has the global WebSocket both use.
//
// Both stacks hand an incoming MESSAGE to an event handler; a test wants to await "the next one":
//
//   const inbox = new Inbox<ReceivedMessage>('JsSIP sip:bob@parley.test');
//   ua.on('newMessage', (e) => inbox.put(toReceived(e)));
//   const m = await inbox.next(10_000);   // rejects with "<who>: no MESSAGE within 10000 ms"
//   inbox.close();                       // rejects every pending next() with "<who>: stopped"

export interface BrowserUserOptions {
  /** ws://host:port/sip */
  wsUrl: string;
  /** sip:alice@parley.test */
  uri: string;
  password: string;
  displayName?: string;
  /** digest username; both stacks default to the user part of `uri` */
  authorizationUser?: string;
  /** default 300 */
  registerExpires?: number;
  /** how long to wait for the registration; default 10 s */
  registerTimeoutMs?: number;
}

/** Throws unless Node provides the global WebSocket (Node >= 22) the browser stacks construct. */
export function requireWebSocket(library: string): void {
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    throw new Error(`${library} needs a global WebSocket: run the tests on Node >= 22 (the project pins Node 24)`);
  }
}

/** A MESSAGE as a test client received it. */
export interface ReceivedMessage {
  /** From URI, e.g. sip:alice@parley.test */
  from: string;
  fromDisplayName: string | null;
  /** To URI */
  to: string;
  body: string;
  contentType: string | undefined;
  callId: string;
}

interface Waiter<T> {
  resolve: (item: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Inbox<T> {
  readonly #who: string;
  readonly #queued: T[] = [];
  readonly #waiters: Waiter<T>[] = [];

  /** `who` names the receiver in the errors, e.g. "SIP.js sip:bob@parley.test" */
  constructor(who: string) {
    this.#who = who;
  }

  /** hands the item to the oldest waiting next(), or keeps it for the next one */
  put(item: T): void {
    const w = this.#waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(item);
    } else {
      this.#queued.push(item);
    }
  }

  /** the oldest item not yet taken; waits up to timeoutMs for one */
  next(timeoutMs: number): Promise<T> {
    if (this.#queued.length > 0) return Promise.resolve(this.#queued.shift() as T);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new Error(`${this.#who}: no MESSAGE within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** items received and not yet taken */
  pending(): number {
    return this.#queued.length;
  }

  /** rejects every waiting next() */
  close(): void {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${this.#who}: stopped`));
    }
  }
}
