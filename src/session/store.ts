// Browser sessions in the database. Only the SHA-256 of a token is stored: whoever reads the
// database (a backup) cannot sign in with what they find. A session names its user and a stamp of
// the user's password as it was at sign-in (a hash of the stored password hash, never the hash
// itself): a new password ends the user's sessions, and removing the user deletes them.

import type { MigrationSet, Sql } from '../storage/index.ts';

export const SESSION_MIGRATIONS: MigrationSet = {
  capability: 'session',
  migrations: [
    {
      id: '001-web-sessions',
      up: {
        sqlite: `CREATE TABLE web_sessions (
  token_hash TEXT NOT NULL PRIMARY KEY,
  address TEXT NOT NULL REFERENCES users (address) ON DELETE CASCADE,
  password_stamp TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_by_address ON web_sessions (address, created_at);`,
        postgres: `CREATE TABLE web_sessions (
  token_hash TEXT NOT NULL PRIMARY KEY,
  address TEXT NOT NULL REFERENCES users (address) ON DELETE CASCADE,
  password_stamp TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_address ON web_sessions (address, created_at);`,
      },
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

export async function insertSession(sql: Sql, s: StoredSession): Promise<void> {
  await sql.run('INSERT INTO web_sessions (token_hash, address, password_stamp, created_at, last_seen) VALUES (?, ?, ?, ?, ?)', [s.tokenHash, s.address, s.passwordStamp, s.createdAt, s.lastSeen]);
}

export async function findSession(sql: Sql, tokenHash: string): Promise<StoredSession | undefined> {
  const row = await sql.get<Row>('SELECT token_hash, address, password_stamp, created_at, last_seen FROM web_sessions WHERE token_hash = ?', [tokenHash]);
  return row === undefined ? undefined : { tokenHash: row.token_hash, address: row.address, passwordStamp: row.password_stamp, createdAt: Number(row.created_at), lastSeen: Number(row.last_seen) };
}

/** Records a use of the session (the idle expiry slides from here). */
export async function touchSession(sql: Sql, tokenHash: string, at: number): Promise<void> {
  await sql.run('UPDATE web_sessions SET last_seen = ? WHERE token_hash = ?', [at, tokenHash]);
}

export async function deleteSession(sql: Sql, tokenHash: string): Promise<void> {
  await sql.run('DELETE FROM web_sessions WHERE token_hash = ?', [tokenHash]);
}

/** Deletes the sessions unused since `idleBefore` or made before `createdBefore`; returns how many. */
export async function deleteExpiredSessions(sql: Sql, idleBefore: number, createdBefore: number): Promise<number> {
  return (await sql.run('DELETE FROM web_sessions WHERE last_seen < ? OR created_at < ?', [idleBefore, createdBefore])).changes;
}

/** Keeps the user's `keep` newest sessions and deletes the others; returns how many went. */
export async function trimUserSessions(sql: Sql, address: string, keep: number): Promise<number> {
  const result = await sql.run(
    'DELETE FROM web_sessions WHERE address = ? AND token_hash NOT IN (SELECT token_hash FROM web_sessions WHERE address = ? ORDER BY created_at DESC, token_hash LIMIT ?)',
    [address, address, keep],
  );
  return result.changes;
}

export async function countUserSessions(sql: Sql, address: string): Promise<number> {
  return Number((await sql.get<{ n: number }>('SELECT count(*) AS n FROM web_sessions WHERE address = ?', [address]))?.n ?? 0);
}

const PURGE_EXPIRED_BATCH = 'DELETE FROM web_sessions WHERE token_hash IN (SELECT token_hash FROM web_sessions WHERE last_seen < ? OR created_at < ? LIMIT ?)';

/** Like deleteExpiredSessions, at most `limit` rows (the retention sweep: a sign-in sweeps too, but only then). */
export async function purgeExpiredSessionBatch(sql: Sql, idleBefore: number, createdBefore: number, limit: number): Promise<number> {
  return (await sql.run(PURGE_EXPIRED_BATCH, [idleBefore, createdBefore, limit])).changes;
}
