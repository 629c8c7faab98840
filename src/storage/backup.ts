// Online backup and restore of the embedded database, through SQLite's backup API (node:sqlite's
// `backup`), never a file copy: a copy of a live WAL database's file misses what is still in the
// -wal file, or catches a page mid-write.
//
// The whole database is copied in ONE backup step (rate = every page). SQLite restarts a stepwise
// backup whenever another connection writes to the source, which under offline-IM load (a group
// commit every few milliseconds) would never finish; one step is one read transaction, which in
// WAL mode never blocks the writers, and gives a copy as of one instant.
import { chmodSync, closeSync, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
import { StorageError } from './errors.ts';

const ALL_PAGES = 2 ** 31 - 1;

/**
 * Copies the database at `sourceFile` (which a server may be using) to `target`, made owner-only
 * (it holds password hashes). Written beside `target` under a temporary name, checked, then
 * renamed: a `target` that exists is always a whole backup. Returns its size in bytes.
 */
export async function backupDatabase(sourceFile: string, target: string): Promise<number> {
  const source = openExisting(sourceFile, false);
  const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
  try {
    closeSync(openSync(partial, 'w', 0o600));
    await backup(source, partial, { rate: ALL_PAGES });
  } catch (cause) {
    rmSync(partial, { force: true });
    throw new StorageError('BACKUP_FAILED', `the backup of ${sourceFile} to ${target} failed: ${messageOf(cause)}`, { cause });
  } finally {
    source.close();
  }
  try {
    // one self-contained file: the rollback journal mode leaves no -wal file beside it
    const copy = new DatabaseSync(partial);
    try {
      copy.exec('PRAGMA journal_mode = DELETE');
      checkIntegrity(copy, partial);
    } finally {
      copy.close();
    }
    chmodSync(partial, 0o600);
    renameSync(partial, target);
  } catch (cause) {
    rmSync(partial, { force: true });
    throw cause instanceof StorageError ? cause : new StorageError('BACKUP_FAILED', `the backup to ${target} failed: ${messageOf(cause)}`, { cause });
  }
  return statSync(target).size;
}

/** What a Parley database holds, for the restore's report: the capabilities and how many migrations each. */
export interface DatabaseSummary {
  capabilities: Record<string, number>;
}

/** Throws DATABASE_OPEN_FAILED when `file` is missing, NOT_A_PARLEY_DATABASE unless it is an SQLite database that passes integrity_check and has Parley's migrations table. */
export function checkParleyDatabase(file: string): DatabaseSummary {
  if (!existsSync(file)) throw new StorageError('DATABASE_OPEN_FAILED', `${file} does not exist`);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { readOnly: true });
  } catch (cause) {
    throw new StorageError('NOT_A_PARLEY_DATABASE', `${file} cannot be opened as an SQLite database: ${messageOf(cause)}`, { cause });
  }
  try {
    checkIntegrity(db, file);
    const table = db.prepare("SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (table === undefined) throw new StorageError('NOT_A_PARLEY_DATABASE', `${file} is an SQLite database but not Parley's: it has no schema_migrations table`);
    const rows = db.prepare('SELECT capability, count(*) AS n FROM schema_migrations GROUP BY capability ORDER BY capability').all() as Array<{ capability: string; n: number }>;
    if (!rows.some((r) => r.capability === 'directory')) throw new StorageError('NOT_A_PARLEY_DATABASE', `${file} has no migrations of Parley's directory: not a Parley database`);
    return { capabilities: Object.fromEntries(rows.map((r) => [r.capability, Number(r.n)])) };
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw new StorageError('NOT_A_PARLEY_DATABASE', `${file} is not a readable SQLite database: ${messageOf(cause)}`, { cause });
  } finally {
    db.close();
  }
}

/**
 * Replaces the database `target` with a copy of the backup `file` (checked first). The old -wal
 * and -shm files go: a stale -wal beside the restored file would be replayed into it. No server
 * may be using `target` (the caller checks).
 */
export async function restoreDatabase(file: string, target: string): Promise<DatabaseSummary> {
  const summary = checkParleyDatabase(file);
  const partial = join(dirname(target), `.${basename(target)}.restore-${process.pid}`);
  const source = openExisting(file, true);
  try {
    closeSync(openSync(partial, 'w', 0o600));
    await backup(source, partial, { rate: ALL_PAGES });
    const copy = new DatabaseSync(partial);
    try {
      copy.exec('PRAGMA journal_mode = DELETE');
    } finally {
      copy.close();
    }
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${target}${suffix}`, { force: true });
    chmodSync(partial, 0o600);
    renameSync(partial, target);
  } catch (cause) {
    rmSync(partial, { force: true });
    throw new StorageError('RESTORE_FAILED', `restoring ${file} to ${target} failed: ${messageOf(cause)}`, { cause });
  } finally {
    source.close();
  }
  return summary;
}

function openExisting(file: string, readOnly: boolean): DatabaseSync {
  if (!existsSync(file)) throw new StorageError('DATABASE_OPEN_FAILED', `there is no database at ${file}; check --data-dir`);
  try {
    // the server's busy timeout: the one read transaction waits for a checkpoint at most this long
    return new DatabaseSync(file, { readOnly, timeout: 5000 });
  } catch (cause) {
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot open the database ${file}: ${messageOf(cause)}`, { cause });
  }
}

function checkIntegrity(db: DatabaseSync, file: string): void {
  const rows = db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>;
  const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
  if (problems.length > 0) throw new StorageError('NOT_A_PARLEY_DATABASE', `${file} fails SQLite's integrity check: ${problems.slice(0, 3).join('; ')}`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
