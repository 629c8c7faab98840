// A database with settings' tables and the directory's they refer to (users, sites), on either
// engine, and users and sites written as rows: the settings tests need nothing else of the
// directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { SETTINGS_MIGRATIONS } from '../../src/settings/index.ts';
import type { MigrationSet, Sql, SqlDatabase } from '../../src/storage/index.ts';
import { migrate, openDatabase, openPostgres, sqliteSql } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { addUserRow } from './presence-database.ts';
import { freshPostgresDatabase } from '../harness/engines.ts';

export const change = { actor: 'test', cmdlet: 'test', now: () => 1 };

export async function migrateSettings(sql: Sql, more: readonly MigrationSet[] = []): Promise<void> {
  await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, ...more]);
}

/** A fresh database of `engine` with the directory's and settings' tables. */
export async function openSettingsDatabase(engine: EngineUnderTest): Promise<SqlDatabase> {
  const sql = await engine.open();
  await migrateSettings(sql);
  return sql;
}

/** A user as a row, in a site or none (no password anyone could use). */
export async function addTestUser(sql: Sql, address: string, site: string | null = null): Promise<void> {
  await addUserRow(sql, { address, displayName: null, site });
}

export async function addTestSite(sql: Sql, name: string): Promise<void> {
  await sql.run('INSERT INTO sites (name, created_at) VALUES (?, 0)', [name]);
}

export async function setTestUserSite(sql: Sql, address: string, site: string | null): Promise<void> {
  await sql.run('UPDATE users SET site = ? WHERE address = ?', [site, address]);
}

/**
 * Two connections to one new database of `engine`, as the server and `parley admin` in another
 * process have: a SQLite file in a temporary directory, or a PostgreSQL database.
 */
export async function twoConnections(engine: EngineUnderTest): Promise<{ server: SqlDatabase; cli: SqlDatabase; close(): Promise<void> }> {
  if (engine.name === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'parley-settings-'));
    const server = sqliteSql(openDatabase(dir));
    const cli = sqliteSql(openDatabase(dir));
    return { server, cli, close: async () => { await cli.close(); await server.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const { url, drop } = await freshPostgresDatabase();
  const server = await openPostgres(url, { max: 2 });
  const cli = await openPostgres(url, { max: 2 });
  return { server, cli, close: async () => { await cli.close(); await server.close(); await drop(); } };
}
