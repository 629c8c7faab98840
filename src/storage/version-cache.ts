// Answers kept in memory until the data behind them changes, for the lookups the SIP path makes
// on every request (users, settings, federation decisions). What changed is told by a version row
// that triggers move with every write of the tables behind the cache, whichever process or node
// writes: the cache reads that one row at most once per check interval and forgets everything
// when it moved.
//
// The interval is the staleness allowed: 1 ms on SQLite (the read is a local page lookup, so a
// change by `parley user add` counts from the next request on), 250 ms on PostgreSQL (a read is a
// round trip; the many lookups of one burst share one check). On PostgreSQL the triggers also
// NOTIFY `parley_version` with the version table's name at commit: a cache on the server's
// top-level handle listens, and reads the version again on its next lookup, so a change made by
// another process or node counts within milliseconds; the interval stays as the backstop for a
// lost LISTEN connection.
//
// A kept answer is given at once (peek): the SIP path asks several times per request, and an
// answer through a promise costs a microtask hop and its chain each time. On SQLite the version
// read itself is synchronous (node:sqlite runs a statement at once on the process's connection),
// so peek reads it when the interval is over, unless a transaction of this process holds the
// connection; on PostgreSQL a read is a round trip, so peek answers only within the interval and
// the caller takes the asynchronous path (get) otherwise.

import { statement } from './database.ts';
import { PostgresSql } from './postgres-sql.ts';
import type { Sql } from './sql.ts';
import { SqliteSql } from './sqlite-sql.ts';

/** What peek gives when it has no answer to give at once: ask get. */
export const NOT_KEPT: unique symbol = Symbol('not kept');

/** The channel the version triggers NOTIFY on, with the version table's name as the payload. */
export const VERSION_CHANNEL = 'parley_version';

/** Per PostgreSQL connection pool: version table → the caches that watch it (one LISTEN per pool). */
const watchers = new WeakMap<PostgresSql, Map<string, Set<WeakRef<VersionedCache<unknown>>>>>();

/**
 * Every cache on this PostgreSQL pool looks again at its next lookup: after a write this process
 * made (an admin API cmdlet), which must count at once, before the trigger's NOTIFY comes back.
 * Nothing to do on SQLite, whose caches look every millisecond.
 */
export function staleVersionedCaches(sql: Sql): void {
  if (!(sql instanceof PostgresSql)) return;
  for (const set of watchers.get(sql)?.values() ?? []) for (const ref of set) ref.deref()?.stale();
}

function watch(sql: PostgresSql, table: string, cache: VersionedCache<unknown>): void {
  let tables = watchers.get(sql);
  if (tables === undefined) {
    watchers.set(sql, (tables = new Map()));
    const known = tables;
    // a failed LISTEN leaves the interval to do the work
    sql
      .listen(VERSION_CHANNEL, (payload) => {
        for (const ref of known.get(payload) ?? []) {
          const c = ref.deref();
          if (c === undefined) known.get(payload)?.delete(ref);
          else c.stale();
        }
      })
      .catch(() => undefined);
  }
  let set = tables.get(table);
  if (set === undefined) tables.set(table, (set = new Set()));
  set.add(new WeakRef(cache));
}

export interface VersionedCacheOptions {
  /** entries kept before the cache starts over (default 100,000) */
  readonly maxEntries?: number;
  /** how long a version read stays good, in ms (default by engine: 1 on SQLite, 250 on PostgreSQL) */
  readonly checkEveryMs?: number;
  /** a monotonic clock in ms (tests) */
  readonly clock?: () => number;
}

export class VersionedCache<V> {
  readonly #sql: Sql;
  readonly #versionQuery: string;
  readonly #maxEntries: number;
  readonly #checkEveryMs: number;
  readonly #clock: () => number;
  readonly #known = new Map<string, V>();
  #version: unknown = undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #checking: Promise<void> | null = null;
  /** moves whenever the entries are dropped, so a load begun before does not store a stale answer */
  #generation = 0;

  /** `versionQuery` reads one row with one column `v`, e.g. `SELECT v FROM users_version`. */
  constructor(sql: Sql, versionQuery: string, options: VersionedCacheOptions = {}) {
    this.#sql = sql;
    this.#versionQuery = versionQuery;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#checkEveryMs = options.checkEveryMs ?? (sql.engine === 'sqlite' ? 1 : 250);
    this.#clock = options.clock ?? (() => performance.now());
    const table = /\bFROM\s+([a-z_][a-z0-9_]*)/i.exec(versionQuery)?.[1];
    if (sql instanceof PostgresSql && table !== undefined) watch(sql, table, this as VersionedCache<unknown>);
  }

  /** The data changed (a NOTIFY said so): the version is read again on the next lookup. */
  stale(): void {
    this.#checkedAt = Number.NEGATIVE_INFINITY;
  }

  /**
   * The kept answer for `key` at once, as get would give it, or NOT_KEPT when there is none or
   * the version must be read asynchronously first (then ask get).
   */
  peek(key: string): V | typeof NOT_KEPT {
    try {
      if (!this.#fresh()) return NOT_KEPT;
    } catch {
      return NOT_KEPT; // get reads it again and says what failed
    }
    const value = this.#known.get(key);
    return value !== undefined || this.#known.has(key) ? (value as V) : NOT_KEPT;
  }

  /** The kept answer for `key`, or what `load` gives (kept unless the data changed meanwhile). */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    if (!this.#fresh()) await this.#check();
    if (this.#known.has(key)) return this.#known.get(key) as V;
    const generation = this.#generation;
    const value = await load();
    if (generation === this.#generation) {
      if (this.#known.size >= this.#maxEntries) this.#known.clear();
      this.#known.set(key, value);
    }
    return value;
  }

  /** Forgets every answer (after a write by this process that must count at once). */
  clear(): void {
    this.#known.clear();
    this.#generation++;
  }

  /**
   * Whether the version was read within the interval; on SQLite it is read now if not, unless a
   * transaction of this process holds the connection (its calls wait for it: get's way).
   */
  #fresh(): boolean {
    if (this.#clock() - this.#checkedAt < this.#checkEveryMs) return true;
    const sql = this.#sql;
    if (this.#checking !== null || !(sql instanceof SqliteSql) || sql.idle() !== undefined) return false;
    this.#observe((statement(sql.db, this.#versionQuery).get() as { v: unknown } | undefined)?.v);
    return true;
  }

  #observe(version: unknown): void {
    this.#checkedAt = this.#clock();
    if (version !== this.#version) {
      this.#version = version;
      this.clear();
    }
  }

  #check(): Promise<void> {
    this.#checking ??= (async () => {
      try {
        this.#observe((await this.#sql.get<{ v: unknown }>(this.#versionQuery))?.v);
      } finally {
        this.#checking = null;
      }
    })();
    return this.#checking;
  }
}
