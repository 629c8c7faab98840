// The retention scheduler: every `interval` seconds it asks for one run (run.ts) and keeps what the
// runs report for /metrics. The purge never runs on the event loop that answers SIP: its batches and
// their commits (an fsync each, synchronous = FULL) take tens of milliseconds. With SQLite in a file
// a run is a batch of the batch writers' thread (src/storage's batch-writer.ts), the one the spool
// and Conversation History write on: between the run's batches (a pause each) their group commits
// take their turns on the same connection, so they wait at most for one batch. That thread is
// there anyway; a thread of the run's own, started for each run (a V8 isolate loading its modules)
// took the SIP thread's core for up to a second on a one-core machine, 60 s after the start and
// every interval after: the p99 of a bench step (issue 20). On PostgreSQL (and an in-memory SQLite
// database) a run is made from the event loop on the process's handle: the database server does
// the work, not this process.
import type { Logger } from '../observability/logger.ts';
import type { BatchWriter, Sql } from '../storage/index.ts';
import { openBatchWriter } from '../storage/index.ts';
import type { RetentionPolicy } from './policy.ts';
import { OLDEST_KINDS, type OldestKind, PURGE_KINDS, type PurgeKind } from './purgers.ts';
import type { RunRequest, RunResult } from './run.ts';
import { writeRuns } from './run.ts';

const PURGE_WRITER = new URL('./purge-writer-thread.ts', import.meta.url);

/** the first run after start: after the start-up and its first clients, not among them */
const FIRST_RUN_MS = 60_000;

export interface RetentionOptions {
  /** the database (with a SQLite file, the runs are made on the batch writers' thread and its connection) */
  sql: Sql;
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
  #timer: NodeJS.Timeout | undefined;
  #writer: BatchWriter<RunRequest, RunResult[]> | undefined;
  /** the run going on, which a second runOnce joins */
  #run: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get stats(): RetentionStats {
    return { purged: { ...this.#purged }, oldest: { ...this.#oldest }, runs: this.#runs };
  }

  start(): void {
    // joins the writers' thread now, before the SIP listeners open: its modules are stripped of
    // their types and loaded once, not under load at the first run
    this.#writer ??= this.#open();
    this.#schedule(Math.min(FIRST_RUN_MS, this.#opts.policy.interval * 1000));
  }

  /** One run now; resolves when it is done (a run already going is joined, not doubled). */
  runOnce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return (this.#run ??= this.#runNow().finally(() => (this.#run = undefined)));
  }

  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    // a run going on ends at its next batch (the writer tells it), then the writer leaves the thread
    await this.#writer?.close();
    await this.#run?.catch(() => undefined);
  }

  #open(): BatchWriter<RunRequest, RunResult[]> {
    return openBatchWriter<RunRequest, RunResult[]>(this.#opts.sql, writeRuns, { entry: PURGE_WRITER, name: 'the retention run' });
  }

  async #runNow(): Promise<void> {
    const writer = (this.#writer ??= this.#open());
    try {
      const [result] = await writer.write([{ policy: this.#opts.policy, now: this.#now(), lockoutWindowMs: this.#opts.lockoutWindowMs }]);
      if (result !== undefined) this.#record(result);
    } catch (err) {
      this.#opts.logger.error({ err }, 'retention run failed: %s', err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const next = () => this.#schedule(this.#opts.policy.interval * 1000);
      this.runOnce().then(next, next);
    }, ms);
    this.#timer.unref();
  }

  #record(result: RunResult): void {
    this.#runs++;
    this.#oldest = result.oldest;
    for (const [kind, n] of Object.entries(result.purged) as Array<[PurgeKind, number]>) this.#purged[kind] += n;
    const { logger } = this.#opts;
    if (Object.keys(result.purged).length > 0) logger.info({ purged: result.purged }, 'retention: purged %j', result.purged);
    for (const kind of result.locked) logger.warn({ kind }, 'retention: the database stayed locked; %s continues at the next run', kind);
  }
}
