// Transitional (issue 16, stage 1): the capabilities move to PostgreSQL one helper at a time, so a
// suite that needs another capability's tables (the directory's users, the settings' audit, the
// mailbox store's outbox) cannot run on PostgreSQL until that capability's migrations have their
// PostgreSQL text. `awaiting(engine, sets)` says so as a skip reason — asked once per file by
// migrating a fresh database — and is false once every set migrates, so the suite runs on both
// engines from the merge on. Goes when every capability has moved.
import type { Database, MigrationSet, Sql } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { ENGINES } from '../harness/engines.ts';

export async function awaiting(engine: EngineUnderTest, sets: readonly MigrationSet[]): Promise<string | false> {
  if (engine.name !== 'postgres') return false;
  const sql = await engine.open();
  try {
    await migrate(sql, sets);
    return false;
  } catch (error) {
    return `waits for another capability's PostgreSQL migrations (issue 16, stage 1): ${(error as Error).message}`;
  } finally {
    await sql.close();
  }
}

/**
 * The node:sqlite connection under a test database, for the functions of capabilities that still
 * take it (suites that need them are skipped on PostgreSQL by `awaiting`).
 */
export function connectionOf(sql: Sql): Database {
  const db = (sql as { db?: Database }).db;
  if (db === undefined) throw new Error(`${sql.engine}: no node:sqlite connection; this suite should have been skipped (awaiting)`);
  return db;
}

/**
 * `awaiting` for every engine under test, asked before the file declares any test (a top-level
 * await between declarations would let the runner start, and end, before the rest is declared).
 */
export async function skipsFor(sets: readonly MigrationSet[]): Promise<ReadonlyMap<string, string | false>> {
  const skips = new Map<string, string | false>();
  for (const engine of ENGINES) skips.set(engine.name, await awaiting(engine, sets));
  return skips;
}
