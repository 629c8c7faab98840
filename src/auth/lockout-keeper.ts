// The running server's sign-in guard, kept in step with the database: lockouts survive a restart
// and the administrator sees them (Get-CsAuthLockout); a clear made by another process
// (`parley admin --data-dir … Clear-CsAuthLockout`) reaches the server within a second through the
// clear log it polls, one made through the admin API at once (cleared()).
//
// Writes: once a second, in one transaction, only when something changed: counts, familiar
// sources, and the lockouts that started with their audit rows (Who = system). Not one write per
// lockout: a guesser who spoofs UDP source addresses can start many lockouts a second, and each
// commit waits for the disk (synchronous = FULL). For the same reason at most MAX_AUDITS_PER_FLUSH
// lockouts are audited one by one per round; the rest are counted in one more row. The
// per-request check reads memory only.

import type { Logger } from '../observability/logger.ts';
import type { Sql } from '../storage/index.ts';
import { FAMILIAR_MS, SignInGuard } from './lockout.ts';
import type { LockoutKind, LockoutPolicy, LockoutState } from './lockout.ts';
import { lastLockoutClear, listFamiliarSources, listLockouts, lockoutClearsSince, saveGuardChanges } from './lockout-store.ts';

export const DEFAULT_LOCKOUT_POLL_MS = 1000;
const SWEEP_EVERY_MS = 60_000;
export const MAX_AUDITS_PER_FLUSH = 100;

export interface LockoutKeeperOptions {
  sql: Sql;
  policy: LockoutPolicy;
  logger: Logger;
  /**
   * Writes the audit row of a change the server made itself (a lockout that starts) through `tx`,
   * the keeper's transaction; the server binds settings' recordAudit with Who = system.
   */
  audit: (tx: Sql, identity: string, property: string, oldValue: string | null, newValue: string | null) => Promise<void> | void;
  pollMs?: number;
  now?: () => number;
}

/** How the audit log and Get-CsAuthLockout name a guard entry: the account, or `Source:192.0.2.7`. */
export function lockoutIdentity(kind: LockoutKind, key: string): string {
  return kind === 'account' ? key : `Source:${key}`;
}

export class LockoutKeeper {
  readonly guard: SignInGuard;
  readonly #opts: LockoutKeeperOptions;
  readonly #now: () => number;
  #clearSeq = 0;
  #lastSweep = 0;
  #timer: NodeJS.Timeout | undefined;
  /** the round under way: rounds never overlap, and close() waits for it */
  #round: Promise<void> | null = null;
  /** lockouts started since the last flush, to audit */
  #started: LockoutState[] = [];

  constructor(opts: LockoutKeeperOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.guard = new SignInGuard(opts.policy, { now: this.#now, onLockout: (state) => this.#lockoutStarted(state) });
  }

  /** Loads what the database holds and starts polling for clears. */
  async start(): Promise<void> {
    const now = this.#now();
    this.guard.load(await listLockouts(this.#opts.sql), await listFamiliarSources(this.#opts.sql, now - FAMILIAR_MS));
    this.#clearSeq = await lastLockoutClear(this.#opts.sql);
    this.#lastSweep = now;
    this.#timer = setInterval(() => void this.tick(), this.#opts.pollMs ?? DEFAULT_LOCKOUT_POLL_MS);
    this.#timer.unref();
  }

  /** One round: clears made elsewhere, then what changed here is written. A round under way is not started twice. */
  tick(): Promise<void> {
    this.#round ??= this.#tick().finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  async #tick(): Promise<void> {
    try {
      const clears = await lockoutClearsSince(this.#opts.sql, this.#clearSeq);
      for (const c of clears) {
        this.#clearSeq = c.seq;
        if (this.guard.clear(c.kind, c.key)) this.#opts.logger.info({ kind: c.kind, key: c.key }, 'sign-in lockout of %s cleared by an administrator', lockoutIdentity(c.kind, c.key));
      }
      const now = this.#now();
      if (now - this.#lastSweep >= SWEEP_EVERY_MS) {
        this.#lastSweep = now;
        this.guard.sweep();
      }
      await this.flush();
    } catch (err) {
      this.#opts.logger.error({ err }, 'keeping the sign-in lockouts in the database failed');
    }
  }

  /** Writes what changed: counts, familiar sources, lockouts and their audit rows (Get-CsAuthLockout through the admin API calls this first). */
  async flush(): Promise<void> {
    const changes = this.guard.takeChanges();
    const started = this.#started;
    this.#started = [];
    if (changes.saved.length === 0 && changes.removed.length === 0 && changes.familiar.length === 0 && started.length === 0) return;
    try {
      // only database work inside: PostgreSQL may run it again on a serialisation conflict
      await this.#opts.sql.transaction(async (tx) => {
        await saveGuardChanges(tx, changes, this.#now() - FAMILIAR_MS);
        for (const state of started.slice(0, MAX_AUDITS_PER_FLUSH)) {
          await this.#opts.audit(tx, lockoutIdentity(state.kind, state.key), 'LockedUntil', null, new Date(state.lockedUntil).toISOString());
        }
        const more = started.length - MAX_AUDITS_PER_FLUSH;
        if (more > 0) await this.#opts.audit(tx, '*', 'LockedUntil', null, `${more} more lockouts within a second; see Get-CsAuthLockout -Locked`);
      });
    } catch (err) {
      // written with the next round (the states are still in the guard, the audits are kept)
      this.#started = [...started, ...this.#started];
      this.guard.restoreChanges(changes);
      throw err;
    }
  }

  /** Clear-CsAuthLockout ran in this process (the admin API): the guard forgets at once. */
  cleared(kind: LockoutKind, key: string): void {
    this.guard.clear(kind, key);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round;
    try {
      await this.flush();
    } catch (err) {
      this.#opts.logger.error({ err }, 'writing the sign-in counts at shutdown failed');
    }
  }

  #lockoutStarted(state: Readonly<LockoutState>): void {
    const identity = lockoutIdentity(state.kind, state.key);
    const until = new Date(state.lockedUntil).toISOString();
    this.#opts.logger.warn(
      { kind: state.kind, key: state.key, failures: state.failures, lockedUntil: until, lockouts: state.lockouts },
      'sign-in lockout of %s until %s after %d failed sign-ins (lockout %d in a row)',
      identity, until, state.failures, state.lockouts,
    );
    this.#started.push({ ...state });
  }
}
