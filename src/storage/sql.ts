// The storage interface every repository uses, on either engine: SQLite in one process (the
// embedded default) or PostgreSQL shared by the nodes of a cluster. Asynchronous because
// PostgreSQL is across a network; on SQLite each call does its work at once and returns a settled
// promise, so the cost there is one microtask.
//
// SQL is written once for both engines:
// - positional `?` parameters (the PostgreSQL engine numbers them $1, $2, … for the wire);
// - integers, text, and bytes (BLOB / BYTEA) as values; booleans stored as 0/1 integers; times as
//   integer milliseconds since the epoch, so no date type differs between the engines;
// - `INSERT … ON CONFLICT … DO NOTHING / DO UPDATE` and `RETURNING`, which both engines speak,
//   instead of SQLite's `INSERT OR IGNORE` or `last_insert_rowid()`;
// - where an engine needs its own text (DDL, GLOB, COLLATE NOCASE), branch on `sql.engine`.
//
// Transactions: `transaction(fn)` runs fn on a handle bound to one transaction and commits when
// fn's promise resolves, rolls back when it rejects. Both engines give serializable transactions
// (SQLite by its one writer, PostgreSQL by SERIALIZABLE isolation); on PostgreSQL a transaction that
// loses a serialization conflict is run again, so fn must do only database work (no messages sent,
// no counters moved) — do the rest after it resolves. Inside a transaction, `transaction` on the
// handle is a savepoint.

/** A value bound to a `?` parameter or read from a column. */
export type SqlValue = string | number | bigint | Uint8Array | null;

export type SqlEngine = 'sqlite' | 'postgres';

export interface SqlRunResult {
  /** rows inserted, updated or deleted by the statement */
  readonly changes: number;
}

export interface TransactionOptions {
  /**
   * PostgreSQL only: 'read committed' for work that takes its own row locks (`FOR UPDATE SKIP
   * LOCKED` leases) and must not be run again on a conflict. Default 'serializable'.
   */
  readonly isolation?: 'serializable' | 'read committed';
}

export interface Sql {
  readonly engine: SqlEngine;
  /** Every row. */
  all<T = Record<string, SqlValue>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** The first row, or undefined. */
  get<T = Record<string, SqlValue>>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** A statement that returns no rows (or whose rows are not wanted). */
  run(sql: string, params?: readonly SqlValue[]): Promise<SqlRunResult>;
  /** One or more statements without parameters (DDL). */
  exec(sql: string): Promise<void>;
  /** Runs fn in one transaction (a savepoint when this handle is already in one). */
  transaction<T>(fn: (tx: Sql) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** True on a handle bound to a transaction. */
  readonly inTransaction: boolean;
}

/** A connection the server owns and closes: the top-level handle of an engine. */
export interface SqlDatabase extends Sql {
  /** Where it is, for logs and errors, without any password: a file path or host/database. */
  readonly location: string;
  close(): Promise<void>;
}

/**
 * `?` placeholders → `$1, $2, …`, leaving `?` inside quoted strings, quoted identifiers and
 * comments alone. Used by the PostgreSQL engine; exported for its tests.
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "'" || c === '"') {
      const end = closing(sql, i + 1, c);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? sql.length : end + 2;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '?') {
      out += `$${++n}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The index just past the quote that closes one opened before `from` (a doubled quote is an escaped one). */
function closing(sql: string, from: number, quote: string): number {
  let i = from;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

/** True when the statement broke a UNIQUE or PRIMARY KEY constraint, on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; errcode?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (e.code === '23505') return true; // PostgreSQL unique_violation
  // SQLite extended result codes: SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
  return e.errcode === 1555 || e.errcode === 2067;
}

/** Rows per statement of insertRows: few statement texts to keep prepared, few statements per batch. */
const ROWS_PER_INSERT = 32;
const insertTexts = new Map<string, string>();

/**
 * Inserts `rows` in order with multi-row `INSERT … VALUES (…), (…)` statements of up to
 * ROWS_PER_INSERT rows: a batch of many small rows costs a few statements instead of one each
 * (a statement's fixed cost is most of a small row's on SQLite, a round trip's worth of protocol on
 * PostgreSQL). `head` is `INSERT INTO table (columns)`; each row has one value per column.
 */
export async function insertRows(sql: Sql, head: string, rows: ReadonlyArray<readonly SqlValue[]>): Promise<void> {
  // `INSERT OR ROLLBACK` (SQLite) ends the whole transaction at a conflict: a chunk issued after
  // it would then run on its own and be committed. Such a head's chunks go one after the other, so
  // that nothing follows a failed one.
  const oneByOne = /^\s*INSERT\s+OR\s+ROLLBACK\b/i.test(head);
  const writes: Array<Promise<unknown>> = [];
  for (let at = 0; at < rows.length; at += ROWS_PER_INSERT) {
    const chunk = rows.slice(at, at + ROWS_PER_INSERT);
    const width = chunk[0]?.length ?? 0;
    const key = `${head}\u0000${width}\u0000${chunk.length}`;
    let text = insertTexts.get(key);
    if (text === undefined) {
      const tuple = `(${Array.from({ length: width }, () => '?').join(', ')})`;
      insertTexts.set(key, (text = `${head} VALUES ${Array.from({ length: chunk.length }, () => tuple).join(', ')}`));
    }
    if (oneByOne) await sql.run(text, chunk.flat());
    // issued together, in order (pipelined on PostgreSQL)
    else writes.push(sql.run(text, chunk.flat()));
  }
  await Promise.all(writes);
}
