// The History Spooler's repository: spool entries and their messages in SQLite. Protocol code never
// sees SQL; the pipeline (accept.ts, worker.ts) and the administration (cli.ts) call these.
//
// An entry's life:  waiting ──pickup──▶ delivering ──▶ delivered
//                      ▲                    │
//                      └──── retry later ───┤──▶ failed ──admin retry──▶ waiting
// A worker takes an entry with a lease (lease_owner, lease_until): an entry is delivered by the one
// worker that holds it, and one whose worker died while delivering is taken again by any worker once
// the lease has ended (on SQLite, where one process owns the file, at once on the next start).
// Delivery is idempotent (the entry id keys the items), so delivering again is safe; an outcome is
// recorded only by the worker still holding the lease.
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

import type { Sql, SqlValue } from '../storage/index.ts';
import { insertRows } from '../storage/index.ts';
import type { TraceEvent } from '../observability/trace.ts';
import { recordTrace, recordTraces } from '../observability/trace.ts';
import { OfflineError } from './errors.ts';
import { QUOTA_KINDS } from './quota.ts';
import { recordRelease } from './quota-store.ts';
import { randomBytes } from 'node:crypto';

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

/**
 * `sp-` and 16 base32 characters: short enough to read out, stable forever. The first 9 are the
 * creation time (ms) in digits that sort in time order, the other 7 random (35 bits): ids made
 * one after another sort together, so a batch's new entries go into the same few pages of every
 * index keyed by the id (the entries', their messages', the trace's) instead of one page each
 * anywhere in them, which halves the pages a batch writes (and its WAL frames and checkpoints).
 * Not guessable from another id (35 random bits); they are handles for the administrator and
 * the mailbox items' Message-IDs, never a capability. Two ids of one thread made in the same
 * millisecond differ (the random part counts up), so only ids of two threads or nodes in the same
 * millisecond can collide, 1 in 2^35 (a collision fails that batch: its senders get a 500).
 */
export function newEntryId(now: number = Date.now()): string {
  const ms = Math.max(Math.trunc(now), 0);
  if (ms === lastIdMs) idRandom = (idRandom + 1) % RANDOM_RANGE;
  else {
    lastIdMs = ms;
    idRandom = randomPart();
  }
  return `sp-${sortable(ms, 9)}${sortable(idRandom, 7)}`;
}

/** The base32 digits in the order their characters sort (ASCII: 2-7 before a-z). */
const SORTED_DIGITS = '234567abcdefghijklmnopqrstuvwxyz';
const RANDOM_RANGE = 2 ** 35;
let lastIdMs = -1;
let idRandom = 0;
/** random bytes drawn 5 at a time from a pool: one call to the system's source per 819 ids */
let pool = Buffer.alloc(0);
let poolAt = 0;

function randomPart(): number {
  if (poolAt + 5 > pool.length) {
    pool = randomBytes(4095);
    poolAt = 0;
  }
  const value = pool.readUIntBE(poolAt, 5) % RANDOM_RANGE;
  poolAt += 5;
  return value;
}

/** `value` in `width` base32 digits, most significant first, that sort as the numbers do. */
function sortable(value: number, width: number): string {
  let out = '';
  for (let i = width - 1; i >= 0; i--) out += SORTED_DIGITS[Math.floor(value / 32 ** i) % 32];
  return out;
}

/**
 * Stores accepted messages. Call inside one transaction (the group commit's): a message joins the
 * waiting entry of the same sender and recipient whose pickup delay has not ended, otherwise it
 * opens a new entry. Each step goes to the trace in the same transaction.
 *
 * The batch's open entries are read first, one SELECT per pair, all at once (on PostgreSQL one
 * round trip, not one per message); which entry each message joins, or that it opens one (which
 * later messages of the batch may join), is decided from them in order. Then every write is
 * issued without waiting (pipelined on PostgreSQL): an entry's INSERT or UPDATE per message, and
 * the messages' rows and trace rows many to a statement (insertRows): a message costs about one
 * statement, not six.
 */
export async function spoolMessages(sql: Sql, requests: readonly SpoolRequest[]): Promise<SpoolReceipt[]> {
  const receipts: SpoolReceipt[] = [];
  const messages: SqlValue[][] = [];
  const steps: TraceEvent[] = [];
  const writes: Array<Promise<unknown>> = [];
  // not awaited one by one: issued in order, and on PostgreSQL pipelined
  const write = (p: Promise<unknown>): void => {
    // a failure is thrown by the Promise.all below, not reported as unhandled meanwhile
    p.catch(() => undefined);
    writes.push(p);
  };
  const open = await openEntries(sql, requests);
  for (const r of requests) {
    const kind = r.kind ?? 'offline';
    const from = r.pickupFrom ?? r.receivedAt;
    const candidates = open.get(pairKey(r.sender, r.recipient, kind)) ?? [];
    // the newest entry of the pair whose pickup delay has not ended when this message came
    const joinable = candidates.find((c) => c.pickup_at > from);
    let receipt: SpoolReceipt;
    if (joinable !== undefined) {
      joinable.message_count++;
      receipt = { entryId: joinable.id, seq: joinable.message_count, joined: true, pickupAt: joinable.pickup_at };
      write(sql.run('UPDATE spool_entries SET message_count = ?, bytes = bytes + ? WHERE id = ?', [receipt.seq, r.body.byteLength, joinable.id]));
    } else {
      const id = newEntryId();
      const pickupAt = from + r.pickupDelayMs;
      write(
        sql.run(
          "INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, bytes) VALUES (?, ?, ?, ?, 'waiting', ?, ?, ?, ?, 1, ?)",
          [id, kind, r.sender, r.recipient, from, pickupAt, pickupAt, from + r.maxAgeMs, r.body.byteLength],
        ),
      );
      receipt = { entryId: id, seq: 1, joined: false, pickupAt };
      // later messages of the batch may join it: kept among the pair's entries, newest first
      const made: OpenEntry = { id, message_count: 1, pickup_at: pickupAt, created_at: from };
      const before = candidates.findIndex((c) => c.created_at <= from);
      candidates.splice(before === -1 ? candidates.length : before, 0, made);
      open.set(pairKey(r.sender, r.recipient, kind), candidates);
    }
    messages.push([receipt.entryId, receipt.seq, r.callId, r.receivedAt, r.contentType, r.body]);
    const step = (name: string, detail: Record<string, unknown>): TraceEvent => ({ traceId: receipt.entryId, callId: r.callId, at: r.receivedAt, step: name, detail });
    steps.push(
      step('received', { from: r.sender, to: r.recipient, why: r.why, ...(kind === 'offline' ? {} : { kind }) }),
      step('gated', { decision: 'accepted', ...r.gate }),
      step('spooled', { from: r.sender, to: r.recipient, ...(kind === 'offline' ? {} : { kind }), message: receipt.seq, joined: receipt.joined, pickupAt: new Date(receipt.pickupAt).toISOString(), bytes: r.body.byteLength }),
    );
    receipts.push(receipt);
  }
  write(insertRows(sql, 'INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body)', messages));
  write(recordTraces(sql, steps));
  await Promise.all(writes);
  return receipts;
}

interface OpenEntry {
  id: string;
  message_count: number;
  pickup_at: number;
  created_at: number;
}

const pairKey = (sender: string, recipient: string, kind: string): string => `${kind} ${sender} ${recipient}`;
/**
 * The waiting entries messages of `requests` may join (same sender, recipient and kind, not
 * picked up, pickup delay not ended when the pair's earliest message of the batch came), per
 * pair, newest first. One SELECT per pair, all issued at once (pipelined on PostgreSQL, one round
 * trip): each searches spool_entries_open. (One statement for many pairs, a row-value IN or ORed
 * pairs, lets the planners guess wrong: SQLite past a few ORed pairs, PostgreSQL without fresh
 * statistics, scan every waiting entry instead.)
 */
async function openEntries(sql: Sql, requests: readonly SpoolRequest[]): Promise<Map<string, OpenEntry[]>> {
  const pairs = new Map<string, { sender: string; recipient: string; kind: string; from: number }>();
  for (const r of requests) {
    const kind = r.kind ?? 'offline';
    const from = r.pickupFrom ?? r.receivedAt;
    const key = pairKey(r.sender, r.recipient, kind);
    const pair = pairs.get(key);
    if (pair === undefined) pairs.set(key, { sender: r.sender, recipient: r.recipient, kind, from });
    else pair.from = Math.min(pair.from, from);
  }
  const keys = [...pairs.keys()];
  const found = await Promise.all(
    [...pairs.values()].map((p) =>
      sql.all<{ id: string; message_count: number; pickup_at: number; created_at: number }>(
        "SELECT id, message_count, pickup_at, created_at FROM spool_entries WHERE sender = ? AND recipient = ? AND state = 'waiting' AND attempts = 0 AND pickup_at > ? AND kind = ? ORDER BY created_at DESC",
        [p.sender, p.recipient, p.from, p.kind],
      ),
    ),
  );
  const open = new Map<string, OpenEntry[]>();
  found.forEach((rows, i) => {
    if (rows.length > 0) open.set(keys[i] as string, rows.map((row) => ({ id: row.id, message_count: Number(row.message_count), pickup_at: Number(row.pickup_at), created_at: Number(row.created_at) })));
  });
  return open;
}

/**
 * Stores one participant's record of a conversation as a `history` entry, due at once (call inside
 * the transaction that closes the conversation, so it is made once). Returns the entry id.
 */
export async function spoolHistoryEntry(sql: Sql, r: HistoryEntryRequest): Promise<string> {
  const id = newEntryId();
  const bytes = r.messages.reduce((sum, m) => sum + m.body.byteLength, 0);
  // issued together, in order (pipelined on PostgreSQL)
  await Promise.all([
    sql.run(
      "INSERT INTO spool_entries (id, kind, sender, recipient, state, created_at, pickup_at, next_attempt_at, expires_at, message_count, bytes, conversation_id, notes) VALUES (?, 'history', ?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?)",
      [id, r.owner, r.peer, r.createdAt, r.createdAt, r.createdAt, r.createdAt + r.maxAgeMs, r.messages.length, bytes, r.conversationId, JSON.stringify(r.notes)],
    ),
    ...r.messages.map((m, i) => sql.run('INSERT INTO spool_messages (entry_id, seq, call_id, received_at, content_type, body, sender) VALUES (?, ?, ?, ?, ?, ?, ?)', [id, i + 1, m.callId, m.receivedAt, m.contentType, m.body, m.sender])),
  ]);
  await recordTrace(sql, {
    traceId: id,
    callId: r.conversationId,
    at: r.createdAt,
    step: 'spooled',
    detail: { kind: 'history', owner: r.owner, peer: r.peer, conversation: r.conversationId, messages: r.messages.length, bytes },
  });
  return id;
}

/** Who takes entries, and for how long: a delivery round must end within `ms`, or another worker may take its entries. */
export interface Lease {
  /** the worker, unique among the live ones (a node's name and a random part) */
  owner: string;
  ms: number;
}

/**
 * Takes up to `limit` entries, oldest due first: waiting ones that are due, and delivering ones
 * whose lease has ended (their worker died); each is `delivering` under `lease` from now on, its
 * attempts counted. Call inside a transaction (on PostgreSQL a 'read committed' one: the entries
 * are locked with SKIP LOCKED, so workers on other nodes pass over them rather than wait).
 */
export async function claimDue(sql: Sql, now: number, limit: number, lease: Lease): Promise<SpoolEntry[]> {
  const due = "(state = 'waiting' AND next_attempt_at <= ?) OR (state = 'delivering' AND lease_until <= ?)";
  const take = "state = 'delivering', attempts = attempts + 1, lease_owner = ?, lease_until = ?";
  // PostgreSQL: the entries are picked (and locked) once in a CTE; a `WHERE id IN (SELECT … LIMIT
  // … FOR UPDATE SKIP LOCKED)` may be evaluated more than once and take more than `limit`
  const rows =
    sql.engine === 'postgres'
      ? await sql.all<EntryRow>(
          `WITH picked AS (SELECT id FROM spool_entries WHERE ${due} ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
           UPDATE spool_entries e SET ${take} FROM picked WHERE e.id = picked.id RETURNING e.*`,
          [now, now, limit, lease.owner, now + lease.ms],
        )
      : await sql.all<EntryRow>(`UPDATE spool_entries SET ${take} WHERE id IN (SELECT id FROM spool_entries WHERE ${due} ORDER BY next_attempt_at LIMIT ?) RETURNING *`, [lease.owner, now + lease.ms, now, now, limit]);
  return rows.map(toEntry).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1));
}

/** When the next waiting entry falls due, or undefined when none waits. */
export async function nextDueAt(sql: Sql): Promise<number | undefined> {
  const row = await sql.get<{ due: number | null }>("SELECT MIN(next_attempt_at) AS due FROM spool_entries WHERE state = 'waiting'");
  return row?.due ?? undefined;
}

export async function entryMessages(sql: Sql, entryId: string): Promise<SpooledMessage[]> {
  const rows = await sql.all<{ seq: number; sender: string; call_id: string; received_at: number; content_type: string; body: Uint8Array }>(
    'SELECT m.seq, coalesce(m.sender, e.sender) AS sender, m.call_id, m.received_at, m.content_type, m.body FROM spool_messages m JOIN spool_entries e ON e.id = m.entry_id WHERE m.entry_id = ? ORDER BY m.seq',
    [entryId],
  );
  return rows.map((r) => ({ seq: r.seq, sender: r.sender, callId: r.call_id, receivedAt: r.received_at, contentType: r.content_type, body: r.body }));
}

/**
 * The condition an outcome is written under: the entry is still `delivering` under this worker's
 * lease (another worker took it after the lease ended: that one records the outcome). Without an
 * owner (administration, tests) the entry's state is not checked.
 */
function leaseHeld(owner: string | undefined): { where: string; params: string[] } {
  return owner === undefined ? { where: '', params: [] } : { where: " AND state = 'delivering' AND lease_owner = ?", params: [owner] };
}

export async function recordItemIds(sql: Sql, entryId: string, ids: { recipientItemId?: string; senderItemId?: string }): Promise<void> {
  if (ids.recipientItemId !== undefined) await sql.run('UPDATE spool_entries SET recipient_item_id = ? WHERE id = ?', [ids.recipientItemId, entryId]);
  if (ids.senderItemId !== undefined) await sql.run('UPDATE spool_entries SET sender_item_id = ? WHERE id = ?', [ids.senderItemId, entryId]);
}

/** Delivered; false when `leaseOwner` no longer holds the entry (nothing written). */
export async function markDelivered(sql: Sql, entryId: string, now: number, leaseOwner?: string): Promise<boolean> {
  const held = leaseHeld(leaseOwner);
  const r = await sql.run(`UPDATE spool_entries SET state = 'delivered', delivered_at = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL WHERE id = ?${held.where}`, [now, entryId, ...held.params]);
  return r.changes === 1;
}

/** Waiting again, due at `at`; false when `leaseOwner` no longer holds the entry (nothing written). */
export async function scheduleRetry(sql: Sql, entryId: string, at: number, reason: string, leaseOwner?: string): Promise<boolean> {
  const held = leaseHeld(leaseOwner);
  const r = await sql.run(`UPDATE spool_entries SET state = 'waiting', next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?${held.where}`, [at, reason, entryId, ...held.params]);
  return r.changes === 1;
}

/** Failed, waiting for an administrator; false when `leaseOwner` no longer holds the entry (nothing written). */
export async function markFailed(sql: Sql, entryId: string, now: number, reason: string, leaseOwner?: string): Promise<boolean> {
  const held = leaseHeld(leaseOwner);
  const r = await sql.run(`UPDATE spool_entries SET state = 'failed', failed_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?${held.where}`, [now, reason, entryId, ...held.params]);
  return r.changes === 1;
}

/**
 * Entries left `delivering` whose lease ended before `leasedUntil` (or that have none) go back to
 * `waiting`, due now. Returns their ids. On SQLite, where one process owns the database, a start
 * passes Infinity: whatever was being delivered was this process's own before it stopped.
 */
export async function recoverInterrupted(sql: Sql, now: number, leasedUntil = Number.MAX_SAFE_INTEGER, ownerPrefix: string | null = null): Promise<string[]> {
  const until = Math.min(leasedUntil, Number.MAX_SAFE_INTEGER);
  // `ownerPrefix`: the leases of this node's earlier runs (it stopped: nobody holds them any more)
  const rows = await sql.all<{ id: string }>(
    "UPDATE spool_entries SET state = 'waiting', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL WHERE state = 'delivering' AND (lease_until IS NULL OR lease_until <= ? OR (? > 0 AND substr(lease_owner, 1, ?) = ?)) RETURNING id",
    [now, until, ownerPrefix?.length ?? 0, ownerPrefix?.length ?? 0, ownerPrefix ?? ''],
  );
  return rows.map((r) => r.id).sort();
}

// ---- administration ---------------------------------------------------------------------------

export interface EntryFilter {
  /** sender or recipient */
  user?: string;
  state?: SpoolState;
  limit?: number;
}

export async function listEntries(sql: Sql, filter: EntryFilter = {}): Promise<SpoolEntry[]> {
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
  const text = `SELECT * FROM spool_entries ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`;
  return (await sql.all<EntryRow>(text, args)).map(toEntry);
}

export async function getEntry(sql: Sql, id: string): Promise<SpoolEntry> {
  const row = await sql.get<EntryRow>('SELECT * FROM spool_entries WHERE id = ?', [id]);
  if (row === undefined) throw new OfflineError('ENTRY_NOT_FOUND', `there is no spool entry ${id}; parley spooler list shows the entries`);
  return toEntry(row);
}

/**
 * A failed entry is tried again now, with a fresh OfflineImMaxAge window (`maxAgeMs`). Entries
 * waiting for a retry are moved forward too; delivered and delivering ones are refused. Call inside
 * a transaction (the state read and the update belong together).
 */
export async function retryEntry(sql: Sql, id: string, now: number, maxAgeMs: number): Promise<SpoolEntry> {
  const entry = await getEntry(sql, id);
  if (entry.state === 'delivered' || entry.state === 'delivering') {
    throw new OfflineError('ENTRY_STATE', `spool entry ${id} is ${entry.state}; only failed or waiting entries can be retried`);
  }
  await sql.run("UPDATE spool_entries SET state = 'waiting', next_attempt_at = ?, expires_at = ?, failed_at = NULL WHERE id = ?", [now, Math.max(entry.expiresAt, now + maxAgeMs), id]);
  await recordTrace(sql, { traceId: id, callId: null, at: now, step: 'retry-requested', detail: { previousState: entry.state, lastError: entry.lastError } });
  return getEntry(sql, id);
}

/**
 * Deletes one entry and its messages. An undelivered one only with `force`: that drops messages,
 * and what they held of the quotas is given back (recordRelease: the server may be another process).
 * Call inside a transaction.
 */
export async function purgeEntry(sql: Sql, id: string, now: number, force = false): Promise<void> {
  const entry = await getEntry(sql, id);
  if (entry.state === 'delivering') throw new OfflineError('ENTRY_STATE', `spool entry ${id} is being delivered right now; try again in a moment`);
  if (entry.state === 'waiting' && !force) {
    throw new OfflineError('ENTRY_STATE', `spool entry ${id} is still waiting for delivery; purging it drops ${entry.messageCount} message(s): add --force if that is what you want`);
  }
  await sql.run('DELETE FROM spool_entries WHERE id = ?', [id]);
  if (entry.state !== 'delivered' && QUOTA_KINDS.includes(entry.kind)) await recordRelease(sql, { sender: entry.sender, recipient: entry.recipient, messages: entry.messageCount, bytes: entry.bytes });
  await recordTrace(sql, { traceId: id, callId: null, at: now, step: 'purged', detail: { kind: entry.kind, state: entry.state, messages: entry.messageCount, bytes: entry.bytes } });
}

/** Deletes delivered entries delivered before `before`; returns how many. */
export async function purgeDelivered(sql: Sql, before: number): Promise<number> {
  return (await sql.run("DELETE FROM spool_entries WHERE state = 'delivered' AND delivered_at < ?", [before])).changes;
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
export async function spoolCounts(sql: Sql): Promise<{ byState: Record<SpoolState, number>; oldestWaitingCreatedAt: number | null }> {
  const byState = Object.fromEntries(SPOOL_STATES.map((s) => [s, 0])) as Record<SpoolState, number>;
  const rows = await sql.all<{ state: SpoolState; n: number }>('SELECT state, COUNT(*) AS n FROM spool_entries GROUP BY state');
  for (const r of rows) byState[r.state] = Number(r.n);
  const oldest = await sql.get<{ at: number | null }>("SELECT MIN(created_at) AS at FROM spool_entries WHERE state = 'waiting'");
  return { byState, oldestWaitingCreatedAt: oldest?.at ?? null };
}
