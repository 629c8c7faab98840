// The retention scheduler: every `interval` seconds it asks the retention thread (purge-thread.ts)
// for one run (run.ts) and keeps what the runs report for /metrics. The purge never runs on the
// event loop that answers SIP: its batches and their commits (an fsync each, synchronous = FULL)
// take tens of milliseconds, which the thread spends instead. Its connection's busy timeout is
// short, so the spool writer's group commits wait at most for one batch. The thread lives only for
// a run: a V8 isolate with the capabilities' modules costs tens of MB, which an idle server (a run
// every 5 minutes) should not hold; starting one costs about a tenth of a second of the other core.
// That is SQLite with a file; on PostgreSQL (and an in-memory SQLite database) a run is made from
// the event loop on the process's handle: the database server does the work, not this process.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/logger.ts';
import type { Sql } from '../storage/index.ts';
import { sqliteFileOf, startStrippedThread, strippedModules } from '../storage/index.ts';
import type { RetentionPolicy } from './policy.ts';
import type { ThreadReply, ThreadRequest } from './purge-thread.ts';
import { OLDEST_KINDS, type OldestKind, PURGE_KINDS, type PurgeKind } from './purgers.ts';
import type { RunRequest, RunResult } from './run.ts';
import { runPurges } from './run.ts';

const PURGE_THREAD = new URL('./purge-thread.ts', import.meta.url).href;

/** the first run after start: after the start-up and its first clients, not among them */
const FIRST_RUN_MS = 60_000;

export interface RetentionOptions {
  /** the database (with a SQLite file, the thread opens a connection of its own to it) */
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
  #worker: Worker | undefined;
  #exited: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** a run from the loop (no thread), while it goes */
  #loopRun: Promise<void> | undefined;
  #stopped = false;
  /** the run thread's modules, stripped once (start) */
  #modules: Map<string, string> | undefined;

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  get stats(): RetentionStats {
    return { purged: { ...this.#purged }, oldest: { ...this.#oldest }, runs: this.#runs };
  }

  start(): void {
    // The thread's modules, stripped of their types once, now, before the SIP listeners open, and
    // handed to every run's thread: a thread that loaded Node's type stripper and stripped them
    // itself took about a second of CPU at its start, and stripping them at each run held the event
    // loop for ~100 ms; on a core shared with SIP either was the p99 of a minute (issue 20).
    if (sqliteFileOf(this.#opts.sql) !== undefined) this.#modules = strippedModules(PURGE_THREAD, new Set());
    this.#schedule(Math.min(FIRST_RUN_MS, this.#opts.policy.interval * 1000));
  }

  /** One run now; resolves when the thread reports it (a run already going is joined, not doubled). */
  runOnce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const file = sqliteFileOf(this.#opts.sql);
    if (file === undefined) return (this.#loopRun ??= this.#runInLoop().finally(() => (this.#loopRun = undefined)));
    const worker = this.#worker ?? this.#spawn(file);
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) worker.postMessage({ kind: 'run', request: this.#request() } satisfies ThreadRequest);
      this.#pending.push({ resolve, reject });
    });
  }

  #request(): RunRequest {
    return { policy: this.#opts.policy, now: this.#now(), lockoutWindowMs: this.#opts.lockoutWindowMs };
  }

  async #runInLoop(): Promise<void> {
    try {
      this.#record(await runPurges(this.#opts.sql, this.#request(), () => this.#stopped));
    } catch (err) {
      this.#opts.logger.error({ err }, 'retention run failed: %s', err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const worker = this.#worker;
    if (worker !== undefined) {
      worker.ref();
      worker.postMessage({ kind: 'stop' } satisfies ThreadRequest);
    }
    // a run's thread, or one let go after its run and still closing its connection; or a run from the loop
    await this.#exited;
    await this.#loopRun?.catch(() => undefined);
  }

  /** The thread for one run; it ends once the run is reported (#finished). */
  #spawn(file: string): Worker {
    const worker = startStrippedThread(PURGE_THREAD, { file }, this.#modules ?? strippedModules(PURGE_THREAD, new Set()));
    // the server's sockets keep the process alive, never this thread
    worker.unref();
    worker.on('message', (reply: ThreadReply) => this.#finished(reply));
    worker.on('error', (err: Error) => this.#opts.logger.error({ err }, 'the retention thread failed: %s', err.message));
    this.#exited = new Promise((resolve) => worker.on('exit', () => {
      if (this.#worker === worker) {
        this.#worker = undefined;
        for (const p of this.#pending.splice(0)) p.reject(new Error('the retention thread ended'));
      }
      resolve();
    }));
    this.#worker = worker;
    return worker;
  }

  /** The run is reported: let its thread go (the next run starts another). */
  #release(): void {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#worker = undefined;
    worker.postMessage({ kind: 'stop' } satisfies ThreadRequest);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const next = () => this.#schedule(this.#opts.policy.interval * 1000);
      this.runOnce().then(next, next);
    }, ms);
    this.#timer.unref();
  }

  #finished(reply: ThreadReply): void {
    const pending = this.#pending.splice(0);
    if (reply.kind === 'failed') {
      this.#opts.logger.error({ reason: reply.message }, 'retention run failed: %s', reply.message);
      for (const p of pending) p.reject(new Error(reply.message));
      this.#release();
      return;
    }
    this.#record(reply.result);
    for (const p of pending) p.resolve();
    this.#release();
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
