// Where the durable state lives: the SQLite file in the data directory (the default), or a
// PostgreSQL database named by `database: postgres://…` (the cluster's shared state). The server
// and every CLI open it here, so the choice is made in one place.

import type { Database } from './database.ts';
import { ensureDataDir, openDatabase } from './database.ts';
import { openPostgres } from './postgres-sql.ts';
import type { SqlDatabase } from './sql.ts';
import { sqliteSql } from './sqlite-sql.ts';
import { StorageError } from './errors.ts';

export interface StorageLocation {
  /** the data directory: the SQLite file lives there when `database` is null */
  readonly dataDir: string;
  /** `postgres://…` / `postgresql://…`, or null for SQLite in the data directory */
  readonly database: string | null;
}

export interface Storage {
  readonly sql: SqlDatabase;
  /** the node:sqlite connection on SQLite (backup, integrity check, the writer threads' file); null on PostgreSQL */
  readonly sqlite: Database | null;
}

/** True for the database addresses Parley takes: a PostgreSQL URL. */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(text);
}

export async function openStorage(where: StorageLocation, options: { applicationName?: string; max?: number } = {}): Promise<Storage> {
  if (where.database === null) {
    const db = openDatabase(where.dataDir);
    return { sql: sqliteSql(db), sqlite: db };
  }
  if (!isPostgresUrl(where.database)) throw new StorageError('DATABASE_OPEN_FAILED', `database must be a PostgreSQL address such as postgres://parley@db.example.com/parley (leave it out for SQLite in the data directory)`);
  // the data directory still holds the secrets (admin token, ACME account) and the pid file
  ensureDataDir(where.dataDir);
  return { sql: await openPostgres(where.database, options), sqlite: null };
}
