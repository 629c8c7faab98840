// Browser sessions in the database. Only the SHA-256 of a token is stored: whoever reads the
// database (a backup) cannot sign in with what they find. A session names its user and a stamp of
// the user's password as it was at sign-in (a hash of the stored password hash, never the hash
// itself): a new password ends the user's sessions, and removing the user deletes them.

import type { Database, MigrationSet } from '../storage/index.ts';
import { statement } from '../storage/index.ts';

export const SESSION_MIGRATIONS: MigrationSet = {
  capability: 'session',
  migrations: [
    {
      id: '001-web-sessions',
      up: `CREATE TABLE web_sessions (
  token_hash TEXT NOT NULL PRIMARY KEY,
  address TEXT NOT NULL REFERENCES users (address) ON DELETE CASCADE,
  password_stamp TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_by_address ON web_sessions (address, created_at);`,
    },
  ],
};

export interface StoredSession {
  tokenHash: string;
  address: string;
  passwordStamp: string;
  createdAt: number;
  lastSeen: number;
}

interface Row {
  token_hash: string;
  address: string;
  password_stamp: string;
  created_at: number;
  last_seen: number;
}

export function insertSession(db: Database, s: StoredSession): void {
  statement(db, 'INSERT INTO web_sessions (token_hash, address, password_stamp, created_at, last_seen) VALUES (?, ?, ?, ?, ?)').run(s.tokenHash, s.address, s.passwordStamp, s.createdAt, s.lastSeen);
}

export function findSession(db: Database, tokenHash: string): StoredSession | undefined {
  const row = statement(db, 'SELECT token_hash, address, password_stamp, created_at, last_seen FROM web_sessions WHERE token_hash = ?').get(tokenHash) as Row | undefined;
  return row === undefined ? undefined : { tokenHash: row.token_hash, address: row.address, passwordStamp: row.password_stamp, createdAt: Number(row.created_at), lastSeen: Number(row.last_seen) };
}

/** Records a use of the session (the idle expiry slides from here). */
export function touchSession(db: Database, tokenHash: string, at: number): void {
  statement(db, 'UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?').run(at, tokenHash);
}

export function deleteSession(db: Database, tokenHash: string): void {
  statement(db, 'DELETE FROM web_sessions WHERE token_hash = ?').run(tokenHash);
}

/** Deletes the sessions unused since `idleBefore` or made before `createdBefore`; returns how many. */
export function deleteExpiredSessions(db: Database, idleBefore: number, createdBefore: number): number {
  return Number(statement(db, 'DELETE FROM web_sessions WHERE last_seen < ? OR created_at < ?').run(idleBefore, createdBefore).changes);
}

/** Keeps the user's `keep` newest sessions and deletes the others; returns how many went. */
export function trimUserSessions(db: Database, address: string, keep: number): number {
  return Number(
    statement(db, 'DELETE FROM web_sessions WHERE address = ? AND token_hash NOT IN (SELECT token_hash FROM web_sessions WHERE address = ? ORDER BY created_at DESC, token_hash LIMIT ?)').run(address, address, keep).changes,
  );
}

export function countUserSessions(db: Database, address: string): number {
  return Number((statement(db, 'SELECT count(*) AS n FROM web_sessions WHERE address = ?').get(address) as { n: number }).n);
}

/** Like deleteExpiredSessions, at most `limit` rows (the retention sweep: a sign-in sweeps too, but only then). */
export function purgeExpiredSessionBatch(db: Database, idleBefore: number, createdBefore: number, limit: number): number {
  return Number(statement(db, 'DELETE FROM web_sessions WHERE token_hash IN (SELECT token_hash FROM web_sessions WHERE last_seen < ? OR created_at < ? LIMIT ?)').run(idleBefore, createdBefore, limit).changes);
}
