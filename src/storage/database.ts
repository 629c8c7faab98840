// The embedded database: one SQLite file under the data directory, opened with Node's built-in
// node:sqlite. Repository functions of each capability take the Database as their first argument;
// nothing here is a module-level singleton.

import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import { StorageError } from './errors.ts';

/**
 * The database handle the repositories use. Today it is node:sqlite's synchronous connection;
 * repositories use only `prepare(sql).run/get/all(...)` with positional `?` parameters and
 * `exec(sql)`, so their signatures stay free of SQLite specifics.
 */
export type Database = DatabaseSync;

export const DATABASE_FILE = 'parley.db';

/**
 * How long a statement waits for a lock held by another connection before failing with
 * SQLITE_BUSY. The CLI (`parley user add`) writes while the server runs; writes are short, so a
 * few seconds is ample and still fails visibly if something holds the lock for good.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export interface OpenDatabaseOptions {
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) `<dataDir>/parley.db` and sets it up; see `configure` for the pragmas. */
export function openDatabase(dataDir: string, options: OpenDatabaseOptions = {}): Database {
  ensureDataDir(dataDir);
  const file = join(dataDir, DATABASE_FILE);
  try {
    // Create the file ourselves, owner-only: it holds password hashes. SQLite gives the -wal and
    // -shm files the permissions of the database file. An existing file keeps its mode.
    closeSync(openSync(file, 'a', 0o600));
  } catch (cause) {
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot create the database file ${file}: ${messageOf(cause)}; check the permissions of the data directory`, { cause });
  }
  return openAt(file, options);
}

/**
 * A second connection to a database file another connection opened (and created): the same
 * settings. For a worker thread that writes beside the main one.
 */
export function openDatabaseFile(file: string, options: OpenDatabaseOptions = {}): Database {
  return openAt(file, options);
}

/** An in-memory database with the same settings (except WAL, which needs a file); for tests. */
export function openMemoryDatabase(options: OpenDatabaseOptions = {}): Database {
  return openAt(':memory:', options);
}

function openAt(location: string, options: OpenDatabaseOptions): Database {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(location, {
      enableForeignKeyConstraints: true,
      timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    });
  } catch (cause) {
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot open the database ${location}: ${messageOf(cause)}`, { cause });
  }
  try {
    configure(db, location !== ':memory:', options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
  } catch (cause) {
    db.close();
    if (cause instanceof StorageError) throw cause;
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot set up the database ${location}: ${messageOf(cause)}`, { cause });
  }
  return db;
}

function configure(db: DatabaseSync, onDisk: boolean, busyTimeoutMs: number): void {
  // busy_timeout first, so that the journal-mode switch below also waits for another process.
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
  if (onDisk) {
    // WAL: readers never block the writer and see each commit at once, so a user added by the CLI
    // is visible to the running server on its next query. WAL needs shared memory, so the data
    // directory must be on a local file system.
    const row = db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode?: unknown } | undefined;
    if (row?.journal_mode !== 'wal') {
      throw new StorageError('DATABASE_OPEN_FAILED', `the database ${db.location() ?? ''} cannot use write-ahead logging (journal_mode is ${String(row?.journal_mode)}); put the data directory on a local file system`);
    }
  }
  // Durability over speed: FULL syncs the WAL to disk at every commit, so a message we answered
  // 202 Accepted for is on disk even if the machine loses power right after. (NORMAL would only
  // risk the last transactions on power loss, but those are exactly the ones we acknowledged.)
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA foreign_keys = ON');
}

/** Creates the data directory (owner-only) unless it exists; refuses a path that is not a directory. */
export function ensureDataDir(dataDir: string): void {
  let existing: ReturnType<typeof statSync>;
  try {
    existing = statSync(dataDir, { throwIfNoEntry: false });
  } catch (cause) {
    throw new StorageError('DATA_DIR_UNUSABLE', `cannot read the data directory ${dataDir}: ${messageOf(cause)}; check its permissions or choose another with --data-dir`, { cause });
  }
  if (existing !== undefined && !existing.isDirectory()) {
    throw new StorageError('DATA_DIR_UNUSABLE', `the data directory ${dataDir} exists but is not a directory; choose another with --data-dir`);
  }
  if (existing !== undefined) return; // an existing directory keeps its mode: the operator chose it
  try {
    // owner-only: the directory holds the database with password hashes
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new StorageError('DATA_DIR_UNUSABLE', `cannot create the data directory ${dataDir}: ${messageOf(cause)}; choose another with --data-dir`, { cause });
  }
}

/**
 * Runs `fn` in one write transaction and returns its result: committed when `fn` returns, rolled
 * back when it throws. BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
 * timeout), so two processes never both read, then both fail to upgrade to a write.
 * Inside another transaction it becomes a savepoint, so repository functions can nest.
 * `fn` must be synchronous: the connection is synchronous and a transaction cannot span an await.
 */
export function transaction<T>(db: Database, fn: () => T): T {
  const nested = db.isTransaction;
  db.exec(nested ? 'SAVEPOINT parley_nested' : 'BEGIN IMMEDIATE');
  let result: T;
  try {
    result = fn();
    if (isThenable(result)) {
      // keep a rejection of the stray promise from surfacing as an unhandled rejection
      (result as PromiseLike<unknown>).then(undefined, () => undefined);
      throw new StorageError('ASYNC_TRANSACTION', 'a transaction callback returned a promise; do the asynchronous work (hashing, I/O) before the transaction and keep the callback synchronous');
    }
  } catch (error) {
    if (nested) db.exec('ROLLBACK TO parley_nested; RELEASE parley_nested');
    else if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
  try {
    db.exec(nested ? 'RELEASE parley_nested' : 'COMMIT');
  } catch (error) {
    // e.g. the disk is full: do not leave the connection inside a half-done transaction
    if (!nested && db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
  return result;
}

const statements = new WeakMap<Database, Map<string, StatementSync>>();

/**
 * The prepared statement for `sql` on this connection, prepared once and reused: preparing costs
 * more than running a small statement, and the hot paths (authentication, the spool, delivery)
 * run the same few statements thousands of times a second.
 */
export function statement(db: Database, sql: string): StatementSync {
  let cache = statements.get(db);
  if (cache === undefined) statements.set(db, (cache = new Map()));
  let prepared = cache.get(sql);
  if (prepared === undefined) cache.set(sql, (prepared = db.prepare(sql)));
  return prepared;
}

/**
 * A number that changes whenever the database may have changed since the last call: a commit by
 * another connection (another process, `parley user add`) moves PRAGMA data_version, a write by
 * this connection moves total_changes(). Reading it costs less than most lookups, so a cache of
 * rows is kept valid by comparing it on each read.
 */
export function changeStamp(db: Database): number {
  const row = statement(db, 'SELECT data_version AS v, total_changes() AS c FROM pragma_data_version').get() as { v: number; c: number };
  // data_version stays far below 2^21 in practice and total_changes below 2^32 for a long time
  return row.v * 2 ** 32 + row.c;
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The database file's size and what of it is free pages (bytes): /metrics, and what VACUUM would give back. */
export function databaseSize(db: Database): { bytes: number; freeBytes: number } {
  const row = statement(db, 'SELECT p.page_count AS pages, s.page_size AS size, f.freelist_count AS free FROM pragma_page_count p, pragma_page_size s, pragma_freelist_count f').get() as { pages: number; size: number; free: number };
  return { bytes: row.pages * row.size, freeBytes: row.free * row.size };
}
