// The sign-in guard's tables: what it counts (so the administrator sees it with Get-CsAuthLockout,
// and a restart does not lift a lockout), the sources each account signed in from, and a short
// log of clears that the running server polls (Clear-CsAuthLockout from another process reaches
// it within a second; through the admin API at once). The server writes here only on failures,
// lockouts and first sign-ins from a new address, never on the per-request check.

import type { Database, MigrationSet } from '../storage/index.ts';
import { statement, transaction } from '../storage/index.ts';
import type { FamiliarSource, GuardChanges, LockoutKind, LockoutState } from './lockout.ts';

/** Clears older than this leave the log: the server polls it every second. */
export const CLEAR_LOG_KEEP_MS = 10 * 60_000;

export const AUTH_MIGRATIONS: MigrationSet = {
  capability: 'auth',
  migrations: [
    {
      id: '001-lockouts',
      up: `CREATE TABLE auth_lockouts (
  kind TEXT NOT NULL CHECK (kind IN ('source', 'account')),
  key TEXT NOT NULL,
  failures INTEGER NOT NULL,
  last_failure INTEGER NOT NULL,
  locked_until INTEGER NOT NULL,
  lockouts INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE auth_familiar_sources (
  account TEXT NOT NULL,
  source TEXT NOT NULL,
  last_success INTEGER NOT NULL,
  PRIMARY KEY (account, source)
) STRICT, WITHOUT ROWID;
CREATE TABLE auth_lockout_clears (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;`,
    },
  ],
};

interface Row {
  kind: LockoutKind;
  key: string;
  failures: number;
  last_failure: number;
  locked_until: number;
  lockouts: number;
}

/** Every recorded source and account, sources first, then by key. */
export function listLockouts(db: Database): LockoutState[] {
  const rows = db.prepare("SELECT kind, key, failures, last_failure, locked_until, lockouts FROM auth_lockouts ORDER BY kind = 'account', key").all() as unknown as Row[];
  return rows.map(stateOf);
}

export function getLockout(db: Database, kind: LockoutKind, key: string): LockoutState | undefined {
  const row = db.prepare('SELECT kind, key, failures, last_failure, locked_until, lockouts FROM auth_lockouts WHERE kind = ? AND key = ?').get(kind, key) as Row | undefined;
  return row === undefined ? undefined : stateOf(row);
}

/** Familiar sources signed in from since `since` (ms). */
export function listFamiliarSources(db: Database, since: number): FamiliarSource[] {
  const rows = db.prepare('SELECT account, source, last_success FROM auth_familiar_sources WHERE last_success >= ?').all(since) as Array<{ account: string; source: string; last_success: number }>;
  return rows.map((r) => ({ account: r.account, source: r.source, at: Number(r.last_success) }));
}

/** Writes one state (a lockout that starts): inside the caller's transaction when there is one. */
export function saveLockout(db: Database, state: LockoutState): void {
  statement(
    db,
    `INSERT INTO auth_lockouts (kind, key, failures, last_failure, locked_until, lockouts) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, locked_until = excluded.locked_until, lockouts = excluded.lockouts`,
  ).run(state.kind, state.key, state.failures, state.lastFailure, state.lockedUntil, state.lockouts);
}

/** Writes what the guard changed, in one transaction; familiar sources older than `familiarSince` go. */
export function saveGuardChanges(db: Database, changes: GuardChanges, familiarSince: number): void {
  if (changes.saved.length === 0 && changes.removed.length === 0 && changes.familiar.length === 0) return;
  transaction(db, () => {
    for (const state of changes.saved) saveLockout(db, state);
    const remove = statement(db, 'DELETE FROM auth_lockouts WHERE kind = ? AND key = ?');
    for (const r of changes.removed) remove.run(r.kind, r.key);
    const familiar = statement(
      db,
      `INSERT INTO auth_familiar_sources (account, source, last_success) VALUES (?, ?, ?)
       ON CONFLICT (account, source) DO UPDATE SET last_success = max(last_success, excluded.last_success)`,
    );
    for (const f of changes.familiar) familiar.run(f.account, f.source, f.at);
    if (changes.familiar.length > 0) statement(db, 'DELETE FROM auth_familiar_sources WHERE last_success < ?').run(familiarSince);
  });
}

/**
 * Forgets a source or an account (its count, lockout and streak) and logs the clear for the
 * running server. Returns what was recorded, or undefined when nothing was.
 */
export function clearLockout(db: Database, kind: LockoutKind, key: string, now: number): LockoutState | undefined {
  return transaction(db, () => {
    const existing = getLockout(db, kind, key);
    if (existing === undefined) return undefined;
    db.prepare('DELETE FROM auth_lockouts WHERE kind = ? AND key = ?').run(kind, key);
    db.prepare('INSERT INTO auth_lockout_clears (kind, key, at) VALUES (?, ?, ?)').run(kind, key, now);
    db.prepare('DELETE FROM auth_lockout_clears WHERE at < ?').run(now - CLEAR_LOG_KEEP_MS);
    return existing;
  });
}

/** The newest clear's number, 0 when there was none: where the server's poll starts. */
export function lastLockoutClear(db: Database): number {
  const row = statement(db, 'SELECT max(seq) AS seq FROM auth_lockout_clears').get() as { seq: number | null } | undefined;
  return Number(row?.seq ?? 0);
}

/** The clears after `seq`, oldest first. */
export function lockoutClearsSince(db: Database, seq: number): Array<{ seq: number; kind: LockoutKind; key: string }> {
  const rows = statement(db, 'SELECT seq, kind, key FROM auth_lockout_clears WHERE seq > ? ORDER BY seq').all(seq) as Array<{ seq: number; kind: LockoutKind; key: string }>;
  return rows.map((r) => ({ seq: Number(r.seq), kind: r.kind, key: r.key }));
}

function stateOf(row: Row): LockoutState {
  return {
    kind: row.kind,
    key: row.key,
    failures: Number(row.failures),
    lastFailure: Number(row.last_failure),
    lockedUntil: Number(row.locked_until),
    lockouts: Number(row.lockouts),
  };
}

/**
 * Rows of the sign-in guard that no longer mean anything, at most `limit` of each table (the
 * retention sweep; the running guard forgets them in memory already, but a row written before a
 * restart or by another process stays): counts whose lockout ended and whose window passed,
 * sources not signed in from within `familiarMs`, clears older than the clear log keeps.
 */
export function purgeExpiredLockoutBatch(db: Database, now: number, windowMs: number, familiarMs: number, limit: number): number {
  let deleted = Number(statement(db, 'DELETE FROM auth_lockouts WHERE (kind, key) IN (SELECT kind, key FROM auth_lockouts WHERE locked_until < ? AND last_failure < ? LIMIT ?)').run(now, now - windowMs, limit).changes);
  deleted += Number(statement(db, 'DELETE FROM auth_familiar_sources WHERE (account, source) IN (SELECT account, source FROM auth_familiar_sources WHERE last_success < ? LIMIT ?)').run(now - familiarMs, limit).changes);
  deleted += Number(statement(db, 'DELETE FROM auth_lockout_clears WHERE seq IN (SELECT seq FROM auth_lockout_clears WHERE at < ? LIMIT ?)').run(now - CLEAR_LOG_KEEP_MS, limit).changes);
  return deleted;
}
