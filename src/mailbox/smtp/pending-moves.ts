// Transitional (issue 16, stage 1): the trace (src/observability/trace.ts) still takes the
// node:sqlite connection on this branch, while the helper "offline" moves it to `Sql`
// (`recordTrace(sql, event): Promise<void>`). Until that merges, the outbox writes its trace steps
// through here, which works on SQLite only: inside a transaction of the SQLite engine, the
// connection is the one the transaction is open on. At the merge: call recordTrace with the `Sql`
// handle where traceIn is called, and delete this file.

import { ParleyError } from '../../errors.ts';
import type { TraceEvent } from '../../observability/trace.ts';
import { recordTrace } from '../../observability/trace.ts';
import type { Database, Sql } from '../../storage/index.ts';

/** recordTrace within the transaction `tx` (or at once on a top-level handle). */
export async function traceIn(tx: Sql, event: TraceEvent): Promise<void> {
  const db = (tx as { db?: Database }).db;
  if (tx.engine !== 'sqlite' || db === undefined) {
    throw new ParleyError('NOT_YET_ON_POSTGRES', 'the trace of outbound mail is not yet on PostgreSQL in this build (issue 16, stage 1); run on SQLite');
  }
  recordTrace(db, event);
}
