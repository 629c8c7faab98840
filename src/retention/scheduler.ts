// The retention run: every `interval` seconds, each kind's purge in batches of `batch` rows, each
// batch one short write transaction, with a pause between batches. It must never stall SIP:
//  - it has its own connection with a short busy timeout (BUSY_TIMEOUT_MS): when the spool writer
//    thread (or the CLI) holds the write lock, a batch gives up at once and is tried again after a
//    pause, rather than holding the event loop for the default 5 s;
//  - the pause between batches (PAUSE_MS) lets the event loop and the spool writer's group
//    commits in; a batch of 500 rows is a few milliseconds.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/index.ts';
import { openDatabaseFile, transaction } from '../storage/index.ts';
import type { RetentionPolicy } from './policy.ts';
import { OLDEST_KINDS, type OldestKind, PURGE_KINDS, type PurgeKind, oldestRows, purgesFor } from './purgers.ts';

export const BUSY_TIMEOUT_MS = 100;
export const PAUSE_MS = 20;
/** a batch that found the database locked this many times in a row ends the run (the next one continues) */
const MAX_BUSY_IN_A_ROW = 50;
/** the first run after start: soon, but after the start-up's own writes */
const FIRST_RUN_MS = 5_000;

export interface RetentionOptions {
  /** the database file (a connection of its own is opened) */
  file: string;
  policy: RetentionPolicy;
  logger: Logger;
  /** auth.lockout.window in ms */
  lockoutWindowMs: number;
  now?: () => number;
}

/** What /metrics reads: rows purged since the start per kind, the oldest kept row per kind (as of the last run). */
export interface RetentionStats {
  purged: Readonly<Record<PurgeKind, number>>;
  oldest: Readonly<Record<OldestKind, number | null>>;
  runs: number;
}

export class RetentionScheduler {
  readonly #opts: RetentionOptions;
  readonly #now: () => number;
  readonly #purged = Object.fromEntries(PURGE_KINDS.map((k) => [k, 0])) as Record<PurgeKind, number>;
  #oldest = Object.fromEntries(OLDEST_KINDS.map((k) => [k, null])) as Record<OldestKind, number | null>;
  #runs = 0;
  #db: Database | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get stats(): RetentionStats {
    return { purged: { ...this.#purged }, oldest: { ...this.#oldest }, runs: this.#runs };
  }

  start(): void {
    this.#db = openDatabaseFile(this.#opts.file, { busyTimeoutMs: BUSY_TIMEOUT_MS });
    this.#refreshOldest();
    this.#schedule(Math.min(FIRST_RUN_MS, this.#opts.policy.interval * 1000));
  }

  /** One run now (tests and the timer); a run already going is joined, not doubled. */
  runOnce(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    this.#db?.close();
    this.#db = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.runOnce().then(
        () => this.#schedule(this.#opts.policy.interval * 1000),
        (err: unknown) => {
          this.#opts.logger.error({ err }, 'retention run failed: %s', (err as Error).message);
          this.#schedule(this.#opts.policy.interval * 1000);
        },
      );
    }, ms);
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const db = this.#db;
    if (db === undefined) return;
    const { policy, logger } = this.#opts;
    const started = this.#now();
    const purges = purgesFor({ policy, now: started, lockoutWindowMs: this.#opts.lockoutWindowMs });
    const counts: Partial<Record<PurgeKind, number>> = {};
    for (const purge of purges) {
      let busy = 0;
      for (;;) {
        if (this.#stopped) return;
        let result;
        try {
          result = transaction(db, () => purge.batch(db, policy.batch));
        } catch (err) {
          if (!isBusy(err)) throw err;
          if (++busy >= MAX_BUSY_IN_A_ROW) {
            logger.warn({ kind: purge.kind }, 'retention: the database stayed locked; %s continues at the next run', purge.kind);
            break;
          }
          await sleep(PAUSE_MS * 5);
          continue;
        }
        busy = 0;
        if (result.deleted > 0) {
          this.#purged[purge.kind] += result.deleted;
          counts[purge.kind] = (counts[purge.kind] ?? 0) + result.deleted;
        }
        await sleep(PAUSE_MS);
        if (!result.more) break;
      }
    }
    this.#runs++;
    this.#refreshOldest();
    if (Object.keys(counts).length > 0) logger.info({ purged: counts, ms: this.#now() - started }, 'retention: purged %j', counts);
  }

  #refreshOldest(): void {
    if (this.#db === undefined) return;
    try {
      this.#oldest = oldestRows(this.#db);
    } catch (err) {
      if (!isBusy(err)) throw err;
    }
  }
}

function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes
  return (typeof e?.errcode === 'number' && [5, 6].includes(e.errcode & 0xff)) || /database is locked|database table is locked/.test(e?.message ?? '');
}
