// Timers are passed in, so state machines can be driven by a fake clock in unit tests.

export type CancelTimer = () => void;

export interface Timers {
  /** runs `fn` once after `ms` milliseconds; the returned function cancels it */
  set(ms: number, fn: () => void): CancelTimer;
}

/**
 * Runs `fn` every `ms` milliseconds until the returned function is called. What `fn` throws (or
 * its promise rejects with) goes to `onError`, and the next run comes all the same; a run that
 * comes while the previous one's promise is still pending (a slow database) is skipped.
 */
export function repeat(timers: Timers, ms: number, fn: () => void | Promise<void>, onError: (err: unknown) => void): CancelTimer {
  let stopped = false;
  let running = false;
  let cancel: CancelTimer = () => {};
  const arm = (): void => {
    cancel = timers.set(ms, () => {
      if (stopped) return;
      if (!running) {
        try {
          const result = fn();
          if (result !== undefined) {
            running = true;
            result.then(
              () => void (running = false),
              (err: unknown) => {
                running = false;
                onError(err);
              },
            );
          }
        } catch (err) {
          onError(err);
        }
      }
      if (!stopped) arm();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel();
  };
}

/** Real timers that do not keep the process alive on their own. */
export const NODE_TIMERS: Timers = {
  set(ms, fn) {
    const t = setTimeout(fn, Math.min(ms, 2_147_483_647));
    t.unref();
    return () => clearTimeout(t);
  },
};

/** Timers driven by hand (tests, benchmarks): advance() runs what falls due, in time order. */
export class ManualTimers implements Timers {
  #now: number;
  readonly #pending: Array<{ at: number; fn: () => void; live: boolean }> = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  readonly now = (): number => this.#now;

  set(ms: number, fn: () => void): CancelTimer {
    const t = { at: this.#now + ms, fn, live: true };
    this.#pending.push(t);
    return () => {
      t.live = false;
    };
  }

  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const next = this.#pending.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#now = next.at;
      next.live = false;
      next.fn();
    }
    this.#now = until;
    for (let i = this.#pending.length - 1; i >= 0; i--) if (!this.#pending[i]?.live) this.#pending.splice(i, 1);
  }
}
