// What registrations, publications and subscriptions share as soft state that the client keeps
// alive: when to refresh, one pending refresh timer, and a queue that runs their requests one
// after another, so a refresh never crosses a call of the application (unregister, a new state).
// No Node import: the browser bundle uses this file too.

import { expiresHeader } from './event-headers.ts';

/** When to refresh: half-way for short lifetimes, 30 s before expiry for long ones. */
export function refreshDelayMs(expires: number): number {
  return Math.max(expires / 2, expires - 30) * 1000;
}

/** Timers must not keep a Node process alive on their own: the connection does (no-op in browsers). */
export function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

/** Runs operations strictly one after another; a failed one does not stop the next. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(operation, operation);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** At most one pending refresh; scheduling a new one replaces it. */
export class RefreshTimer {
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** calls `fire` when a state granted for `expires` seconds is due for its refresh */
  schedule(expires: number, fire: () => void): void {
    this.cancel();
    this.#timer = unref(setTimeout(() => {
      this.#timer = null;
      fire();
    }, refreshDelayMs(expires)));
  }

  cancel(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * After a refused REGISTER, PUBLISH or SUBSCRIBE: the interval to try again with when the answer is
 * 423 Interval Too Brief (RFC 3261 §10.2.8, RFC 3903 §6, RFC 6665 §4.1.2.1) and its Min-Expires is
 * longer than what was asked; undefined otherwise, or once three tries were made.
 */
export function intervalTooBriefRetry(response: { status: number; headers: { get(name: string): string | undefined } }, expires: number, attempt: number): number | undefined {
  if (response.status !== 423 || attempt >= 3) return undefined;
  const min = expiresHeader(response.headers.get('min-expires'));
  return min !== undefined && min > expires ? min : undefined;
}
