// Where the group commit's batches are written: the spool entries, their messages and trace rows of
// one batch in one transaction, whose COMMIT is the durable write a 202 waits for.
//
// On SQLite with the database in a file, a worker thread with its own connection writes them (the
// batch writer of src/storage, shared with Conversation History): the SQL and the fsync (2-4 ms a
// batch at 5,000 messages a second, 40 % of the event loop when it ran there) leave the thread that
// carries SIP, and on a machine with a second core they run on it. Both connections take the write
// lock with BEGIN IMMEDIATE, so a batch and the spool worker's pickup (waiting → delivering) never
// interleave: a message joins an entry only while it is still waiting. On PostgreSQL the batch is
// written from the event loop on the pool (the server does the fsync); its transaction is
// serializable, so a batch that raced a pickup of the entry it joins is run again and opens a new one.
// An in-memory SQLite database (tests) cannot be shared with a thread: its batches are written in the loop.

import type { TraceEvent } from '../observability/trace.ts';
import { recordTrace } from '../observability/trace.ts';
import type { BatchWriter, Sql } from '../storage/index.ts';
import { openBatchWriter, ThreadBatchWriter } from '../storage/index.ts';
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
export function writeBatch(sql: Sql, jobs: readonly SpoolJob[]): Promise<SpoolResult[]> {
  return sql.transaction(async (tx) => {
    const requests: SpoolRequest[] = [];
    for (const job of jobs) if (job.kind === 'spool') requests.push(job.request);
    const receipts = await spoolMessages(tx, requests);
    let next = 0;
    const results: SpoolResult[] = [];
    for (const job of jobs) {
      if (job.kind === 'spool') {
        results.push(receipts[next++] as SpoolReceipt);
        continue;
      }
      if (job.event !== undefined) await recordTrace(tx, job.event);
      if (job.kind === 'refused') await recordRefusal(tx, job.refusal);
      results.push(null);
    }
    return results;
  });
}

const THREAD = { entry: new URL('./spool-writer-thread.ts', import.meta.url), name: 'the spool writer' };

/**
 * The spool's writer for `sql`: a thread on its own connection with a SQLite file
 * (spool-writer-thread.ts); the event loop otherwise. If the thread cannot open the database or
 * dies, the batches waiting on it are refused with the reason (the router answers those senders
 * 500: nothing is acknowledged that is not on disk), and the next write starts a new thread.
 */
export function openSpoolWriter(sql: Sql): SpoolWriter {
  return sendingOwnBytes(openBatchWriter(sql, writeBatch, THREAD));
}

/** The thread's writer for a SQLite file named directly (a file that may not exist yet: tests). */
export function threadSpoolWriter(file: string): SpoolWriter {
  return sendingOwnBytes(new ThreadBatchWriter({ file, ...THREAD }));
}

function sendingOwnBytes(writer: SpoolWriter): SpoolWriter {
  return {
    get running() {
      return writer.running;
    },
    // a body may be a view of a larger buffer (a datagram's): send its own bytes, not the whole buffer
    write: (jobs) => writer.write(jobs.map((job) => (job.kind === 'spool' ? { kind: job.kind, request: { ...job.request, body: new Uint8Array(job.request.body) } } : job))),
    close: () => writer.close(),
  };
}
