// Schema migrations. Each capability owns an ordered list of migrations (its DDL lives next to its
// repository) and hands it to `runMigrations` at start-up; the runner applies the ones not yet
// recorded in `schema_migrations`. Safe to run on every start, and from several processes at once
// (the server and `parley user add`): the whole run is one BEGIN IMMEDIATE transaction, so a second
// process waits for the first, then finds everything applied.
//
// Rules for authors: append new migrations at the end of the list; never edit or remove one that
// has shipped (the runner compares a checksum of its SQL); no statement that cannot run inside a
// transaction (VACUUM, PRAGMA journal_mode, PRAGMA foreign_keys).

import { createHash } from 'node:crypto';
import type { Database } from './database.ts';
import { transaction } from './database.ts';
import { StorageError } from './errors.ts';

export interface Migration {
  /** stable and unique within its capability, e.g. `001-users` */
  readonly id: string;
  /** SQL, one or more statements */
  readonly up: string;
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

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  capability TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  PRIMARY KEY (capability, id),
  UNIQUE (capability, seq)
)`;

/**
 * Applies the pending migrations of every set, in one transaction: either all of them are
 * applied or none is. Returns the ones this call applied (empty when the schema was current).
 */
export function runMigrations(db: Database, sets: readonly MigrationSet[], now: () => number = Date.now): AppliedMigration[] {
  validate(sets);
  return transaction(db, () => {
    db.exec(CREATE_TABLE);
    const applied: AppliedMigration[] = [];
    for (const set of sets) applied.push(...applySet(db, set, now));
    return applied;
  });
}

/** What the database records as applied, in order (for `parley doctor`-style reports and tests). */
export function appliedMigrations(db: Database): AppliedMigration[] {
  const exists = db.prepare("SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (exists === undefined) return [];
  const rows = db.prepare('SELECT capability, id, applied_at FROM schema_migrations ORDER BY capability, seq').all() as Array<{ capability: string; id: string; applied_at: number }>;
  return rows.map((r) => ({ capability: r.capability, id: r.id, appliedAt: new Date(r.applied_at) }));
}

function applySet(db: Database, set: MigrationSet, now: () => number): AppliedMigration[] {
  const recorded = db
    .prepare('SELECT seq, id, checksum FROM schema_migrations WHERE capability = ? ORDER BY seq')
    .all(set.capability) as Array<{ seq: number; id: string; checksum: string }>;

  // What is recorded must be exactly the first N migrations of the list, unchanged.
  const known = new Set(set.migrations.map((m) => m.id));
  for (const row of recorded) {
    if (!known.has(row.id)) {
      throw new StorageError('MIGRATION_UNKNOWN', `the database has migration ${set.capability}/${row.id}, which this version of Parley does not know: it was last run by a newer version; run that version (or newer) against this data directory`);
    }
  }
  recorded.forEach((row, index) => {
    const expected = set.migrations[index];
    if (expected === undefined || expected.id !== row.id || row.seq !== index) {
      throw new StorageError('MIGRATION_INVALID', `migration ${set.capability}/${expected?.id ?? '?'} sits before the already-applied ${set.capability}/${row.id}; new migrations must be appended at the end of the list`);
    }
    if (checksum(expected.up) !== row.checksum) {
      throw new StorageError('MIGRATION_CHANGED', `migration ${set.capability}/${row.id} was changed after it was applied; restore its original SQL and add a new migration for the change`);
    }
  });

  const insert = db.prepare('INSERT INTO schema_migrations (capability, seq, id, checksum, applied_at) VALUES (?, ?, ?, ?, ?)');
  const applied: AppliedMigration[] = [];
  for (let seq = recorded.length; seq < set.migrations.length; seq++) {
    const migration = set.migrations[seq];
    if (migration === undefined) continue;
    try {
      db.exec(migration.up);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new StorageError('MIGRATION_FAILED', `migration ${set.capability}/${migration.id} failed: ${why}; no migration of this run was applied`, { cause });
    }
    const at = now();
    insert.run(set.capability, seq, migration.id, checksum(migration.up), at);
    applied.push({ capability: set.capability, id: migration.id, appliedAt: new Date(at) });
  }
  return applied;
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
      if (m.id.trim() === '' || m.up.trim() === '') {
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
