// Where the durable state lives: the SQLite file in the data directory (the default), or a
// PostgreSQL database named by `database: postgres://…` (the cluster's shared state). The server
// and every CLI open it here, so the choice is made in one place.

import type { Database } from './database.ts';
import { ensureDataDir, openDatabase } from './database.ts';
import { openPostgres, redactUrl } from './postgres-sql.ts';
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

export interface OpenStorageOptions {
  /** shown in pg_stat_activity */
  readonly applicationName?: string;
  /** PostgreSQL connections in the pool */
  readonly max?: number;
  /**
   * On PostgreSQL, make the data directory too (default true): the server keeps its secrets and pid
   * file there. The command-line tools need nothing of it there and leave it alone.
   */
  readonly ensureDataDir?: boolean;
}

export async function openStorage(where: StorageLocation, options: OpenStorageOptions = {}): Promise<Storage> {
  if (where.database === null) {
    const db = openDatabase(where.dataDir);
    return { sql: sqliteSql(db), sqlite: db };
  }
  if (!isPostgresUrl(where.database)) throw new StorageError('DATABASE_OPEN_FAILED', `database must be a PostgreSQL address such as postgres://parley@db.example.com/parley (leave it out for SQLite in the data directory)`);
  // the data directory still holds the secrets (admin token, ACME account) and the pid file
  if (options.ensureDataDir !== false) ensureDataDir(where.dataDir);
  return { sql: await openPostgres(where.database, { applicationName: options.applicationName, max: options.max }), sqlite: null };
}

/** What a command-line tool was told about its storage: `--data-dir DIR`, `--database URL`, each or neither. */
export interface StorageFlags {
  readonly dataDir?: string | undefined;
  readonly database?: string | undefined;
}

/**
 * Where a command-line tool acts: `--database URL` (PostgreSQL) or `--data-dir DIR` (SQLite there),
 * else `fallback` (a config file's choice, or the default data directory). A string is the usage
 * error to show (exit 2): both flags at once, or a database address that is not PostgreSQL's.
 */
export function chooseStorage(flags: StorageFlags, fallback: StorageLocation): StorageLocation | string {
  if (flags.dataDir !== undefined && flags.database !== undefined) {
    return 'give --data-dir DIR (SQLite in that directory) or --database postgres://… (PostgreSQL), not both';
  }
  if (flags.database !== undefined) {
    if (!isPostgresUrl(flags.database)) return '--database must be a PostgreSQL address such as postgres://parley@db.example.com/parley (postgres:// or postgresql://)';
    return { dataDir: fallback.dataDir, database: flags.database };
  }
  if (flags.dataDir !== undefined) return { dataDir: flags.dataDir, database: null };
  return fallback;
}

/** Where a message may say the storage is: the data directory, or the database address without its password. */
export function describeStorage(where: StorageLocation): string {
  return where.database === null ? where.dataDir : redactUrl(where.database);
}
