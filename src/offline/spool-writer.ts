// Where the group commit's batches are written: the spool entries, their messages and trace rows of
// one batch in one SQLite transaction, whose COMMIT is the fsync a 202 waits for.
//
// With the database in a file, a worker thread with its own connection writes them (the batch
// writer of src/storage, shared with Conversation History): the SQL and the fsync (2-4 ms a batch at
// 5,000 messages a second, 40 % of the event loop when it ran there) leave the thread that carries
// SIP, and on a machine with a second core they run on it. Both connections
// take the write lock with BEGIN IMMEDIATE, so a batch and the spool worker's pickup (waiting →
// delivering) never interleave: a message joins an entry only while it is still waiting.
// An in-memory database (tests) cannot be shared with a thread: its batches are written in the loop.

import type { TraceEvent } from '../observability/trace.ts';
import { recordTrace } from '../observability/trace.ts';
import type { BatchWriter, Database } from '../storage/index.ts';
import { loopBatchWriter, ThreadBatchWriter, transaction } from '../storage/index.ts';
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

/** Writes a batch in one transaction; resolves once it is committed (on disk). */
export type SpoolWriter = BatchWriter<SpoolJob, SpoolResult[]>;

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
  return loopBatchWriter(db, writeBatch);
}

/**
 * Writes in a worker thread on its own connection to `file` (spool-writer-thread.ts, through the
 * generic ThreadBatchWriter of src/storage). If the thread cannot open the database or dies, the
 * batches waiting on it are refused with the reason (the router answers those senders 500: nothing
 * is acknowledged that is not on disk), and the next write starts a new thread.
 */
export class ThreadSpoolWriter implements SpoolWriter {
  readonly #writer: ThreadBatchWriter<SpoolJob, SpoolResult[]>;

  constructor(file: string) {
    this.#writer = new ThreadBatchWriter({ file, entry: new URL('./spool-writer-thread.ts', import.meta.url), name: 'the spool writer' });
  }

  get running(): boolean {
    return this.#writer.running;
  }

  write(jobs: readonly SpoolJob[]): Promise<SpoolResult[]> {
    // a body may be a view of a larger buffer (a datagram's): send its own bytes, not the whole buffer
    return this.#writer.write(jobs.map((job) => (job.kind === 'spool' ? { kind: job.kind, request: { ...job.request, body: new Uint8Array(job.request.body) } } : job)));
  }

  close(): Promise<void> {
    return this.#writer.close();
  }
}
