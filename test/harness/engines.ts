// The storage engines a repository's tests run on: each test suite that touches storage runs
// once per engine, against a fresh empty database, so SQLite (the embedded default) and PostgreSQL
// (a cluster's) are held to the same tests.
//
// PostgreSQL is the machine's own server (scripts/services.sh starts it when it is not running),
// reached through its Unix socket, which also works inside the tests' private network namespace.
// PARLEY_TEST_POSTGRES names another administrative connection; PARLEY_TEST_ENGINES=sqlite runs
// only SQLite (for a machine without PostgreSQL; the test command runs both).
//
//   for (const engine of ENGINES) describe(`users on ${engine.name}`, () => {
//     let sql: SqlDatabase;
//     beforeEach(async () => { sql = await engine.open(); await migrate(sql, [DIRECTORY_MIGRATIONS]); });
//     afterEach(() => sql.close());
//     …
//   });

import { randomBytes } from 'node:crypto';
import type { SqlDatabase, SqlEngine } from '../../src/storage/index.ts';
import { openMemoryDatabase, openPostgres, sqliteSql } from '../../src/storage/index.ts';
import type { PostgresSql } from '../../src/storage/index.ts';

export const POSTGRES_ADMIN_URL = process.env.PARLEY_TEST_POSTGRES ?? 'postgres://postgres@localhost/postgres?host=/var/run/postgresql';

export interface EngineUnderTest {
  readonly name: SqlEngine;
  /** A new, empty database; closing it drops it. */
  open(): Promise<SqlDatabase>;
}

const sqlite: EngineUnderTest = {
  name: 'sqlite',
  open: async () => sqliteSql(openMemoryDatabase()),
};

const postgres: EngineUnderTest = {
  name: 'postgres',
  open: async () => {
    const { url, drop } = await freshPostgresDatabase();
    const db = await openPostgres(url, { max: 4 });
    const close = db.close.bind(db);
    // dropping is part of closing: the server keeps no test's database
    Object.defineProperty(db, 'close', { value: async () => { await close(); await drop(); } });
    return db;
  },
};

const wanted = (process.env.PARLEY_TEST_ENGINES ?? 'sqlite,postgres').split(',').map((s) => s.trim());
export const ENGINES: readonly EngineUnderTest[] = [sqlite, postgres].filter((e) => wanted.includes(e.name));

let admin: PostgresSql | undefined;

async function adminConnection(): Promise<PostgresSql> {
  // idle connections close themselves: a test process that forgets closeTestPostgres still ends
  admin ??= await openPostgres(POSTGRES_ADMIN_URL, { max: 2, applicationName: 'parley-tests', idleTimeoutSeconds: 2 });
  return admin;
}

/**
 * A new database on the test PostgreSQL server, named so that a crashed run's leftovers are
 * recognisable (`parley_test_…`), and the way to drop it.
 */
export async function freshPostgresDatabase(): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const admin = await adminConnection();
  // idle connections close themselves: a test process that forgets closeTestPostgres still ends
  const name = `parley_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin.exec(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    // through the administrative connection as it is then: a file's hooks may have closed the one
    // that made the database (closeTestPostgres before the drops), and the database must go anyway
    drop: async () => {
      await (await adminConnection()).exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Closes the administrative connection (a test file's `after`, so the process can end). */
export async function closeTestPostgres(): Promise<void> {
  const a = admin;
  admin = undefined;
  await a?.close();
}
