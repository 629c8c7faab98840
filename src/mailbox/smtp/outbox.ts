// The outbound queue (mail_outbox): what Parley owes other organisations' mail servers. An entry is
// waiting until sent; a temporary failure schedules a retry with exponential back-off; a permanent
// failure (5xx) or an entry older than the maximum age is failed and kept with its reason.
// An entry may carry a delivery key: queueing with a key that is already queued returns the earlier
// entry (the offline spool's e-mails to partners are queued exactly once, even when a delivery is
// repeated after a crash), and a trace id: its sends are recorded in that trace.
//
// Sending (SmtpOutbound) leases the due entries first: one statement moves their next attempt to
// the end of the lease and returns them, so that of several workers (the nodes of a cluster) each
// entry goes to one; a worker that dies mid-send leaves an entry that is due again when its lease
// ends (never lost). The lease's end is the lease's token: marking an entry sent or failed names
// it, so a worker whose lease ran out and was taken by another changes nothing.
import { ParleyError } from '../../errors.ts';
import type { Sql, SqlValue } from '../../storage/index.ts';
import { newId } from '../ids.ts';
import type { Mailer } from '../items.ts';
import { recordTrace } from '../../observability/trace.ts';

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

/** An entry leased for one attempt (leaseDueOutbound): `leaseUntil` is its next_attempt_at while leased. */
export interface LeasedEntry extends OutboxEntry {
  leaseUntil: number;
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
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  lastError: r.last_error,
  createdAt: Number(r.created_at),
  deliveryKey: r.delivery_key,
  traceId: r.trace_id,
});

const COLUMNS = 'id, sender, recipients_json, message_json, state, attempts, next_attempt_at, last_error, created_at, delivery_key, trace_id';

/** The INSERT of a new entry (enqueueOutbound; enqueueOutboundOnce adds its ON CONFLICT). */
function insertEntry(sender: string, recipients: readonly string[], message: OutboundMessage, now: number, origin: OutboundOrigin = {}): { id: string; text: string; params: SqlValue[] } {
  const id = newId();
  return {
    id,
    text: 'INSERT INTO mail_outbox (id, sender, recipients_json, message_json, state, attempts, next_attempt_at, last_error, created_at, updated_at, delivery_key, trace_id) VALUES (?, ?, ?, ?, \'waiting\', 0, ?, NULL, ?, ?, ?, ?)',
    params: [id, sender, JSON.stringify(recipients), JSON.stringify(message), now, now, now, origin.deliveryKey ?? null, origin.traceId ?? null],
  };
}

export async function enqueueOutbound(sql: Sql, sender: string, recipients: readonly string[], message: OutboundMessage, now: number, origin: OutboundOrigin = {}): Promise<string> {
  const entry = insertEntry(sender, recipients, message, now, origin);
  await sql.run(entry.text, entry.params);
  return entry.id;
}

/**
 * Queues the message once per delivery key: returns the entry queued earlier with `key` (created
 * false), or queues it now. The unique delivery key decides: two calls with one key never both
 * queue, on either engine, even from two nodes at once.
 */
export async function enqueueOutboundOnce(sql: Sql, key: string, sender: string, recipients: readonly string[], message: OutboundMessage, now: number, traceId?: string): Promise<{ id: string; created: boolean }> {
  return sql.transaction(async (tx) => {
    const entry = insertEntry(sender, recipients, message, now, { deliveryKey: key, ...(traceId !== undefined ? { traceId } : {}) });
    const inserted = await tx.get<{ id: string }>(`${entry.text} ON CONFLICT (delivery_key) WHERE delivery_key IS NOT NULL DO NOTHING RETURNING id`, entry.params);
    if (inserted === undefined) {
      const earlier = await tx.get<{ id: string }>('SELECT id FROM mail_outbox WHERE delivery_key = ?', [key]);
      // removed between the two statements (retention of sent entries): the caller's retry queues it anew
      if (earlier === undefined) throw new ParleyError('OUTBOX_ENTRY_VANISHED', `the outbox entry with delivery key ${key} was removed while being queued again; retry the delivery`);
      return { id: earlier.id, created: false };
    }
    if (traceId !== undefined) await recordTrace(tx, { traceId, callId: null, at: now, step: 'mail-queued', detail: { outbox: entry.id, to: recipients, messageId: message.messageId } });
    return { id: entry.id, created: true };
  });
}

/** Waiting entries whose time has come, oldest first (to look at; SmtpOutbound leases them instead). */
export async function dueOutbound(sql: Sql, now: number, max = 20): Promise<OutboxEntry[]> {
  const rows = await sql.all<Row>(`SELECT ${COLUMNS} FROM mail_outbox WHERE state = 'waiting' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at LIMIT ?`, [now, max]);
  return rows.map(entryOf);
}

/**
 * Leases up to `max` due entries until `now + leaseMs`, oldest first: no other worker takes them
 * before the lease ends. One statement; on PostgreSQL the rows are locked as they are chosen and
 * rows another worker is leasing are skipped (read committed: the statement sees their leases
 * once committed, and never waits behind them).
 */
export async function leaseDueOutbound(sql: Sql, now: number, leaseMs: number, max = 20): Promise<LeasedEntry[]> {
  const leaseUntil = now + leaseMs;
  const lock = sql.engine === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
  const rows = await sql.transaction(
    (tx) => tx.all<Row>(
      `UPDATE mail_outbox SET next_attempt_at = ?, updated_at = ? WHERE id IN (SELECT id FROM mail_outbox WHERE state = 'waiting' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at LIMIT ?${lock}) RETURNING ${COLUMNS}`,
      [leaseUntil, now, now, max],
    ),
    { isolation: 'read committed' },
  );
  // RETURNING keeps no order: oldest first, as they were chosen
  return rows.map((r) => ({ ...entryOf(r), leaseUntil })).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

export async function getOutbound(sql: Sql, id: string): Promise<OutboxEntry | undefined> {
  const row = await sql.get<Row>(`SELECT ${COLUMNS} FROM mail_outbox WHERE id = ?`, [id]);
  return row === undefined ? undefined : entryOf(row);
}

/** The leased entry was sent; false (nothing changed) when its lease was lost to another worker. */
export async function markOutboundSent(sql: Sql, entry: Pick<LeasedEntry, 'id' | 'leaseUntil'>, now: number): Promise<boolean> {
  const done = await sql.run("UPDATE mail_outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE id = ? AND state = 'waiting' AND next_attempt_at = ?", [now, entry.id, entry.leaseUntil]);
  return done.changes > 0;
}

/** Records a step of an entry's sending in its trace, when it has one (an e-mail the offline spool queued). */
export async function traceOutbound(sql: Sql, entry: Pick<OutboxEntry, 'id' | 'traceId'>, now: number, step: string, detail: Record<string, unknown>): Promise<void> {
  if (entry.traceId === null) return;
  await recordTrace(sql, { traceId: entry.traceId, callId: null, at: now, step, detail: { outbox: entry.id, ...detail } });
}

/**
 * A failed attempt of a leased entry: retried after `retryAt`, or failed for good when
 * `permanent` or past `maxAgeMs`. Undefined (nothing changed) when the lease was lost.
 */
export async function markOutboundAttemptFailed(sql: Sql, entry: Pick<LeasedEntry, 'id' | 'leaseUntil' | 'createdAt'>, error: string, permanent: boolean, now: number, retryAt: number, maxAgeMs: number): Promise<OutboxEntry['state'] | undefined> {
  const state = permanent || now - entry.createdAt >= maxAgeMs ? 'failed' : 'waiting';
  const done = await sql.run("UPDATE mail_outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ? AND state = 'waiting' AND next_attempt_at = ?", [state, retryAt, error, now, entry.id, entry.leaseUntil]);
  return done.changes > 0 ? state : undefined;
}
