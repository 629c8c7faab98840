// The PostgreSQL engine of the `Sql` interface, for a cluster's shared durable state, through
// postgres.js: a small, dependency-free client that pipelines concurrent queries on a connection
// (the spool's and the router's many small statements do not each wait for a round trip), prepares
// statements by itself, and keeps LISTEN connections alive across reconnects.
//
// - Integers: BIGINT columns come back as JavaScript numbers (the client's default is a string).
//   Every integer Parley stores (milliseconds, counts, sizes, ids) stays far below 2^53.
// - Commits are durable before they are answered: synchronous_commit is set on for the session,
//   whatever the server's default, as the 202 Accepted of an offline message promises.
// - Transactions are SERIALIZABLE (SQLite's semantics) and run again, a few times, when PostgreSQL
//   reports a serialization failure or a deadlock; see sql.ts for what that asks of their callback.

// the client is loaded by openPostgres: a server on SQLite never loads it (~13 MB of RSS)
import type postgres from 'postgres';
import { StorageError } from './errors.ts';
import type { Sql, SqlDatabase, SqlRunResult, SqlValue, TransactionOptions } from './sql.ts';
import { numberPlaceholders } from './sql.ts';

type Client = postgres.Sql<Record<string, never>>;
type Scope = Client | postgres.TransactionSql<Record<string, never>>;

/** SQLSTATEs after which a whole transaction may simply be run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 8;

export interface PostgresOptions {
  /** connections in the pool (default 10) */
  readonly max?: number;
  /** seconds to wait for a connection before failing (default 10) */
  readonly connectTimeoutSeconds?: number;
  /** shown in pg_stat_activity */
  readonly applicationName?: string;
  /** seconds an unused connection stays open (default: for good) */
  readonly idleTimeoutSeconds?: number;
}

const numbered = new Map<string, string>();

function wire(sql: string): string {
  let text = numbered.get(sql);
  if (text === undefined) {
    text = numberPlaceholders(sql);
    if (numbered.size < 10_000) numbered.set(sql, text);
  }
  return text;
}

class PostgresHandle implements Sql {
  readonly engine = 'postgres';
  readonly #scope: Scope;
  readonly #depth: number;
  #ended = false;

  constructor(scope: Scope, depth: number) {
    this.#scope = scope;
    this.#depth = depth;
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.#query(sql, params)) as unknown as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return ((await this.#query(sql, params)) as unknown as T[])[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<SqlRunResult> {
    const result = await this.#query(sql, params);
    return { changes: result.count ?? 0 };
  }

  async exec(sql: string): Promise<void> {
    this.#checkOpen();
    await this.#scope.unsafe(sql).simple();
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#checkOpen();
    if (this.#depth > 0) {
      const scope = this.#scope as postgres.TransactionSql<Record<string, never>>;
      return (await scope.savepoint((sp) => this.#inside(sp, fn))) as T;
    }
    const mode = options.isolation === 'read committed' ? 'isolation level read committed' : 'isolation level serializable';
    for (let attempt = 1; ; attempt++) {
      try {
        return (await (this.#scope as Client).begin(mode, (tx) => this.#inside(tx, fn))) as T;
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || !RETRYABLE.has(sqlState(error) ?? '')) throw error;
        // a short random pause, growing, so that the transactions that collided do not collide again
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
      }
    }
  }

  async #inside<T>(scope: postgres.TransactionSql<Record<string, never>>, fn: (tx: Sql) => Promise<T>): Promise<T> {
    const handle = new PostgresHandle(scope, this.#depth + 1);
    try {
      return await fn(handle);
    } finally {
      handle.#ended = true;
    }
  }

  #query(sql: string, params: readonly SqlValue[]): Promise<postgres.RowList<postgres.Row[]>> {
    this.#checkOpen();
    return this.#scope.unsafe(wire(sql), params as postgres.ParameterOrJSON<never>[], { prepare: true });
  }

  #checkOpen(): void {
    if (this.#ended) throw new StorageError('TRANSACTION_ENDED', 'a transaction handle was used after its transaction ended; use the handle the enclosing code was given');
  }
}

export class PostgresSql extends PostgresHandle implements SqlDatabase {
  readonly client: Client;
  readonly location: string;

  constructor(client: Client, location: string) {
    super(client, 0);
    this.client = client;
    this.location = location;
  }

  /** Calls `onNotify` with each payload NOTIFY sends on the channel, across reconnections. */
  async listen(channel: string, onNotify: (payload: string) => void): Promise<{ unlisten(): Promise<void> }> {
    const { unlisten } = await this.client.listen(channel, onNotify);
    return { unlisten };
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.client.notify(channel, payload);
  }

  async close(): Promise<void> {
    await this.client.end({ timeout: 5 });
  }
}

/**
 * Connects to PostgreSQL (`postgres://user@host:port/db`, `postgres:///db?host=/var/run/postgresql`
 * for a Unix socket) and checks that it answers.
 */
export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<PostgresSql> {
  const location = redactUrl(url);
  const { default: connect } = await import('postgres');
  let client: Client;
  try {
    client = connect(url, {
      max: options.max ?? 10,
      connect_timeout: options.connectTimeoutSeconds ?? 10,
      ...(options.idleTimeoutSeconds === undefined ? {} : { idle_timeout: options.idleTimeoutSeconds }),
      prepare: true,
      onnotice: () => undefined,
      connection: { application_name: options.applicationName ?? 'parley', synchronous_commit: 'on' },
      types: {
        bigint: { to: 20, from: [20], serialize: (x: unknown) => String(x), parse: (x: string) => Number(x) },
      },
    }) as unknown as Client;
  } catch (cause) {
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot use the PostgreSQL address ${location}: ${messageOf(cause)}`, { cause });
  }
  try {
    await client.unsafe('SELECT 1');
  } catch (cause) {
    await client.end({ timeout: 0 }).catch(() => undefined);
    throw new StorageError('DATABASE_OPEN_FAILED', `cannot connect to PostgreSQL at ${location}: ${messageOf(cause)}; check that the server runs and the address, user and database are right`, { cause });
  }
  return new PostgresSql(client, location);
}

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(an address that is not a URL)';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The size of the connected database, bytes (pg_database_size), for /metrics. */
export async function postgresSize(sql: Sql): Promise<number> {
  const row = await sql.get<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
  return Number(row?.bytes ?? 0);
}
