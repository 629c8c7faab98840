// The SQLite engine of the `Sql` interface, over the node:sqlite connection the process opened
// (openDatabase): each call runs at once on the connection, through its cache of prepared
// statements.
//
// One connection serves the whole process, so a transaction that spans awaits must keep other
// work out of it: while one is open, calls on the top-level handle wait for it to end (and
// transactions queue), while calls on the transaction's own handle go straight through.
// BEGIN IMMEDIATE takes the write lock at once (other processes — `parley user add` — wait up to
// the busy timeout), so a transaction never fails half-way to upgrade a read lock.

import type { Database } from './database.ts';
import { statement } from './database.ts';
import { StorageError } from './errors.ts';
import type { Sql, SqlDatabase, SqlRunResult, SqlValue, TransactionOptions } from './sql.ts';

class SqliteHandle implements Sql {
  readonly engine = 'sqlite';
  readonly db: Database;
  readonly #owner: SqliteSql;
  /** 0 on the top-level handle, 1 in a transaction, more in savepoints */
  readonly #depth: number;
  #ended = false;

  constructor(db: Database, owner: SqliteSql | null, depth: number) {
    this.db = db;
    this.#owner = owner ?? (this as unknown as SqliteSql);
    this.#depth = depth;
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    await this.#ready();
    return statement(this.db, sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    await this.#ready();
    return statement(this.db, sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<SqlRunResult> {
    await this.#ready();
    return { changes: Number(statement(this.db, sql).run(...params).changes) };
  }

  async exec(sql: string): Promise<void> {
    await this.#ready();
    this.db.exec(sql);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>, _options?: TransactionOptions): Promise<T> {
    if (this.#depth === 0) return this.#owner.serialised(() => this.#within(fn, 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK'));
    this.#checkOpen();
    const name = `parley_sp${this.#depth}`;
    return this.#within(fn, `SAVEPOINT ${name}`, `RELEASE ${name}`, `ROLLBACK TO ${name}; RELEASE ${name}`);
  }

  async #within<T>(fn: (tx: Sql) => Promise<T>, begin: string, commit: string, rollback: string): Promise<T> {
    this.db.exec(begin);
    const tx = new SqliteHandle(this.db, this.#owner, this.#depth + 1);
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      tx.#ended = true;
      // a failed COMMIT may have ended the transaction already
      if (this.db.isTransaction) this.db.exec(rollback);
      throw error;
    }
    tx.#ended = true;
    try {
      this.db.exec(commit);
    } catch (error) {
      // e.g. the disk is full: do not leave the connection inside a half-done transaction
      if (this.#depth === 0 && this.db.isTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
    return result;
  }

  /** Top level: wait while a transaction is open. In a transaction: refuse once it has ended. */
  #ready(): Promise<void> | undefined {
    if (this.#depth > 0) {
      this.#checkOpen();
      return undefined;
    }
    return this.#owner.idle();
  }

  #checkOpen(): void {
    if (this.#ended) throw new StorageError('TRANSACTION_ENDED', 'a transaction handle was used after its transaction ended; use the handle the enclosing code was given');
  }
}

export class SqliteSql extends SqliteHandle implements SqlDatabase {
  /** settles when the open top-level transaction ends; null when none is open */
  #open: Promise<void> | null = null;

  constructor(db: Database) {
    super(db, null, 0);
  }

  get location(): string {
    return this.db.location() ?? ':memory:';
  }

  /** Undefined at once when no transaction is open, else a promise for when none is. */
  idle(): Promise<void> | undefined {
    return this.#open === null ? undefined : this.#waitIdle();
  }

  async #waitIdle(): Promise<void> {
    while (this.#open !== null) await this.#open;
  }

  /** Runs one top-level transaction at a time. */
  async serialised<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#open !== null) await this.#open;
    let done!: () => void;
    this.#open = new Promise<void>((resolve) => (done = resolve));
    try {
      return await fn();
    } finally {
      this.#open = null;
      done();
    }
  }

  async close(): Promise<void> {
    await this.#waitIdle();
    if (this.db.isOpen) this.db.close();
  }
}

const handles = new WeakMap<Database, SqliteSql>();

/**
 * The `Sql` of a node:sqlite connection: always the same one for a connection, since it is the
 * handle that keeps the connection's transactions one at a time.
 */
export function sqliteSql(db: Database): SqliteSql {
  let sql = handles.get(db);
  if (sql === undefined) handles.set(db, (sql = new SqliteSql(db)));
  return sql;
}
