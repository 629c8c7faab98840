// The life of a browser session: opened after a password check (route.ts), found again from the
// cookie's token on each request, ended by sign-out, by idleness (12 h without a request), by age
// (7 days after sign-in, whatever the use), by a new password or by the user's removal.
//
// A request checks its session with one indexed read; the sliding idle expiry is written at most
// once a minute per session (IDLE_WRITE_MS), not on every request. Expired rows are swept at
// sign-ins (at most once a minute); one found expired on use is deleted then.

import { createHash, randomBytes } from 'node:crypto';
import { passwordStamp } from '../directory/index.ts';
import type { Sql } from '../storage/index.ts';
import { deleteExpiredSessions, deleteSession, findSession, insertSession, touchSession, trimUserSessions } from './store.ts';

export const DEFAULT_IDLE_MS = 12 * 3600_000;
export const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600_000;
/** a session's last use is written when it is older than this */
export const IDLE_WRITE_MS = 60_000;
/** sessions one user may hold (browsers, devices); the oldest goes when a new one passes it */
export const MAX_SESSIONS_PER_USER = 50;
const SWEEP_MS = 60_000;

export interface WebSessionsOptions {
  sql: Sql;
  idleMs?: number;
  maxAgeMs?: number;
  now?: () => number;
}

/** Why a token does not (any longer) name a session. */
export type SessionEnd = 'unknown' | 'idle' | 'expired' | 'password-changed' | 'user-removed';

export type SessionCheck = { ok: true; address: string } | { ok: false; reason: SessionEnd };

export class WebSessions {
  readonly #sql: Sql;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(opts: WebSessionsOptions) {
    this.#sql = opts.sql;
    this.#idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.#maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** A new session for a user whose password was just checked: its token (for the cookie only). */
  async open(address: string): Promise<string> {
    const at = this.#now();
    await this.#sweep(at);
    const stamp = await passwordStamp(this.#sql, address);
    if (stamp === undefined) throw new Error(`user ${address} does not exist`);
    // 256 bits from the CSPRNG: guessing one is hopeless, so the lookup needs no rate limit
    const token = randomBytes(32).toString('base64url');
    await insertSession(this.#sql, { tokenHash: tokenHash(token), address, passwordStamp: stampOf(stamp), createdAt: at, lastSeen: at });
    await trimUserSessions(this.#sql, address, MAX_SESSIONS_PER_USER);
    return token;
  }

  /** The user a token signs in, or why it does not; an ended session is deleted on the way. */
  async check(token: string): Promise<SessionCheck> {
    const hash = tokenHash(token);
    const session = await findSession(this.#sql, hash);
    if (session === undefined) return { ok: false, reason: 'unknown' };
    const at = this.#now();
    const end = await this.#endOf(session, at);
    if (end !== undefined) {
      await deleteSession(this.#sql, hash);
      return { ok: false, reason: end };
    }
    if (at - session.lastSeen >= IDLE_WRITE_MS) await touchSession(this.#sql, hash, at);
    return { ok: true, address: session.address };
  }

  /** Ends the session (sign-out); a token that names none is fine. */
  async close(token: string): Promise<void> {
    await deleteSession(this.#sql, tokenHash(token));
  }

  async #endOf(session: { address: string; passwordStamp: string; createdAt: number; lastSeen: number }, at: number): Promise<SessionEnd | undefined> {
    if (at - session.createdAt >= this.#maxAgeMs) return 'expired';
    if (at - session.lastSeen >= this.#idleMs) return 'idle';
    const stamp = await passwordStamp(this.#sql, session.address);
    if (stamp === undefined) return 'user-removed';
    if (stampOf(stamp) !== session.passwordStamp) return 'password-changed';
    return undefined;
  }

  async #sweep(at: number): Promise<void> {
    if (at - this.#sweptAt < SWEEP_MS) return;
    this.#sweptAt = at;
    await deleteExpiredSessions(this.#sql, at - this.#idleMs, at - this.#maxAgeMs);
  }
}

/** What the database keeps of a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** What a session keeps of the user's stored password hash: enough to see it changed, nothing to attack. */
function stampOf(storedHash: string): string {
  return createHash('sha256').update(`parley-session-stamp\0${storedHash}`).digest('base64url');
}
