// Retention of the spool (src/retention runs it): delivered entries go after retention.delivered
// with their messages (ON DELETE CASCADE) and their trace rows; entries still waiting, being
// delivered or failed are never purged here (a failed one waits for an administrator:
// `parley spooler retry|purge`). Each call is one short batch inside the caller's transaction.
import { deleteTraces, purgeTraceBatch, type TracePurge } from '../observability/trace.ts';
import type { Sql } from '../storage/index.ts';

/** Deletes up to `limit` entries delivered before `before` (epoch ms), oldest first; returns the entries and trace rows deleted. */
export async function purgeDeliveredBatch(sql: Sql, before: number, limit: number): Promise<{ entries: number; traces: number }> {
  const ids = (await sql.all<{ id: string }>("SELECT id FROM spool_entries WHERE state = 'delivered' AND delivered_at < ? ORDER BY delivered_at LIMIT ?", [before, limit])).map((r) => r.id);
  let entries = 0;
  for (const id of ids) entries += (await sql.run("DELETE FROM spool_entries WHERE id = ? AND state = 'delivered'", [id])).changes;
  return { entries, traces: await deleteTraces(sql, ids) };
}

/**
 * Trace rows older than `before` that belong to no kept entry: a MESSAGE refused at the gate (no
 * entry), or an entry an administrator purged. Rows of an entry still in the spool stay.
 */
export function purgeLooseTraceBatch(sql: Sql, before: number, afterSeq: number, limit: number): Promise<TracePurge> {
  return purgeTraceBatch(sql, before, afterSeq, limit, async (traceId) => (await sql.get('SELECT 1 AS x FROM spool_entries WHERE id = ?', [traceId])) !== undefined);
}

/** When the oldest kept delivered entry was delivered, and the oldest failed one failed (epoch ms; null: none). */
export async function oldestSpoolRows(sql: Sql): Promise<{ delivered: number | null; failed: number | null }> {
  const delivered = await sql.get<{ at: number | null }>("SELECT min(delivered_at) AS at FROM spool_entries WHERE state = 'delivered'");
  const failed = await sql.get<{ at: number | null }>("SELECT min(failed_at) AS at FROM spool_entries WHERE state = 'failed'");
  return { delivered: delivered?.at ?? null, failed: failed?.at ?? null };
}
