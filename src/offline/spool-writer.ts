// Where the group commit's batches are written: the spool entries, their messages and trace rows of
// one batch in one SQLite transaction, whose COMMIT is the fsync a 202 waits for.
//
// With the database in a file, a worker thread with its own connection writes them: the SQL and the
// fsync (2-4 ms a batch at 5,000 messages a second, 40 % of the event loop when it ran there) leave
// the thread that carries SIP, and on a machine with a second core they run on it. Both connections
// take the write lock with BEGIN IMMEDIATE, so a batch and the spool worker's pickup (waiting →
// delivering) never interleave: a message joins an entry only while it is still waiting.
// An in-memory database (tests) cannot be shared with a thread: its batches are written in the loop.

import { Worker } from 'node:worker_threads';
import type { TraceEvent } from '../observability/trace.ts';
import { recordTrace } from '../observability/trace.ts';
import type { Database } from '../storage/index.ts';
import { transaction } from '../storage/index.ts';
import { recordRefusal } from './quota-store.ts';
import type { RefusalRecord } from './quota-store.ts';
import { spoolMessages } from './spool.ts';
import type { SpoolReceipt, SpoolRequest } from './spool.ts';

/**
 * One item of a batch: a message to spool, a trace row (a gate refusal) to write with them, or a
 * quota refusal (its count per user and reason, and its trace row unless there were too many).
 */
export type SpoolJob = { kind: 'spool'; request: SpoolRequest } | { kind: 'trace'; event: TraceEvent } | { kind: 'refused'; event: TraceEvent | undefined; refusal: RefusalRecord };

/** A receipt per spooled message, null per trace row, in the order of the jobs. */
export type SpoolResult = SpoolReceipt | null;

export interface SpoolWriter {
  /** Writes the batch in one transaction; resolves once it is committed (on disk). */
  write(jobs: readonly SpoolJob[]): SpoolResult[] | Promise<SpoolResult[]>;
  /** Stops writing; the caller has awaited every write it started. */
  close(): Promise<void>;
  /** false once closed, or while its thread is down (a new one starts with the next write) */
  readonly running: boolean;
}

/** One batch, inside one transaction: the spool writes in arrival order, then the traces. */
export function writeBatch(db: Database, jobs: readonly SpoolJob[]): SpoolResult[] {
  return transaction(db, () => {
    const requests: SpoolRequest[] = [];
    for (const job of jobs) if (job.kind === 'spool') requests.push(job.request);
    const receipts = spoolMessages(db, requests);
    let next = 0;
    return jobs.map((job) => {
      if (job.kind === 'spool') return receipts[next++] as SpoolReceipt;
      if (job.event !== undefined) recordTrace(db, job.event);
      if (job.kind === 'refused') recordRefusal(db, job.refusal);
      return null;
    });
  });
}

/** Writes on the caller's connection, in the event loop (an in-memory database). */
export function loopSpoolWriter(db: Database): SpoolWriter {
  let running = true;
  return {
    write: (jobs) => writeBatch(db, jobs),
    close: async () => {
      running = false;
    },
    get running() {
      return running;
    },
  };
}

/** What the thread is sent: a batch to write, or the request to close its connection and end. */
export type ThreadRequest = { kind: 'write'; id: number; jobs: readonly SpoolJob[] } | { kind: 'close' };
/** What it answers for a batch. */
export type ThreadReply = { id: number; results: SpoolResult[] } | { id: number; error: { message: string; code?: string } };

interface Waiting {
  resolve(results: SpoolResult[]): void;
  reject(error: Error): void;
}

/** One thread and the batches it has not answered yet. */
interface WriterThread {
  worker: Worker;
  waiting: Map<number, Waiting>;
  exited: Promise<void>;
}

/**
 * Writes in a worker thread on its own connection to `file` (spool-writer-thread.ts). If the thread
 * cannot open the database or dies, the batches waiting on it are refused with the reason (the
 * router answers those senders 500: nothing is acknowledged that is not on disk), and the next
 * write starts a new thread.
 */
export class ThreadSpoolWriter implements SpoolWriter {
  readonly #file: string;
  #thread: WriterThread | undefined;
  #nextId = 1;
  #closed = false;

  constructor(file: string) {
    this.#file = file;
    this.#thread = this.#start();
  }

  get running(): boolean {
    return !this.#closed && this.#thread !== undefined;
  }

  write(jobs: readonly SpoolJob[]): Promise<SpoolResult[]> {
    if (this.#closed) return Promise.reject(new Error('the spool writer is closed: the server is stopping'));
    const thread = (this.#thread ??= this.#start());
    const id = this.#nextId++;
    // a body may be a view of a larger buffer (a datagram's): send its own bytes, not the whole buffer
    const own = jobs.map((job) => (job.kind === 'spool' ? { kind: job.kind, request: { ...job.request, body: new Uint8Array(job.request.body) } } : job));
    return new Promise<SpoolResult[]>((resolve, reject) => {
      thread.waiting.set(id, { resolve, reject });
      thread.worker.postMessage({ kind: 'write', id, jobs: own } satisfies ThreadRequest);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    if (thread === undefined) return;
    // kept alive until the thread has closed its connection
    thread.worker.ref();
    thread.worker.postMessage({ kind: 'close' } satisfies ThreadRequest);
    await thread.exited;
  }

  #start(): WriterThread {
    const worker = new Worker(new URL('./spool-writer-thread.ts', import.meta.url), { workerData: { file: this.#file } });
    // a running server is kept alive by its sockets; the thread alone must not keep a process alive
    worker.unref();
    const waiting = new Map<number, Waiting>();
    let failure: Error | undefined;
    const fail = (error: Error): void => {
      failure ??= error;
      for (const w of waiting.values()) w.reject(failure);
      waiting.clear();
    };
    worker.on('message', (reply: ThreadReply) => {
      const w = waiting.get(reply.id);
      if (w === undefined) return;
      waiting.delete(reply.id);
      if ('results' in reply) w.resolve(reply.results);
      else w.reject(Object.assign(new Error(reply.error.message), reply.error.code !== undefined ? { code: reply.error.code } : {}));
    });
    worker.on('error', (err: Error) => fail(new Error(`the spool writer thread failed: ${err.message}`, { cause: err })));
    const exited = new Promise<void>((resolve) => {
      worker.on('exit', (code) => {
        fail(new Error(`the spool writer thread ended (exit code ${code})`));
        if (this.#thread?.worker === worker) this.#thread = undefined;
        resolve();
      });
    });
    return { worker, waiting, exited };
  }
}
