// `parley backup --to FILE` and `parley restore FILE`: the database through SQLite's online backup
// (src/storage/backup.ts), while the server runs; the restore only where no server runs. A
// PostgreSQL database (a config's `database`, or --database) is refused (exit 1) with the way to do
// it there: PostgreSQL's own pg_dump and pg_restore, which know its files, roles and versions.
//
// Exit codes: 0 done; 1 failed (no database to back up, a write error); 2 usage; 3 refused (FILE
// exists, a server runs on the data directory, or it holds data, without --force); 4 (restore) the
// file is not a sound Parley database.
//
// secrets/ (the admin token, the nonce key) is not in the backup: the backup is one file, and those
// are made once at the first start and never change, so they belong with the configuration's own
// copy. A server restored without them makes new ones: SIP clients answer one more digest challenge,
// admin API callers read the new DATA-DIR/secrets/admin.token.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ParleyError } from '../errors.ts';
import type { StorageLocation } from '../storage/index.ts';
import { backupDatabase, chooseStorage, DATABASE_FILE, describeStorage, restoreDatabase, checkParleyDatabase, StorageError } from '../storage/index.ts';
import { runningServer } from './pid-lock.ts';

export interface BackupIo {
  out(line: string): void;
  err(line: string): void;
}

export interface BackupDefaults {
  dataDir: string;
  /** the data directory and database a config file names (`--config FILE`) */
  storageOf(configFile: string): StorageLocation;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3, notParley: 4 } as const;

export const BACKUP_USAGE = `parley backup --to FILE [--data-dir DIR | --config FILE] [--force]
parley restore FILE [--data-dir DIR | --config FILE] [--force]`;

export async function runBackupCommand(args: string[], io: BackupIo, defaults: BackupDefaults): Promise<number> {
  const parsed = parse('backup', args, io, false);
  if (typeof parsed === 'number') return parsed;
  const to = parsed.values.to;
  if (to === undefined || to === '') {
    io.err(`parley backup: --to FILE is required\n\n${BACKUP_USAGE}`);
    return EXIT.usage;
  }
  const dataDir = dataDirOf('backup', parsed.values, defaults, io);
  if (typeof dataDir === 'number') return dataDir;
  const target = resolve(to);
  if (existsSync(target) && parsed.values.force !== true) {
    io.err(`parley backup: ${target} exists; choose another file or add --force to replace it`);
    return EXIT.refused;
  }
  if (existsSync(target) && statSync(target).isDirectory()) {
    io.err(`parley backup: ${target} is a directory; --to names the backup file`);
    return EXIT.usage;
  }
  try {
    const bytes = await backupDatabase(join(dataDir, DATABASE_FILE), target);
    io.out(`backup of ${join(dataDir, DATABASE_FILE)} written to ${target} (${bytes} bytes, owner-only: it holds password hashes)`);
    io.out(`not in it: ${join(dataDir, 'secrets')}/ (admin token, nonce key; made once, never changed): copy it once with the configuration`);
    return EXIT.ok;
  } catch (err) {
    io.err(`parley backup: ${(err as Error).message}`);
    return EXIT.failed;
  }
}

export async function runRestoreCommand(args: string[], io: BackupIo, defaults: BackupDefaults): Promise<number> {
  const parsed = parse('restore', args, io, true);
  if (typeof parsed === 'number') return parsed;
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0 || parsed.values.to !== undefined) {
    io.err(`parley restore: name one backup FILE\n\n${BACKUP_USAGE}`);
    return EXIT.usage;
  }
  const dataDir = dataDirOf('restore', parsed.values, defaults, io);
  if (typeof dataDir === 'number') return dataDir;
  const pid = runningServer(dataDir);
  if (pid !== undefined) {
    io.err(`parley restore: a Parley server (process ${pid}) is running on ${dataDir}; stop it first (if none runs there, remove ${join(dataDir, 'parley.pid')})`);
    return EXIT.refused;
  }
  try {
    checkParleyDatabase(resolve(file));
  } catch (err) {
    io.err(`parley restore: ${(err as Error).message}`);
    return err instanceof StorageError && err.code === 'NOT_A_PARLEY_DATABASE' ? EXIT.notParley : EXIT.failed;
  }
  const target = join(dataDir, DATABASE_FILE);
  if (existsSync(target) && statSync(target).size > 0 && parsed.values.force !== true) {
    io.err(`parley restore: ${target} holds data; add --force to replace it with the backup (it is lost)`);
    return EXIT.refused;
  }
  try {
    // the same as the server makes it: owner-only
    if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const summary = await restoreDatabase(resolve(file), target);
    const parts = Object.entries(summary.capabilities).map(([c, n]) => `${c} ${n}`).join(', ');
    io.out(`restored ${resolve(file)} to ${target} (migrations: ${parts}); start the server on ${dataDir}`);
    return EXIT.ok;
  } catch (err) {
    io.err(`parley restore: ${(err as Error).message}`);
    return err instanceof ParleyError && err.code === 'NOT_A_PARLEY_DATABASE' ? EXIT.notParley : EXIT.failed;
  }
}

function parse(command: string, args: string[], io: BackupIo, positionals: boolean) {
  try {
    return parseArgs({ args, strict: true, allowPositionals: positionals, options: { to: { type: 'string' }, 'data-dir': { type: 'string' }, config: { type: 'string' }, database: { type: 'string' }, force: { type: 'boolean' } } });
  } catch (err) {
    io.err(`parley ${command}: ${(err as Error).message}\n\n${BACKUP_USAGE}`);
    return EXIT.usage;
  }
}

/**
 * --data-dir, or the dataDir of --config's file, or the default; an exit code when they cannot be
 * read, or when the database is PostgreSQL's (--database, or the config's `database`).
 */
function dataDirOf(command: 'backup' | 'restore', values: { 'data-dir'?: string; config?: string; database?: string }, defaults: BackupDefaults, io: BackupIo): string | number {
  if (values['data-dir'] !== undefined && values.config !== undefined) {
    io.err('parley: give --data-dir or --config, not both');
    return EXIT.usage;
  }
  let where = chooseStorage({ dataDir: values['data-dir'], database: values.database }, { dataDir: defaults.dataDir, database: null });
  if (typeof where === 'string') {
    io.err(`parley ${command}: ${where}`);
    return EXIT.usage;
  }
  if (values.config !== undefined) {
    try {
      where = defaults.storageOf(values.config);
    } catch (err) {
      io.err(`parley: ${(err as Error).message}`);
      return EXIT.usage;
    }
  }
  if (where.database === null) return where.dataDir;
  const source = values.config === undefined ? describeStorage(where) : `${describeStorage(where)} (the database of ${values.config})`;
  io.err(
    command === 'backup'
      ? `parley backup: ${source} is a PostgreSQL database, which parley backup (a copy of the SQLite file of a data directory) cannot copy; back it up with PostgreSQL's own tools: pg_dump --format=custom --file=FILE DATABASE-URL`
      : `parley restore: ${source} is a PostgreSQL database, which parley restore (the SQLite file of a data directory) cannot fill; restore it with PostgreSQL's own tools: pg_restore --dbname=DATABASE-URL FILE (a pg_dump --format=custom backup)`,
  );
  return EXIT.failed;
}
