// A batch writer: what a group commit hands its batches to. Each batch is written in one
// transaction by a capability's `write(sql, jobs)`; its COMMIT is the one durable write the batch
// costs (an fsync on SQLite; on PostgreSQL the server's WAL flush, synchronous_commit on).
//
// On SQLite with the database in a file, a worker thread with its own connection writes them: the
// SQL and the fsync leave the thread that carries SIP, and on a machine with a second core they run
// on it. One thread per file serves all its writers (see startThread). A writer names a small
// entry file of its capability that calls `serveBatches(write)` (the function must be importable
// in the thread: no state of the main thread); the thread imports it and hands `write` its
// connection as a `Sql` (sqliteSql). An in-memory SQLite database (tests) cannot be shared with a
// thread, and PostgreSQL has no local fsync to move off the loop: their batches are written from
// the event loop, on the process's handle (PostgreSQL's pool, asynchronously).
//
// The offline spool (src/offline/spool-writer.ts), Conversation History (src/history) and the
// retention runs (src/retention) share it, and the thread.

import { parentPort, Worker, workerData } from 'node:worker_threads';
import { openDatabaseFile } from './database.ts';
import type { Sql } from './sql.ts';
import { sqliteSql } from './sqlite-sql.ts';
import { strippedModules, THREAD_LOADER } from './thread-modules.ts';

/** a writer thread's young generation (semi-spaces and all), MiB: see ThreadBatchWriter#start */
const WRITER_YOUNG_GENERATION_MB = 6;

/**
 * Writes one batch of jobs in one transaction and returns what the caller needs of it. `stopping`
 * turns true once the writer is closing (the server stops): work of many transactions (a retention
 * run) ends at its next one, the rest is for the next start.
 */
export type BatchWrite<J, R> = (sql: Sql, jobs: readonly J[], stopping: () => boolean) => Promise<R>;

export interface BatchWriter<J, R> {
  /** Writes the batch in one transaction; resolves once it is committed (durably). */
  write(jobs: readonly J[]): Promise<R>;
  /** Stops writing; the caller has awaited every write it started. */
  close(): Promise<void>;
  /** false once closed, or while its thread is down (a new one starts with the next write) */
  readonly running: boolean;
}

/** Writes on the given handle, from the event loop (an in-memory SQLite database, or PostgreSQL). */
export function loopBatchWriter<J, R>(sql: Sql, write: BatchWrite<J, R>): BatchWriter<J, R> {
  let running = true;
  return {
    write: (jobs) => (running ? write(sql, jobs, () => !running) : Promise.reject(new Error('the batch writer is closed: the server is stopping'))),
    close: async () => {
      running = false;
    },
    get running() {
      return running;
    },
  };
}

/**
 * The database file a thread of its own may open for `sql`: a top-level SQLite handle on a file.
 * Undefined for PostgreSQL, an in-memory database, or a transaction's handle.
 */
export function sqliteFileOf(sql: Sql): string | undefined {
  if (sql.engine !== 'sqlite' || sql.inTransaction) return undefined;
  const location = (sql as { location?: unknown }).location;
  return typeof location === 'string' && location !== '' && location !== ':memory:' ? location : undefined;
}

export interface BatchWriterThread {
  /** the thread's entry file (it calls serveBatches with the same write function) */
  entry: URL;
  /** who writes, for error messages: "the spool writer" */
  name: string;
}

/**
 * The batch writer for `sql`: a thread with its own connection when it is a SQLite file (see the
 * header), else the event loop on `sql` itself.
 */
export function openBatchWriter<J, R>(sql: Sql, write: BatchWrite<J, R>, thread: BatchWriterThread): BatchWriter<J, R> {
  const file = sqliteFileOf(sql);
  return file === undefined ? loopBatchWriter(sql, write) : new ThreadBatchWriter<J, R>({ file, ...thread });
}

interface Waiting<R> {
  resolve(result: R): void;
  reject(error: Error): void;
}

export interface ThreadBatchWriterOptions extends BatchWriterThread {
  /** the database file the thread opens its own connection to */
  file: string;
}

/** What a writer thread is sent: a writer joins (naming its entry file), writes a batch, or leaves. */
type ThreadRequest<J> = { kind: 'open'; writer: number; entry: string; modules: Map<string, string> } | { kind: 'write'; writer: number; id: number; jobs: readonly J[] } | { kind: 'close'; writer: number };
/** What it answers: a batch's result or error, or that a writer has left (its batches all answered). */
type ThreadReply<R> = { writer: number; id: number; result: R } | { writer: number; id: number; error: { message: string; code?: string } } | { writer: number; closed: true };

/** A writer's side of a thread: what the thread tells it. */
interface ThreadMember<R> {
  reply(reply: ThreadReply<R>): void;
  /** the thread failed or ended: every batch waiting is refused, and the writer is let go of it */
  fail(error: Error): void;
}

/** One thread per database file and its writers. */
interface WriterThread {
  readonly file: string;
  readonly worker: Worker;
  readonly members: Map<number, ThreadMember<never>>;
  readonly exited: Promise<void>;
  nextWriter: number;
  /** writers whose close is under way (the thread is kept referenced meanwhile) */
  closing: number;
  /** the modules stripped for it (thread-modules.ts) */
  readonly stripped: Set<string>;
}

// One thread serves every writer of a file (the spool's and Conversation History's): a thread is
// an isolate of its own, ~30 MiB of RSS at rest (heap, the type stripper, Node's bootstrap) before
// it writes anything. The writers share its connection, whose transactions queue (sqlite-sql.ts):
// SQLite lets one of them write at a time anyway. (Issue 20, memory.)
const threads = new Map<string, WriterThread>();

function startThread(file: string): WriterThread {
  // The thread gets V8's default young generation otherwise (up to 3 × 32 MiB here, sized for the
  // main thread's traffic), which it grows under load and keeps: a batch's garbage is a few
  // hundred small objects, and a few MiB collect it as well.
  // Its modules come stripped of their types (thread-modules.ts), and it preloads nothing: --import
  // and --require are for the main thread (the bench's commit-stats.ts, say, would load the
  // spool's modules and Node's type stripper into the thread; bin/parley's strip-types.mjs is the
  // thread loader's job there).
  const main = new URL('./writer-thread.ts', import.meta.url).href;
  const stripped = new Set<string>();
  const worker = new Worker(THREAD_LOADER, {
    eval: true,
    workerData: { file, main, modules: strippedModules(main, stripped) },
    execArgv: threadOptions(process.execArgv),
    resourceLimits: { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB },
  });
  // a running server is kept alive by its sockets; the thread alone must not keep a process alive
  worker.unref();
  const members = new Map<number, ThreadMember<never>>();
  let failure: Error | undefined;
  const fail = (error: Error): void => {
    failure ??= error;
    if (threads.get(file) === thread) threads.delete(file);
    for (const member of [...members.values()]) member.fail(failure);
    members.clear();
  };
  worker.on('message', (reply: ThreadReply<never>) => members.get(reply.writer)?.reply(reply));
  worker.on('error', (err: Error) => fail(err));
  const exited = new Promise<void>((resolve) => {
    worker.on('exit', (code) => {
      fail(new Error(`ended (exit code ${code})`));
      resolve();
    });
  });
  const thread: WriterThread = { file, worker, members, exited, nextWriter: 1, closing: 0, stripped };
  threads.set(file, thread);
  return thread;
}

/**
 * Writes in a worker thread on its own connection (one thread per file, shared by its writers). If
 * the thread cannot open the database or dies, the batches waiting on it are refused with the
 * reason, and the next write starts a new thread.
 */
export class ThreadBatchWriter<J, R> implements BatchWriter<J, R> {
  readonly #o: ThreadBatchWriterOptions;
  /** the thread and this writer's number in it; undefined while it has none */
  #joined: { thread: WriterThread; writer: number } | undefined;
  readonly #waiting = new Map<number, Waiting<R>>();
  #nextId = 1;
  #closed = false;
  /** settles when the thread has answered this writer's close */
  #left: (() => void) | undefined;

  constructor(options: ThreadBatchWriterOptions) {
    this.#o = options;
    this.#joined = this.#join();
  }

  get running(): boolean {
    return !this.#closed && this.#joined !== undefined;
  }

  write(jobs: readonly J[]): Promise<R> {
    if (this.#closed) return Promise.reject(new Error(`${this.#o.name} is closed: the server is stopping`));
    const { thread, writer } = (this.#joined ??= this.#join());
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      thread.worker.postMessage({ kind: 'write', writer, id, jobs } satisfies ThreadRequest<J>);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const joined = this.#joined;
    if (joined === undefined) return;
    const { thread, writer } = joined;
    const left = new Promise<void>((resolve) => (this.#left = resolve));
    // kept alive until the thread has answered the batches already sent (and ended, after the last writer)
    if (thread.closing++ === 0) thread.worker.ref();
    thread.worker.postMessage({ kind: 'close', writer } satisfies ThreadRequest<J>);
    // every writer leaving: the thread ends once they have left; new writers of the file start another
    if (thread.closing === thread.members.size && threads.get(thread.file) === thread) threads.delete(thread.file);
    await left;
    if (thread.members.size === 0) await thread.exited;
    else if (--thread.closing === 0) thread.worker.unref();
  }

  #join(): { thread: WriterThread; writer: number } {
    const thread = threads.get(this.#o.file) ?? startThread(this.#o.file);
    const writer = thread.nextWriter++;
    const member: ThreadMember<R> = {
      reply: (reply) => {
        if ('closed' in reply) {
          thread.members.delete(writer);
          this.#joined = undefined;
          this.#left?.();
          return;
        }
        const w = this.#waiting.get(reply.id);
        if (w === undefined) return;
        this.#waiting.delete(reply.id);
        if ('result' in reply) w.resolve(reply.result);
        else w.reject(Object.assign(new Error(reply.error.message), reply.error.code !== undefined ? { code: reply.error.code } : {}));
      },
      fail: (error) => {
        const refused = new Error(`${this.#o.name} thread failed: ${error.message}`, { cause: error });
        for (const w of this.#waiting.values()) w.reject(refused);
        this.#waiting.clear();
        if (this.#joined?.thread === thread) this.#joined = undefined;
        this.#left?.();
      },
    };
    thread.members.set(writer, member as ThreadMember<never>);
    const entry = this.#o.entry.href;
    thread.worker.postMessage({ kind: 'open', writer, entry, modules: strippedModules(entry, thread.stripped) } satisfies ThreadRequest<J>);
    return { thread, writer };
  }
}

/** Node's options a writer thread is given, with `--name value` (not `--name=value`) taking the next one. */
const THREAD_OPTIONS = new Map([
  // profiles (a thread writes its own file; given the main thread's name, it would write over it)
  ['--cpu-prof', false],
  ['--cpu-prof-dir', true],
  ['--cpu-prof-interval', true],
  ['--heap-prof', false],
  ['--heap-prof-dir', true],
  ['--heap-prof-interval', true],
  // what errors and warnings look like
  ['--enable-source-maps', false],
  ['--disable-warning', true],
  ['--no-warnings', false],
  ['--trace-warnings', false],
]);

/**
 * The options of Node's command line a writer thread gets: the diagnostics, not the preloads
 * (`--import`, `--require`: the main thread's), nor what a thread may not be given (per process).
 */
function threadOptions(options: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const option = options[i] as string;
    const takesValue = THREAD_OPTIONS.get(option.split('=')[0] as string);
    if (takesValue === undefined) continue;
    kept.push(option);
    if (takesValue && !option.includes('=') && i + 1 < options.length) kept.push(options[++i] as string);
  }
  return kept;
}

/** In a writer thread: the write function the entry file being imported gave serveBatches. */
let served: BatchWrite<unknown, unknown> | undefined;

/**
 * Called at the top of a writer's entry file: `write` is what the thread runs for that writer's
 * batches (the thread imports the entry file when the writer joins it).
 */
export function serveBatches<J, R>(write: BatchWrite<J, R>): void {
  if (parentPort === null) throw new Error('serveBatches runs in a worker thread started by a ThreadBatchWriter');
  served = write as BatchWrite<unknown, unknown>;
}

/**
 * The thread's side (writer-thread.ts): opens its own connection to the file, imports each
 * writer's entry file, writes each batch it is sent (one at a time per writer; the connection
 * queues the writers' transactions), answers the result (or the error), and ends with the last writer.
 */
export function hostBatchWriters(): void {
  const port = parentPort;
  if (port === null) throw new Error('hostBatchWriters runs in a worker thread started by a ThreadBatchWriter');
  const sql = sqliteSql(openDatabaseFile((workerData as { file: string }).file));
  /** each entry file's write function, imported one at a time: serveBatches says which is whose */
  const entries = new Map<string, Promise<BatchWrite<unknown, unknown>>>();
  let importing: Promise<unknown> = Promise.resolve();
  const load = (entry: string): Promise<BatchWrite<unknown, unknown>> => {
    let write = entries.get(entry);
    if (write === undefined) {
      write = importing.then(async () => {
        served = undefined;
        await import(entry);
        if (served === undefined) throw new Error(`${entry} does not call serveBatches`);
        return served;
      });
      importing = write.catch(() => {});
      entries.set(entry, write);
    }
    return write;
  };
  /** the writers that joined: their write function and their last batch */
  const writers = new Map<number, { write: Promise<BatchWrite<unknown, unknown>>; last: Promise<unknown>; closing: boolean }>();
  port.on('message', (request: ThreadRequest<unknown>) => {
    if (request.kind === 'open') {
      // for the thread's loader (THREAD_LOADER), before the entry is imported
      const modules = (workerData as { modules: Map<string, string> }).modules;
      for (const [url, js] of request.modules) modules.set(url, js);
      writers.set(request.writer, { write: load(request.entry), last: Promise.resolve(), closing: false });
      return;
    }
    const w = writers.get(request.writer);
    if (w === undefined) return;
    if (request.kind === 'close') {
      // after the batches already sent (a long one is told, and ends at its next transaction)
      w.closing = true;
      void w.last.then(async () => {
        writers.delete(request.writer);
        port.postMessage({ writer: request.writer, closed: true } satisfies ThreadReply<unknown>);
        if (writers.size > 0) return;
        await sql.close();
        port.close();
      });
      return;
    }
    const { writer, id, jobs } = request;
    w.last = w.last
      .then(async () => (await w.write)(sql, jobs, () => w.closing))
      .then(
        (result) => port.postMessage({ writer, id, result } satisfies ThreadReply<unknown>),
        (err: unknown) => {
          const code = (err as { code?: unknown } | null)?.code;
          port.postMessage({ writer, id, error: { message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) } } satisfies ThreadReply<unknown>);
        },
      );
  });
}
