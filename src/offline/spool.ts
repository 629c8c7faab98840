// The History Spooler's repository: spool entries and their messages in SQLite. Protocol code never
// sees SQL; the pipeline (accept.ts, worker.ts) and the administration (cli.ts) call these.
//
// An entry's life:  waiting ──pickup──▶ delivering ──▶ delivered
//                      ▲                    │
//                      └──── retry later ───┤──▶ failed ──admin retry──▶ waiting
// A process that dies while an entry is `delivering` leaves it so; the next start puts it back to
// `waiting` (delivery is idempotent, so delivering again is safe).
//
// Kinds (SPOOL_KINDS): `offline` entries hold messages to a recipient who was not signed in (the
// only kind the quotas count); `unread` ones messages a signed-in recipient never displayed
// (src/history makes them); both become the recipient's Missed Conversation and the sender's copy.
// A `history` entry is one participant's record of a conversation (src/history): one
// Conversation item for its owner, stored as the entry's sender, the peer as its recipient.
// Partner organisations (issue 15): an `email` entry holds a local sender's messages to a
// partner's user who was offline: one ordinary e-mail to the partner address through outbound SMTP,
// and the sender's copy; a `note` entry a partner's messages to an offline local user: one plain
// IPM.Note in the recipient's Inbox, nothing else (the partner has no mailbox here).

import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';
import { recordTrace } from '../observability/trace.ts';
import { OfflineError } from './errors.ts';
import { QUOTA_KINDS } from './quota.ts';
import { recordRelease } from './quota-store.ts';
import { randomBase32 } from '../random-id.ts';

export const SPOOL_STATES = ['waiting', 'delivering', 'delivered', 'failed'] as const;
export type SpoolState = (typeof SPOOL_STATES)[number];
export const SPOOL_KINDS = ['offline', 'unread', 'history', 'email', 'note'] as const;
export type SpoolKind = (typeof SPOOL_KINDS)[number];
/** The kinds a message handed to the offline pipeline (OfflineHandoff.accept) becomes. */
export type MessageKind = 'offline' | 'unread' | 'email' | 'note';

export interface SpoolEntry {
  id: string;
  kind: SpoolKind;
  /** a history entry's owner; the sender of an offline or unread entry's messages */
  sender: string;
  /** a history entry's peer */
  recipient: string;
  state: SpoolState;
  createdAt: number;
  pickupAt: number;
  nextAttemptAt: number;
  expiresAt: number;
  attempts: number;
  messageCount: number;
  /** the bodies of its messages, bytes (what the quotas count) */
  bytes: number;
  lastError: string | null;
  recipientItemId: string | null;
  senderItemId: string | null;
  deliveredAt: number | null;
  failedAt: number | null;
  /** the conversation (cv-…) a history or unread entry came from */
  conversationId: string | null;
  /** sentences a history entry's transcript adds after its messages */
  notes: string[];
}

export interface SpooledMessage {
  seq: number;
  /** who sent it: a history entry holds both directions */
  sender: string;
  callId: string;
  receivedAt: number;
  contentType: string;
  body: Uint8Array;
}

/** One accepted offline MESSAGE, as the group commit hands it to the spool. */
export interface SpoolRequest {
  sender: string;
  recipient: string;
  callId: string;
  contentType: string;
  body: Uint8Array;
  receivedAt: number;
  /** the sender's OfflineImPickupDelay, ms */
  pickupDelayMs: number;
  /** the sender's OfflineImMaxAge, ms */
  maxAgeMs: number;
  /** for the trace: why the message is offline (no registration, every registration failed…) */
  why: string;
  /** for the trace: which settings let it through, `{ EnableOfflineIm: 'Global', … }` */
  gate: Record<string, string>;
  /** default offline; a message joins only a waiting entry of its own kind */
  kind?: MessageKind;
  /** when the pickup delay starts, default receivedAt (an unread message was received long before it is spooled) */
  pickupFrom?: number;
}

/** One participant's record of a conversation (src/history), as spoolHistoryEntry takes it. */
export interface HistoryEntryRequest {
  /** whose Conversation History gets the item */
  owner: string;
  /** the other participant */
  peer: string;
  /** the conversation (cv-…): the Call-ID of the entry's trace rows, so its trace is found from the conversation's */
  conversationId: string;
  /** the entry is due at once */
  createdAt: number;
  /** delivery is retried until createdAt + maxAgeMs, then the entry is failed */
  maxAgeMs: number;
  /** in order, both directions */
  messages: ReadonlyArray<{ sender: string; callId: string; receivedAt: number; contentType: string; body: Uint8Array }>;
  /** sentences the transcript shows after the messages */
  notes: readonly string[];
}

export interface SpoolReceipt {
  entryId: string;
  seq: number;
  /** true when the message joined an entry that was already waiting */
  joined: boolean;
  pickupAt: number;
}

/** `sp-` and 16 base32 characters: short enough to read out, unguessable, stable forever. */
export function newEntryId(): string {
  return `sp-${randomBase32(10)}`;
}

/**
 * Stores accepted messages. Call inside one transaction (the group commit's): a message joins the
 * waiting entry of the same sender and recipient whose pickup delay has not ended, otherwise it
 * opens a new entry. Each step goes to the trace in the same transaction.
 */
export function spoolMessages(db: Database, requests: readonly SpoolRequest[]): SpoolReceipt[] {
  const findOpen = statement(
    db,
    "SELECT id, message_count, pickup_at FROM spool_entries WHERE sender = ? AND recipient = ? AND state = 'waiting' AND attempts = 0 AND pickup_at > ? AND kind = ? ORDER BY created_at DESC LIMIT 1",
  );
  const insertEntry = statement(
    db,
    "INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, bytes) VALUES (?, ?, ?, ?, 'waiting', ?, ?, ?, ?, 1, ?)",
  );
  const bump = statement(db, 'UPDATE spool_entries SET message_count = ?, bytes = bytes + ? WHERE id = ?');
  const insertMessage = statement(db, 'INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body) VALUES (?, ?, ?, ?, ?, ?)');
  return requests.map((r) => {
    const kind = r.kind ?? 'offline';
    const from = r.pickupFrom ?? r.receivedAt;
    const open = findOpen.get(r.sender, r.recipient, from, kind) as { id: string; message_count: number; pickup_at: number } | undefined;
    let receipt: SpoolReceipt;
    if (open !== undefined) {
      receipt = { entryId: open.id, seq: open.message_count + 1, joined: true, pickupAt: open.pickup_at };
      bump.run(receipt.seq, r.body.byteLength, open.id);
    } else {
      const id = newEntryId();
      const pickupAt = from + r.pickupDelayMs;
      insertEntry.run(id, kind, r.sender, r.recipient, from, pickupAt, pickupAt, from + r.maxAgeMs, r.body.byteLength);
      receipt = { entryId: id, seq: 1, joined: false, pickupAt };
    }
    insertMessage.run(receipt.entryId, receipt.seq, r.callId, r.receivedAt, r.contentType, r.body);
    const step = (name: string, detail: Record<string, unknown>) => recordTrace(db, { traceId: receipt.entryId, callId: r.callId, at: r.receivedAt, step: name, detail });
    step('received', { from: r.sender, to: r.recipient, why: r.why, ...(kind === 'offline' ? {} : { kind }) });
    step('gated', { decision: 'accepted', ...r.gate });
    recordTrace(db, {
      traceId: receipt.entryId,
      callId: r.callId,
      at: r.receivedAt,
      step: 'spooled',
      detail: { from: r.sender, to: r.recipient, ...(kind === 'offline' ? {} : { kind }), message: receipt.seq, joined: receipt.joined, pickupAt: new Date(receipt.pickupAt).toISOString(), bytes: r.body.byteLength },
    });
    return receipt;
  });
}

/**
 * Stores one participant's record of a conversation as a `history` entry, due at once (call inside
 * the transaction that closes the conversation, so it is made once). Returns the entry id.
 */
export function spoolHistoryEntry(db: Database, r: HistoryEntryRequest): string {
  const id = newEntryId();
  const bytes = r.messages.reduce((sum, m) => sum + m.body.byteLength, 0);
  statement(
    db,
    "INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, bytes, conversation_id, notes) VALUES (?, 'history', ?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?)",
  ).run(id, r.owner, r.peer, r.createdAt, r.createdAt, r.createdAt, r.createdAt + r.maxAgeMs, r.messages.length, bytes, r.conversationId, JSON.stringify(r.notes));
  const insertMessage = statement(db, 'INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body, sender) VALUES (?, ?, ?, ?, ?, ?, ?)');
  r.messages.forEach((m, i) => insertMessage.run(id, i + 1, m.callId, m.receivedAt, m.contentType, m.body, m.sender));
  recordTrace(db, {
    traceId: id,
    callId: r.conversationId,
    at: r.createdAt,
    step: 'spooled',
    detail: { kind: 'history', owner: r.owner, peer: r.peer, conversation: r.conversationId, messages: r.messages.length, bytes },
  });
  return id;
}

/** Moves up to `limit` due entries to `delivering` and returns them (one transaction: call inside one). */
export function claimDue(db: Database, now: number, limit: number): SpoolEntry[] {
  const rows = db
    .prepare("SELECT * FROM spool_entries WHERE state = 'waiting' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?")
    .all(now, limit) as unknown as EntryRow[];
  const mark = db.prepare("UPDATE spool_entries SET state = 'delivering', attempts = attempts + 1 WHERE id = ? AND state = 'waiting'");
  return rows.map((row) => {
    mark.run(row.id);
    return { ...toEntry(row), state: 'delivering', attempts: row.attempts + 1 };
  });
}

/** When the next waiting entry falls due, or undefined when none waits. */
export function nextDueAt(db: Database): number | undefined {
  const row = statement(db, "SELECT MIN(next_attempt_at) AS due FROM spool_entries WHERE state = 'waiting'").get() as { due: number | null };
  return row.due ?? undefined;
}

export function entryMessages(db: Database, entryId: string): SpooledMessage[] {
  const rows = db
    .prepare(
      'SELECT m.seq, coalesce(m.sender, e.sender) AS sender, m.call_id, m.received_at, m.content_type, m.body FROM spool_messages m JOIN spool_entries e ON e.id = m.entry_id WHERE m.entry_id = ? ORDER BY m.seq',
    )
    .all(entryId) as Array<{ seq: number; sender: string; call_id: string; received_at: number; content_type: string; body: Uint8Array }>;
  return rows.map((r) => ({ seq: r.seq, sender: r.sender, callId: r.call_id, receivedAt: r.received_at, contentType: r.content_type, body: r.body }));
}

export function recordItemIds(db: Database, entryId: string, ids: { recipientItemId?: string; senderItemId?: string }): void {
  if (ids.recipientItemId !== undefined) db.prepare('UPDATE spool_entries SET recipient_item_id = ? WHERE id = ?').run(ids.recipientItemId, entryId);
  if (ids.senderItemId !== undefined) db.prepare('UPDATE spool_entries SET sender_item_id = ? WHERE id = ?').run(ids.senderItemId, entryId);
}

export function markDelivered(db: Database, entryId: string, now: number): void {
  db.prepare("UPDATE spool_entries SET state = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ?").run(now, entryId);
}

export function scheduleRetry(db: Database, entryId: string, at: number, reason: string): void {
  db.prepare("UPDATE spool_entries SET state = 'waiting', next_attempt_at = ?, last_error = ? WHERE id = ?").run(at, reason, entryId);
}

export function markFailed(db: Database, entryId: string, now: number, reason: string): void {
  db.prepare("UPDATE spool_entries SET state = 'failed', failed_at = ?, last_error = ? WHERE id = ?").run(now, reason, entryId);
}

/** After a crash: entries left `delivering` go back to `waiting`, due now. Returns their ids. */
export function recoverInterrupted(db: Database, now: number): string[] {
  const rows = db.prepare("SELECT id FROM spool_entries WHERE state = 'delivering'").all() as Array<{ id: string }>;
  db.prepare("UPDATE spool_entries SET state = 'waiting', next_attempt_at = ? WHERE state = 'delivering'").run(now);
  return rows.map((r) => r.id);
}

// ---- administration ---------------------------------------------------------------------------

export interface EntryFilter {
  /** sender or recipient */
  user?: string;
  state?: SpoolState;
  limit?: number;
}

export function listEntries(db: Database, filter: EntryFilter = {}): SpoolEntry[] {
  const where: string[] = [];
  const args: Array<string | number> = [];
  if (filter.user !== undefined) {
    where.push('(sender = ? OR recipient = ?)');
    args.push(filter.user, filter.user);
  }
  if (filter.state !== undefined) {
    if (!(SPOOL_STATES as readonly string[]).includes(filter.state)) throw new OfflineError('BAD_REQUEST', `state must be one of ${SPOOL_STATES.join(', ')}, not ${filter.state}`);
    where.push('state = ?');
    args.push(filter.state);
  }
  args.push(filter.limit ?? 1000);
  const sql = `SELECT * FROM spool_entries ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`;
  return (db.prepare(sql).all(...args) as unknown as EntryRow[]).map(toEntry);
}

export function getEntry(db: Database, id: string): SpoolEntry {
  const row = db.prepare('SELECT * FROM spool_entries WHERE id = ?').get(id) as EntryRow | undefined;
  if (row === undefined) throw new OfflineError('ENTRY_NOT_FOUND', `there is no spool entry ${id}; parley spooler list shows the entries`);
  return toEntry(row);
}

/**
 * A failed entry is tried again now, with a fresh OfflineImMaxAge window (`maxAgeMs`). Entries
 * waiting for a retry are moved forward too; delivered and delivering ones are refused.
 */
export function retryEntry(db: Database, id: string, now: number, maxAgeMs: number): SpoolEntry {
  const entry = getEntry(db, id);
  if (entry.state === 'delivered' || entry.state === 'delivering') {
    throw new OfflineError('ENTRY_STATE', `spool entry ${id} is ${entry.state}; only failed or waiting entries can be retried`);
  }
  db.prepare("UPDATE spool_entries SET state = 'waiting', next_attempt_at = ?, expires_at = MAX(expires_at, ?), failed_at = NULL WHERE id = ?").run(now, now + maxAgeMs, id);
  recordTrace(db, { traceId: id, callId: null, at: now, step: 'retry-requested', detail: { previousState: entry.state, lastError: entry.lastError } });
  return getEntry(db, id);
}

/**
 * Deletes one entry and its messages. An undelivered one only with `force`: that drops messages,
 * and what they held of the quotas is given back (recordRelease: the server may be another process).
 */
export function purgeEntry(db: Database, id: string, now: number, force = false): void {
  const entry = getEntry(db, id);
  if (entry.state === 'delivering') throw new OfflineError('ENTRY_STATE', `spool entry ${id} is being delivered right now; try again in a moment`);
  if (entry.state === 'waiting' && !force) {
    throw new OfflineError('ENTRY_STATE', `spool entry ${id} is still waiting for delivery; purging it drops ${entry.messageCount} message(s): add --force if that is what you want`);
  }
  db.prepare('DELETE FROM spool_entries WHERE id = ?').run(id);
  if (entry.state !== 'delivered' && QUOTA_KINDS.includes(entry.kind)) recordRelease(db, { sender: entry.sender, recipient: entry.recipient, messages: entry.messageCount, bytes: entry.bytes });
  recordTrace(db, { traceId: id, callId: null, at: now, step: 'purged', detail: { kind: entry.kind, state: entry.state, messages: entry.messageCount, bytes: entry.bytes } });
}

/** Deletes delivered entries delivered before `before`; returns how many. */
export function purgeDelivered(db: Database, before: number): number {
  const result = db.prepare("DELETE FROM spool_entries WHERE state = 'delivered' AND delivered_at < ?").run(before);
  return Number(result.changes);
}

interface EntryRow {
  id: string;
  kind: SpoolKind;
  conversation_id: string | null;
  notes: string | null;
  sender: string;
  recipient: string;
  state: SpoolState;
  created_at: number;
  pickup_at: number;
  next_attempt_at: number;
  expires_at: number;
  attempts: number;
  message_count: number;
  bytes: number;
  last_error: string | null;
  recipient_item_id: string | null;
  sender_item_id: string | null;
  delivered_at: number | null;
  failed_at: number | null;
}

function toEntry(r: EntryRow): SpoolEntry {
  return {
    id: r.id,
    kind: r.kind,
    sender: r.sender,
    recipient: r.recipient,
    state: r.state,
    createdAt: r.created_at,
    pickupAt: r.pickup_at,
    nextAttemptAt: r.next_attempt_at,
    expiresAt: r.expires_at,
    attempts: r.attempts,
    messageCount: r.message_count,
    bytes: r.bytes,
    lastError: r.last_error,
    recipientItemId: r.recipient_item_id,
    senderItemId: r.sender_item_id,
    deliveredAt: r.delivered_at,
    failedAt: r.failed_at,
    conversationId: r.conversation_id,
    notes: notesOf(r.notes),
  };
}

/** A history entry's notes; anything but a JSON array of strings (a hand-edited row) reads as none. */
function notesOf(text: string | null): string[] {
  if (text === null) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Entries per state and when the oldest waiting one was created (null: none waits), for /metrics.
 * The count runs over the (state, next_attempt_at) index; a scrape, not a request path.
 */
export function spoolCounts(db: Database): { byState: Record<SpoolState, number>; oldestWaitingCreatedAt: number | null } {
  const byState = Object.fromEntries(SPOOL_STATES.map((s) => [s, 0])) as Record<SpoolState, number>;
  const rows = statement(db, 'SELECT state, COUNT(*) AS n FROM spool_entries GROUP BY state').all() as Array<{ state: SpoolState; n: number }>;
  for (const r of rows) byState[r.state] = r.n;
  const oldest = statement(db, "SELECT MIN(created_at) AS at FROM spool_entries WHERE state = 'waiting'").get() as { at: number | null };
  return { byState, oldestWaitingCreatedAt: oldest.at };
}
