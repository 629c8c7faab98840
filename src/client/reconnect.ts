// Reconnection after a lost connection: exponential back-off (1 s doubling to 30 s by default)
// with ±20 % jitter, so that the clients of a restarted server do not all come back in the same
// instant. With several servers the attempts go in rounds: within a round each failed attempt is
// followed at once by one at the next server; the back-off is between rounds (a dead node must not
// hold its clients back from the live ones). The user agent lends `attempt` (connect to the next
// server, register again, re-subscribe) and hears each step through `event`. No I/O of its own
// besides one timer.

import type { ConnectionEvent, ReconnectPolicy } from './types.ts';

export const DEFAULT_RECONNECT: Required<ReconnectPolicy> = { initialDelayMs: 1_000, maxDelayMs: 30_000 };
const JITTER = 0.2;

/** The delay before attempt `attempt` (1-based): initial × 2^(attempt−1), capped, ±20 % jitter, never above the cap. */
export function backoffDelayMs(attempt: number, policy: Required<ReconnectPolicy>, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  const jittered = base * (1 - JITTER + 2 * JITTER * random());
  return Math.round(Math.min(policy.maxDelayMs, Math.max(0, jittered)));
}

export interface ReconnectDeps {
  /** one attempt: resolves once connected and restored; rejects when it failed (another attempt follows) */
  attempt(): Promise<void>;
  /** how many attempts a round makes (the number of servers); default 1 */
  roundSize?(): number;
  event(event: ConnectionEvent): void;
  random?: () => number;
}

export class Reconnector {
  readonly #policy: Required<ReconnectPolicy>;
  readonly #deps: ReconnectDeps;
  #attempt = 0;
  /** the round under way (1-based; 0: none), which sets the back-off */
  #round = 0;
  /** attempts made in this round */
  #tried = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;

  constructor(policy: ReconnectPolicy, deps: ReconnectDeps) {
    this.#policy = { ...DEFAULT_RECONNECT, ...policy };
    this.#deps = deps;
  }

  /** whether attempts are pending (the connection is lost and not yet back) */
  get active(): boolean {
    return this.#timer !== null || this.#attempt > 0;
  }

  /**
   * The connection was lost (or an attempt failed): the next attempt, after the back-off when a
   * round begins, at once within a round.
   */
  schedule(error?: Error): void {
    if (this.#stopped || this.#timer !== null) return;
    let delayMs = 0;
    if (this.#round === 0 || this.#tried >= Math.max(1, this.#deps.roundSize?.() ?? 1)) {
      this.#round += 1;
      this.#tried = 0;
      delayMs = backoffDelayMs(this.#round, this.#policy, this.#deps.random);
    }
    this.#tried += 1;
    this.#attempt += 1;
    const attempt = this.#attempt;
    this.#deps.event({ state: 'reconnecting', attempt, delayMs, ...(error === undefined ? {} : { error }) });
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#stopped) return;
      this.#deps.attempt().then(
        () => {
          // (lost again while restoring: that loss scheduled the next attempt, counting on)
          if (this.#timer === null) this.#reset();
        },
        (cause: unknown) => this.schedule(cause instanceof Error ? cause : new Error(String(cause))),
      );
    }, delayMs);
  }

  /** No more attempts (close(), unregister()). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#reset();
  }

  #reset(): void {
    this.#attempt = 0;
    this.#round = 0;
    this.#tried = 0;
  }
}
