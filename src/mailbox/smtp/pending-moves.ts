// Transitional (issue 16, stage 1): the trace (src/observability/trace.ts) and the embedded
// mailbox store (folders, items, quota) still take the node:sqlite connection on this branch,
// while their owners move them to `Sql`. Until that merges, the SMTP code reaches them through
// here, which works on SQLite only: inside a transaction of the SQLite engine, the connection is
// the one the transaction is open on. At the merge: call them with the `Sql` handle directly, and
// delete this file.

import { ParleyError } from '../../errors.ts';
import type { TraceEvent } from '../../observability/trace.ts';
import { recordTrace } from '../../observability/trace.ts';
import type { Database, Sql } from '../../storage/index.ts';

/** The node:sqlite connection under an SQLite handle (top-level or in a transaction). */
export function connectionOf(sql: Sql): Database {
  const db = (sql as { db?: Database }).db;
  if (sql.engine !== 'sqlite' || db === undefined) {
    throw new ParleyError('NOT_YET_ON_POSTGRES', 'the trace and the mailbox store are not yet on PostgreSQL in this build (issue 16, stage 1); run on SQLite');
  }
  return db;
}

/** recordTrace within the transaction `tx` (or at once on a top-level handle). */
export async function traceIn(tx: Sql, event: TraceEvent): Promise<void> {
  recordTrace(connectionOf(tx), event);
}
