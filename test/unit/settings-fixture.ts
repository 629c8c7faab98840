// A database with settings' tables and the directory's they refer to (users, sites), on either
// engine, and users and sites written as rows: the settings tests need nothing else of the
// directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { SETTINGS_MIGRATIONS } from '../../src/settings/index.ts';
import type { MigrationSet, Sql, SqlDatabase, SqlEngine } from '../../src/storage/index.ts';
import { migrate, migrationSql, openDatabase, openPostgres, sqliteSql } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { freshPostgresDatabase } from '../harness/engines.ts';

export const change = { actor: 'test', cmdlet: 'test', now: () => 1 };

/**
 * The directory's migrations, or on PostgreSQL a stand-in of its users and sites tables while
 * those migrations are SQLite's only (issue 16: the directory moves on its own branch; once its
 * 001-users has PostgreSQL text, the real ones run and this stand-in is dead).
 */
export function directoryMigrations(engine: SqlEngine): MigrationSet {
  const first = DIRECTORY_MIGRATIONS.migrations[0];
  if (engine === 'sqlite' || first === undefined || !migrationSql(first, 'postgres').includes('STRICT')) return DIRECTORY_MIGRATIONS;
  return {
    capability: 'directory',
    migrations: [
      {
        id: 'stand-in',
        up: `CREATE TABLE users (
  address TEXT NOT NULL PRIMARY KEY CHECK (address = lower(address)),
  display_name TEXT, password_hash TEXT NOT NULL, digest_realm TEXT NOT NULL, ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, demo BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE sites (name TEXT NOT NULL PRIMARY KEY, created_at BIGINT NOT NULL);
CREATE UNIQUE INDEX sites_lower_name ON sites (lower(name));
ALTER TABLE users ADD COLUMN site TEXT REFERENCES sites(name) ON DELETE RESTRICT;`,
      },
    ],
  };
}

export async function migrateSettings(sql: Sql, more: readonly MigrationSet[] = []): Promise<void> {
  await migrate(sql, [directoryMigrations(sql.engine), SETTINGS_MIGRATIONS, ...more]);
}

/** A fresh database of `engine` with the directory's and settings' tables. */
export async function openSettingsDatabase(engine: EngineUnderTest): Promise<SqlDatabase> {
  const sql = await engine.open();
  await migrateSettings(sql);
  return sql;
}

export async function addTestUser(sql: Sql, address: string, site: string | null = null): Promise<void> {
  await sql.run("INSERT INTO users (address, display_name, password_hash, digest_realm, ha1_md5, ha1_sha256, created_at, updated_at, site) VALUES (?, NULL, '-', 'parley.test', '-', '-', 0, 0, ?)", [address, site]);
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
