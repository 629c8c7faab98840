// The trace: every step of an offline message (received, gated, spooled, picked up, delivered,
// retried, failed) recorded under one id — the spool entry id — and linked to the SIP Call-ID, so
// `parley trace <id>` tells an administrator what happened without reading the whole log. It is
// what the seed's ETL client log was for, kept in the server.
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';
import type { MigrationSet } from '../storage/index.ts';

export const TRACE_MIGRATIONS: MigrationSet = {
  capability: 'trace',
  migrations: [
    {
      id: '001-trace-events',
      up: `
CREATE TABLE trace_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  -- the spool entry id; null for a message that never got one (refused at the gate)
  trace_id TEXT,
  call_id TEXT,
  at INTEGER NOT NULL,
  step TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX trace_events_trace_id ON trace_events (trace_id);
CREATE INDEX trace_events_call_id ON trace_events (call_id);
`,
    },
  ],
};

export interface TraceEvent {
  traceId: string | null;
  callId: string | null;
  at: number;
  step: string;
  detail: Record<string, unknown>;
}

/** Appends one step. Call it inside the transaction that makes the step true, so both or neither persist. */
export function recordTrace(db: Database, event: TraceEvent): void {
  statement(db, 'INSERT INTO trace_events (trace_id, call_id, at, step, detail) VALUES (?, ?, ?, ?, ?)').run(
    event.traceId,
    event.callId,
    event.at,
    event.step,
    JSON.stringify(event.detail),
  );
}

/**
 * The steps recorded under `id`, oldest first. `id` may be a trace id (spool entry id) or a SIP
 * Call-ID: a Call-ID also brings in every step of the trace ids it was recorded with.
 */
export function readTrace(db: Database, id: string): TraceEvent[] {
  const rows = db
    .prepare(
      `SELECT trace_id, call_id, at, step, detail FROM trace_events
       WHERE trace_id = ?1 OR call_id = ?1
          OR trace_id IN (SELECT trace_id FROM trace_events WHERE call_id = ?1 AND trace_id IS NOT NULL)
       ORDER BY seq`,
    )
    .all(id) as Array<{ trace_id: string | null; call_id: string | null; at: number; step: string; detail: string }>;
  return rows.map((r) => ({ traceId: r.trace_id, callId: r.call_id, at: r.at, step: r.step, detail: JSON.parse(r.detail) as Record<string, unknown> }));
}

/** What one batch of the trace purge did: rows deleted, the last row looked at, and whether rows remain. */
export interface TracePurge {
  deleted: number;
  lastSeq: number;
  more: boolean;
}

/**
 * Deletes trace rows recorded before `before` (epoch ms), looking at no more than `limit` rows after
 * `afterSeq`, except those whose trace id `keep` names (an entry still waiting or failed: its
 * story stays with it). Rows are looked at in order, so a run walks the table once, batch by batch.
 */
export function purgeTraceBatch(db: Database, before: number, afterSeq: number, limit: number, keep: (traceId: string) => boolean): TracePurge {
  const rows = statement(db, 'SELECT seq, trace_id, at FROM trace_events WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as Array<{ seq: number; trace_id: string | null; at: number }>;
  const remove = statement(db, 'DELETE FROM trace_events WHERE seq = ?');
  let deleted = 0;
  let lastSeq = afterSeq;
  for (const row of rows) {
    // seq follows time: the first row recorded after the cutoff ends the run
    if (row.at >= before) return { deleted, lastSeq, more: false };
    lastSeq = row.seq;
    if (row.trace_id !== null && keep(row.trace_id)) continue;
    remove.run(row.seq);
    deleted++;
  }
  return { deleted, lastSeq, more: rows.length === limit };
}

/** Deletes every trace row of these trace ids (purged spool entries); returns how many. */
export function deleteTraces(db: Database, traceIds: readonly string[]): number {
  const remove = statement(db, 'DELETE FROM trace_events WHERE trace_id = ?');
  let deleted = 0;
  for (const id of traceIds) deleted += Number(remove.run(id).changes);
  return deleted;
}

/** When the oldest trace row was recorded (epoch ms), null when there is none. */
export function oldestTrace(db: Database): number | null {
  const row = statement(db, 'SELECT at FROM trace_events ORDER BY seq LIMIT 1').get() as { at: number } | undefined;
  return row?.at ?? null;
}
