// The outbound queue (mail_outbox): what Parley owes other organisations' mail servers. An entry is
// waiting until sent; a temporary failure schedules a retry with exponential back-off; a permanent
// failure (5xx) or an entry older than the maximum age is failed and kept with its reason.
// An entry may carry a delivery key: queueing with a key that is already queued returns the earlier
// entry (the offline spool's e-mails to partners are queued exactly once, even when a delivery is
// repeated after a crash), and a trace id: its sends are recorded in that trace.
import { recordTrace } from '../../observability/trace.ts';
import type { Database, Sql } from '../../storage/index.ts';
import { sqliteSql, statement, transaction } from '../../storage/index.ts';
import { newId } from '../ids.ts';
import type { Mailer } from '../items.ts';

export interface OutboundMessage {
  from: Mailer;
  to: Mailer[];
  cc: Mailer[];
  subject: string;
  html: string | null;
  text: string | null;
  messageId: string;
  date: number;
}

export interface OutboxEntry {
  id: string;
  sender: string;
  /** the envelope recipients (RCPT TO), all outside the organisation */
  recipients: string[];
  message: OutboundMessage;
  state: 'waiting' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  /** the idempotence key it was queued with, or null */
  deliveryKey: string | null;
  /** the trace (a spool entry id) its attempts are recorded in, or null */
  traceId: string | null;
}

/** What makes queueing idempotent and traced (both optional). */
export interface OutboundOrigin {
  deliveryKey?: string;
  traceId?: string;
}

interface Row {
  id: string;
  sender: string;
  recipients_json: string;
  message_json: string;
  state: OutboxEntry['state'];
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  delivery_key: string | null;
  trace_id: string | null;
}

const entryOf = (r: Row): OutboxEntry => ({
  id: r.id,
  sender: r.sender,
  recipients: JSON.parse(r.recipients_json) as string[],
  message: JSON.parse(r.message_json) as OutboundMessage,
  state: r.state,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  createdAt: r.created_at,
  deliveryKey: r.delivery_key,
  traceId: r.trace_id,
});

export async function enqueueOutbound(sql: Sql, sender: string, recipients: string[], message: OutboundMessage, now: number, origin: OutboundOrigin = {}): Promise<string> {
  const id = newId();
  await sql.run('INSERT INTO mail_outbox (id, sender, recipients_json, message_json, state, attempts, next_attempt_at, last_error, created_at, updated_at, delivery_key, trace_id) VALUES (?, ?, ?, ?, ?, 0, ?, NULL, ?, ?, ?, ?)', [
    id, sender, JSON.stringify(recipients), JSON.stringify(message), 'waiting', now, now, now, origin.deliveryKey ?? null, origin.traceId ?? null,
  ]);
  return id;
}

/**
 * Queues the message once per delivery key: returns the entry queued earlier with `key` (created
 * false), or queues it now. One transaction: two calls with one key never both queue.
 */
export async function enqueueOutboundOnce(db: Database, key: string, sender: string, recipients: string[], message: OutboundMessage, now: number, traceId?: string): Promise<{ id: string; created: boolean }> {
  // transitional (issue 16): the trace is still written through the node:sqlite connection, inside the same transaction
  return sqliteSql(db).transaction(async (tx) => {
    const earlier = statement(db, 'SELECT id FROM mail_outbox WHERE delivery_key = ?').get(key) as { id: string } | undefined;
    if (earlier !== undefined) return { id: earlier.id, created: false };
    const id = await enqueueOutbound(tx, sender, recipients, message, now, { deliveryKey: key, ...(traceId !== undefined ? { traceId } : {}) });
    if (traceId !== undefined) recordTrace(db, { traceId, callId: null, at: now, step: 'mail-queued', detail: { outbox: id, to: recipients, messageId: message.messageId } });
    return { id, created: true };
  });
}

/** Waiting entries whose time has come, oldest first. */
export function dueOutbound(db: Database, now: number, max = 20): OutboxEntry[] {
  return (db.prepare("SELECT * FROM mail_outbox WHERE state = 'waiting' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at LIMIT ?").all(now, max) as unknown as Row[]).map(entryOf);
}

export function getOutbound(db: Database, id: string): OutboxEntry | undefined {
  const row = db.prepare('SELECT * FROM mail_outbox WHERE id = ?').get(id) as Row | undefined;
  return row === undefined ? undefined : entryOf(row);
}

export function markOutboundSent(db: Database, id: string, now: number): void {
  db.prepare("UPDATE mail_outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE id = ?").run(now, id);
}

/** Records a step of an entry's sending in its trace, when it has one (an e-mail the offline spool queued). */
export function traceOutbound(db: Database, entry: Pick<OutboxEntry, 'id' | 'traceId'>, now: number, step: string, detail: Record<string, unknown>): void {
  if (entry.traceId === null) return;
  recordTrace(db, { traceId: entry.traceId, callId: null, at: now, step, detail: { outbox: entry.id, ...detail } });
}

/** A failed attempt: retried after `retryAt`, or failed for good when `permanent` or past `maxAgeMs`. */
export function markOutboundAttemptFailed(db: Database, id: string, error: string, permanent: boolean, now: number, retryAt: number, maxAgeMs: number): OutboxEntry['state'] {
  return transaction(db, () => {
    const entry = getOutbound(db, id);
    if (entry === undefined) return 'failed';
    const state = permanent || now - entry.createdAt >= maxAgeMs ? 'failed' : 'waiting';
    db.prepare('UPDATE mail_outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?').run(state, retryAt, error, now, id);
    return state;
  });
}
