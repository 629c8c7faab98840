// Schema migrations. Each capability owns an ordered list of migrations (its DDL lives next to its
// repository) and hands it to `runMigrations` at start-up; the runner applies the ones not yet
// recorded in `schema_migrations`. Safe to run on every start, and from several processes at once
// (the server and `parley user add`): the whole run is one BEGIN IMMEDIATE transaction, so a second
// process waits for the first, then finds everything applied. On PostgreSQL (`migrate`) the run
// holds an advisory lock instead, so the nodes of a cluster that start together do the same.
//
// Rules for authors: append new migrations at the end of the list; never edit or remove one that
// has shipped (the runner compares a checksum of its SQL); no statement that cannot run inside a
// transaction (VACUUM, PRAGMA journal_mode, PRAGMA foreign_keys).

import { createHash } from 'node:crypto';
import type { Database } from './database.ts';
import { transaction } from './database.ts';
import { StorageError } from './errors.ts';
import type { Sql, SqlEngine } from './sql.ts';

export interface Migration {
  /** stable and unique within its capability, e.g. `001-users` */
  readonly id: string;
  /**
   * SQL, one or more statements: one text that both engines run, or each engine's own (DDL that
   * differs: types, STRICT, triggers). The checksum is of the text the engine ran.
   */
  readonly up: string | { readonly sqlite: string; readonly postgres: string };
}

export interface MigrationSet {
  /** the capability that owns the tables, e.g. `directory` */
  readonly capability: string;
  /** in the order they must be applied */
  readonly migrations: readonly Migration[];
}

export interface AppliedMigration {
  readonly capability: string;
  readonly id: string;
  readonly appliedAt: Date;
}

/** The text of a migration for an engine. */
export function migrationSql(migration: Migration, engine: SqlEngine): string {
  return typeof migration.up === 'string' ? migration.up : migration.up[engine];
}

const CREATE_TABLE: Record<SqlEngine, string> = {
  sqlite: `CREATE TABLE IF NOT EXISTS schema_migrations (
  capability TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  PRIMARY KEY (capability, id),
  UNIQUE (capability, seq)
)`,
  postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
  capability TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at BIGINT NOT NULL,
  PRIMARY KEY (capability, id),
  UNIQUE (capability, seq)
)`,
};

/** Any number, the same in every Parley: the advisory lock that keeps two processes' migrations apart on PostgreSQL. */
const MIGRATION_LOCK = 0x7061726c; // "parl"

interface RecordedRow {
  seq: number;
  id: string;
  checksum: string;
}

/**
 * Applies the pending migrations of every set, in one transaction: either all of them are
 * applied or none is. Returns the ones this call applied (empty when the schema was current).
 * Synchronous, on a node:sqlite connection, for the tools that hold one (tests that build a
 * SQLite database by hand, the bench's seeding); `migrate` is the same on either engine.
 */
export function runMigrations(db: Database, sets: readonly MigrationSet[], now: () => number = Date.now): AppliedMigration[] {
  validate(sets);
  return transaction(db, () => {
    db.exec(CREATE_TABLE.sqlite);
    const applied: AppliedMigration[] = [];
    const recorded = db.prepare('SELECT seq, id, checksum FROM schema_migrations WHERE capability = ? ORDER BY seq');
    const insert = db.prepare('INSERT INTO schema_migrations (capability, seq, id, checksum, applied_at) VALUES (?, ?, ?, ?, ?)');
    for (const set of sets) {
      for (const step of pendingOf(set, recorded.all(set.capability) as unknown as RecordedRow[], 'sqlite')) {
        runStep(set, step, () => db.exec(step.sql));
        const at = now();
        insert.run(set.capability, step.seq, step.id, step.checksum, at);
        applied.push({ capability: set.capability, id: step.id, appliedAt: new Date(at) });
      }
    }
    return applied;
  });
}

/**
 * `runMigrations` on either engine. On PostgreSQL the run holds an advisory lock, so nodes that
 * start together apply each migration once: the others wait, then find everything applied.
 */
export async function migrate(sql: Sql, sets: readonly MigrationSet[], now: () => number = Date.now): Promise<AppliedMigration[]> {
  validate(sets);
  // read committed: after waiting for the lock, the next statement sees what the holder committed
  return sql.transaction(
    async (tx) => {
      if (tx.engine === 'postgres') await tx.get('SELECT pg_advisory_xact_lock(?) AS locked', [MIGRATION_LOCK]);
      await tx.exec(CREATE_TABLE[tx.engine]);
      const applied: AppliedMigration[] = [];
      for (const set of sets) {
        const recorded = await tx.all<RecordedRow>('SELECT seq, id, checksum FROM schema_migrations WHERE capability = ? ORDER BY seq', [set.capability]);
        for (const step of pendingOf(set, recorded, tx.engine)) {
          await runStepAsync(set, step, () => tx.exec(step.sql));
          const at = now();
          await tx.run('INSERT INTO schema_migrations (capability, seq, id, checksum, applied_at) VALUES (?, ?, ?, ?, ?)', [set.capability, step.seq, step.id, step.checksum, at]);
          applied.push({ capability: set.capability, id: step.id, appliedAt: new Date(at) });
        }
      }
      return applied;
    },
    { isolation: 'read committed' },
  );
}

/** What the database records as applied, in order (for `parley doctor`-style reports and tests). */
export function appliedMigrations(db: Database): AppliedMigration[] {
  const exists = db.prepare("SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (exists === undefined) return [];
  const rows = db.prepare('SELECT capability, id, applied_at FROM schema_migrations ORDER BY capability, seq').all() as Array<{ capability: string; id: string; applied_at: number }>;
  return rows.map((r) => ({ capability: r.capability, id: r.id, appliedAt: new Date(r.applied_at) }));
}

/** `appliedMigrations` on either engine. */
export async function listAppliedMigrations(sql: Sql): Promise<AppliedMigration[]> {
  const exists =
    sql.engine === 'postgres'
      ? await sql.get<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t").then((r) => r?.t ?? undefined)
      : await sql.get("SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'");
  if (exists === undefined || exists === null) return [];
  const rows = await sql.all<{ capability: string; id: string; applied_at: number }>('SELECT capability, id, applied_at FROM schema_migrations ORDER BY capability, seq');
  return rows.map((r) => ({ capability: r.capability, id: r.id, appliedAt: new Date(Number(r.applied_at)) }));
}

interface PendingStep {
  seq: number;
  id: string;
  sql: string;
  checksum: string;
}

/** Checks what is recorded against the list and returns the migrations still to apply, in order. */
function pendingOf(set: MigrationSet, recorded: readonly RecordedRow[], engine: SqlEngine): PendingStep[] {
  // What is recorded must be exactly the first N migrations of the list, unchanged.
  const known = new Set(set.migrations.map((m) => m.id));
  for (const row of recorded) {
    if (!known.has(row.id)) {
      throw new StorageError('MIGRATION_UNKNOWN', `the database has migration ${set.capability}/${row.id}, which this version of Parley does not know: it was last run by a newer version; run that version (or newer) against this data directory`);
    }
  }
  recorded.forEach((row, index) => {
    const expected = set.migrations[index];
    if (expected === undefined || expected.id !== row.id || Number(row.seq) !== index) {
      throw new StorageError('MIGRATION_INVALID', `migration ${set.capability}/${expected?.id ?? '?'} sits before the already-applied ${set.capability}/${row.id}; new migrations must be appended at the end of the list`);
    }
    if (checksum(migrationSql(expected, engine)) !== row.checksum) {
      throw new StorageError('MIGRATION_CHANGED', `migration ${set.capability}/${row.id} was changed after it was applied; restore its original SQL and add a new migration for the change`);
    }
  });
  const steps: PendingStep[] = [];
  for (let seq = recorded.length; seq < set.migrations.length; seq++) {
    const migration = set.migrations[seq] as Migration;
    const sql = migrationSql(migration, engine);
    steps.push({ seq, id: migration.id, sql, checksum: checksum(sql) });
  }
  return steps;
}

function runStep(set: MigrationSet, step: PendingStep, run: () => void): void {
  try {
    run();
  } catch (cause) {
    throw failed(set, step, cause);
  }
}

async function runStepAsync(set: MigrationSet, step: PendingStep, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (cause) {
    throw failed(set, step, cause);
  }
}

function failed(set: MigrationSet, step: PendingStep, cause: unknown): StorageError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new StorageError('MIGRATION_FAILED', `migration ${set.capability}/${step.id} failed: ${why}; no migration of this run was applied`, { cause });
}

function validate(sets: readonly MigrationSet[]): void {
  const capabilities = new Set<string>();
  for (const set of sets) {
    if (!/^[a-z][a-z0-9-]*$/.test(set.capability)) {
      throw new StorageError('MIGRATION_INVALID', `migration set name ${JSON.stringify(set.capability)} must be a lower-case capability name such as "directory"`);
    }
    if (capabilities.has(set.capability)) {
      throw new StorageError('MIGRATION_INVALID', `the migrations of ${set.capability} were given twice`);
    }
    capabilities.add(set.capability);
    const ids = new Set<string>();
    for (const m of set.migrations) {
      const texts = typeof m.up === 'string' ? [m.up] : [m.up.sqlite, m.up.postgres];
      if (m.id.trim() === '' || texts.some((t) => t.trim() === '')) {
        throw new StorageError('MIGRATION_INVALID', `a migration of ${set.capability} has an empty id or empty SQL`);
      }
      if (ids.has(m.id)) throw new StorageError('MIGRATION_INVALID', `migration id ${set.capability}/${m.id} appears twice`);
      ids.add(m.id);
    }
  }
}

function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}
