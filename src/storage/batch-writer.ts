// A batch writer: what a group commit hands its batches to. Each batch is written in one
// transaction by a capability's `write(sql, jobs)`; its COMMIT is the one durable write the batch
// costs (an fsync on SQLite; on PostgreSQL the server's WAL flush, synchronous_commit on).
//
// On SQLite with the database in a file, a worker thread with its own connection writes them: the
// SQL and the fsync leave the thread that carries SIP, and on a machine with a second core they run
// on it. The thread is a small entry file of the capability that calls `serveBatches(write)` (the
// function must be importable in the thread: no state of the main thread); it hands `write` its
// connection as a `Sql` (sqliteSql). An in-memory SQLite database (tests) cannot be shared with a
// thread, and PostgreSQL has no local fsync to move off the loop: their batches are written from
// the event loop, on the process's handle (PostgreSQL's pool, asynchronously).
//
// The offline spool (src/offline/spool-writer.ts) and Conversation History (src/history) share it.

import { parentPort, Worker, workerData } from 'node:worker_threads';
import { openDatabaseFile } from './database.ts';
import type { Sql } from './sql.ts';
import { sqliteSql } from './sqlite-sql.ts';

/** Writes one batch of jobs in one transaction and returns what the caller needs of it. */
export type BatchWrite<J, R> = (sql: Sql, jobs: readonly J[]) => Promise<R>;

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
    write: (jobs) => (running ? write(sql, jobs) : Promise.reject(new Error('the batch writer is closed: the server is stopping'))),
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

/** What the thread is sent: a batch to write, or the request to close its connection and end. */
type ThreadRequest<J> = { kind: 'write'; id: number; jobs: readonly J[] } | { kind: 'close' };
/** What it answers for a batch. */
type ThreadReply<R> = { id: number; result: R } | { id: number; error: { message: string; code?: string } };

interface Waiting<R> {
  resolve(result: R): void;
  reject(error: Error): void;
}

/** One thread and the batches it has not answered yet. */
interface WriterThread<R> {
  worker: Worker;
  waiting: Map<number, Waiting<R>>;
  exited: Promise<void>;
}

export interface ThreadBatchWriterOptions extends BatchWriterThread {
  /** the database file the thread opens its own connection to */
  file: string;
}

/**
 * Writes in a worker thread on its own connection. If the thread cannot open the database or dies,
 * the batches waiting on it are refused with the reason, and the next write starts a new thread.
 */
export class ThreadBatchWriter<J, R> implements BatchWriter<J, R> {
  readonly #o: ThreadBatchWriterOptions;
  #thread: WriterThread<R> | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: ThreadBatchWriterOptions) {
    this.#o = options;
    this.#thread = this.#start();
  }

  get running(): boolean {
    return !this.#closed && this.#thread !== undefined;
  }

  write(jobs: readonly J[]): Promise<R> {
    if (this.#closed) return Promise.reject(new Error(`${this.#o.name} is closed: the server is stopping`));
    const thread = (this.#thread ??= this.#start());
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      thread.waiting.set(id, { resolve, reject });
      thread.worker.postMessage({ kind: 'write', id, jobs } satisfies ThreadRequest<J>);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    if (thread === undefined) return;
    // kept alive until the thread has closed its connection
    thread.worker.ref();
    thread.worker.postMessage({ kind: 'close' } satisfies ThreadRequest<J>);
    await thread.exited;
  }

  #start(): WriterThread<R> {
    const { name } = this.#o;
    const worker = new Worker(this.#o.entry, { workerData: { file: this.#o.file } });
    // a running server is kept alive by its sockets; the thread alone must not keep a process alive
    worker.unref();
    const waiting = new Map<number, Waiting<R>>();
    let failure: Error | undefined;
    const fail = (error: Error): void => {
      failure ??= error;
      for (const w of waiting.values()) w.reject(failure);
      waiting.clear();
    };
    worker.on('message', (reply: ThreadReply<R>) => {
      const w = waiting.get(reply.id);
      if (w === undefined) return;
      waiting.delete(reply.id);
      if ('result' in reply) w.resolve(reply.result);
      else w.reject(Object.assign(new Error(reply.error.message), reply.error.code !== undefined ? { code: reply.error.code } : {}));
    });
    worker.on('error', (err: Error) => fail(new Error(`${name} thread failed: ${err.message}`, { cause: err })));
    const exited = new Promise<void>((resolve) => {
      worker.on('exit', (code) => {
        fail(new Error(`${name} thread ended (exit code ${code})`));
        if (this.#thread?.worker === worker) this.#thread = undefined;
        resolve();
      });
    });
    return { worker, waiting, exited };
  }
}

/**
 * The thread's side: opens its own connection to the file the writer named, writes each batch it
 * is sent with `write` (one at a time: the handle queues transactions), answers the result (or the
 * error). Call it at the top of a thread entry file.
 */
export function serveBatches<J, R>(write: BatchWrite<J, R>): void {
  const port = parentPort;
  if (port === null) throw new Error('serveBatches runs in a worker thread started by a ThreadBatchWriter');
  const sql = sqliteSql(openDatabaseFile((workerData as { file: string }).file));
  let last: Promise<unknown> = Promise.resolve();
  port.on('message', (request: ThreadRequest<J>) => {
    if (request.kind === 'close') {
      // after the batches already sent
      void last.then(async () => {
        await sql.close();
        port.close();
      });
      return;
    }
    last = write(sql, request.jobs).then(
      (result) => port.postMessage({ id: request.id, result } satisfies ThreadReply<R>),
      (err: unknown) => {
        const code = (err as { code?: unknown } | null)?.code;
        port.postMessage({ id: request.id, error: { message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) } } satisfies ThreadReply<R>);
      },
    );
  });
}
