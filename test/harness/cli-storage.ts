// The storage a command-line tool's tests run it on, once per engine (ENGINES): a fresh data
// directory named with `--data-dir DIR` on SQLite, a fresh PostgreSQL database named with
// `--database URL` on PostgreSQL — the two ways an operator points `parley admin`, `parley user`,
// `parley spooler`… at a server's storage. `open()` is a connection of its own, as a running server
// (or the test looking at what the command did) would have.
//
//   for (const engine of CLI_ENGINES) describe(`parley user on ${engine.name}`, () => {
//     let store: CliStorage;
//     beforeEach(async () => { store = await engine.fresh(); });
//     afterEach(() => store.drop());
//     it('adds', async () => { await runUserCommand(['add', 'alice', ...store.args], io, defaults); … });
//   });
//   after(closeTestPostgres);

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SqlDatabase, SqlEngine } from '../../src/storage/index.ts';
import { openDatabase, openPostgres, sqliteSql } from '../../src/storage/index.ts';
import { after } from 'node:test';
import { ENGINES, freshPostgresDatabase } from './engines.ts';

export interface CliStorage {
  readonly engine: SqlEngine;
  /** the options that name it: `--data-dir DIR` or `--database URL` */
  readonly args: readonly string[];
  /** the data directory on SQLite; on PostgreSQL one the tools must leave alone (it is never made) */
  readonly dataDir: string;
  /** the database URL on PostgreSQL, null on SQLite */
  readonly database: string | null;
  /** a connection of its own to the same storage (the caller closes it) */
  open(): Promise<SqlDatabase>;
  /** removes the directory or drops the database */
  drop(): Promise<void>;
}

export interface CliEngine {
  readonly name: SqlEngine;
  fresh(): Promise<CliStorage>;
}

function scratch(): { dir: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  return { dir, dataDir: join(dir, 'data') };
}

const sqlite: CliEngine = {
  name: 'sqlite',
  fresh: async () => {
    const { dir, dataDir } = scratch();
    return {
      engine: 'sqlite',
      args: ['--data-dir', dataDir],
      dataDir,
      database: null,
      open: async () => sqliteSql(openDatabase(dataDir)),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

const postgres: CliEngine = {
  name: 'postgres',
  fresh: async () => {
    const { dir, dataDir } = scratch();
    const { url, drop } = await freshPostgresDatabase();
    return {
      engine: 'postgres',
      args: ['--database', url],
      dataDir,
      database: url,
      open: () => openPostgres(url, { max: 2 }),
      drop: async () => {
        await drop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const CLI_ENGINES: readonly CliEngine[] = [sqlite, postgres].filter((e) => ENGINES.some((engine) => engine.name === e.name));

/** Runs `fn` on a connection of its own to `store`, closed after. */
export async function withStore<T>(store: CliStorage, fn: (sql: SqlDatabase) => Promise<T>): Promise<T> {
  const sql = await store.open();
  try {
    return await fn(sql);
  } finally {
    await sql.close();
  }
}

/** A PostgreSQL address nothing answers at (a closed port), with a password the tools must not show. */
export const UNREACHABLE_POSTGRES = 'postgres://parley:s3cret-pw@127.0.0.1:1/parley';

/** Fresh storage of `engine` on each call, every one dropped after the enclosing describe (or file). */
export function storesOf(engine: CliEngine): () => Promise<CliStorage> {
  const stores: CliStorage[] = [];
  after(async () => {
    for (const store of stores) await store.drop();
  });
  return async () => {
    const store = await engine.fresh();
    stores.push(store);
    return store;
  };
}
