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
