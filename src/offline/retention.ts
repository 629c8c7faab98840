// Retention of the spool (src/retention runs it): delivered entries go after retention.delivered
// with their messages (ON DELETE CASCADE) and their trace rows; entries still waiting, being
// delivered or failed are never purged here (a failed one waits for an administrator:
// `parley spooler retry|purge`). Each call is one short batch inside the caller's transaction.
import { deleteTraces, purgeTraceBatch, type TracePurge } from '../observability/trace.ts';
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';

/** Deletes up to `limit` entries delivered before `before` (epoch ms), oldest first; returns the entries and trace rows deleted. */
export function purgeDeliveredBatch(db: Database, before: number, limit: number): { entries: number; traces: number } {
  const ids = (statement(db, "SELECT id FROM spool_entries WHERE state = 'delivered' AND delivered_at < ? ORDER BY delivered_at LIMIT ?").all(before, limit) as Array<{ id: string }>).map((r) => r.id);
  const remove = statement(db, "DELETE FROM spool_entries WHERE id = ? AND state = 'delivered'");
  let entries = 0;
  for (const id of ids) entries += Number(remove.run(id).changes);
  return { entries, traces: deleteTraces(db, ids) };
}

/**
 * Trace rows older than `before` that belong to no kept entry: a MESSAGE refused at the gate (no
 * entry), or an entry an administrator purged. Rows of an entry still in the spool stay.
 */
export function purgeLooseTraceBatch(db: Database, before: number, afterSeq: number, limit: number): TracePurge {
  const exists = statement(db, 'SELECT 1 AS x FROM spool_entries WHERE id = ?');
  return purgeTraceBatch(db, before, afterSeq, limit, (traceId) => exists.get(traceId) !== undefined);
}

/** When the oldest kept delivered entry was delivered, and the oldest failed one failed (epoch ms; null: none). */
export function oldestSpoolRows(db: Database): { delivered: number | null; failed: number | null } {
  const delivered = statement(db, "SELECT min(delivered_at) AS at FROM spool_entries WHERE state = 'delivered'").get() as { at: number | null };
  const failed = statement(db, "SELECT min(failed_at) AS at FROM spool_entries WHERE state = 'failed'").get() as { at: number | null };
  return { delivered: delivered.at, failed: failed.at };
}
