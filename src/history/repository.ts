// Conversation History's reads and writes outside the group commit (commit.ts): what the worker
// turns into spool entries, sign-outs, and what `parley history list` shows. Protocol code never
// sees SQL; these take the Sql handle first (a transaction's inside one), like the other repositories.

import type { Sql } from '../storage/index.ts';

export type HistoryMessageKind = 'relayed' | 'offline' | 'missed';

export interface HistoryMessage {
  conversationId: string;
  seq: number;
  sender: string;
  recipient: string;
  callId: string;
  receivedAt: number;
  contentType: string;
  body: Uint8Array | null;
  kind: HistoryMessageKind;
  spoolEntryId: string | null;
}

export interface ConversationRow {
  id: string;
  userA: string;
  userB: string;
  state: 'open' | 'closed';
  startedAt: number;
  lastAt: number;
  endsAt: number;
  closedAt: number | null;
  closeReason: string | null;
  messageCount: number;
  entries: Array<{ owner: string; entry: string }>;
}

interface MessageDbRow {
  conversation_id: string;
  seq: number;
  sender: string;
  recipient: string;
  call_id: string;
  received_at: number;
  content_type: string;
  body: Uint8Array | null;
  kind: HistoryMessageKind;
  spool_entry_id: string | null;
}

interface ConversationDbRow {
  id: string;
  user_a: string;
  user_b: string;
  state: 'open' | 'closed';
  started_at: number;
  last_at: number;
  ends_at: number;
  closed_at: number | null;
  close_reason: string | null;
  message_count: number;
  entries: string;
}

const MESSAGE_COLUMNS = 'conversation_id, seq, sender, recipient, call_id, received_at, content_type, body, kind, spool_entry_id';

function message(r: MessageDbRow): HistoryMessage {
  return { conversationId: r.conversation_id, seq: r.seq, sender: r.sender, recipient: r.recipient, callId: r.call_id, receivedAt: r.received_at, contentType: r.content_type, body: r.body, kind: r.kind, spoolEntryId: r.spool_entry_id };
}

function conversation(r: ConversationDbRow): ConversationRow {
  return {
    id: r.id,
    userA: r.user_a,
    userB: r.user_b,
    state: r.state,
    startedAt: r.started_at,
    lastAt: r.last_at,
    endsAt: r.ends_at,
    closedAt: r.closed_at,
    closeReason: r.close_reason,
    messageCount: r.message_count,
    entries: JSON.parse(r.entries) as Array<{ owner: string; entry: string }>,
  };
}

/** Whether a round has anything to do: an open conversation whose end has come, or a message due to be displayed. */
export async function hasDueWork(sql: Sql, now: number): Promise<boolean> {
  return (
    (await sql.get("SELECT 1 AS x FROM history_conversations WHERE state = 'open' AND ends_at <= ? LIMIT 1", [now])) !== undefined ||
    (await sql.get('SELECT 1 AS x FROM history_messages WHERE display_due_at IS NOT NULL AND display_due_at <= ? LIMIT 1', [now])) !== undefined
  );
}

/** Relayed messages asking for a display notification, unread when their time came: oldest first. */
export async function dueUnread(sql: Sql, now: number, limit: number): Promise<HistoryMessage[]> {
  const rows = await sql.all<MessageDbRow>(`SELECT ${MESSAGE_COLUMNS} FROM history_messages WHERE display_due_at IS NOT NULL AND display_due_at <= ? AND displayed = 0 AND kind = 'relayed' ORDER BY display_due_at, conversation_id, seq LIMIT ?`, [now, limit]);
  return rows.map(message);
}

/** The message went to the spool as part of a missed conversation: no longer in the history item. */
export async function markMissed(sql: Sql, conversationId: string, seq: number, entryId: string): Promise<void> {
  await sql.run("UPDATE history_messages SET kind = 'missed', spool_entry_id = ?, display_due_at = NULL, body = NULL WHERE conversation_id = ? AND seq = ?", [entryId, conversationId, seq]);
}

/** No display is awaited any more (the sender may not have offline IM): it stays in the history item. */
export async function stopAwaitingDisplay(sql: Sql, conversationId: string, seq: number): Promise<void> {
  await sql.run('UPDATE history_messages SET display_due_at = NULL WHERE conversation_id = ? AND seq = ?', [conversationId, seq]);
}

/** Open conversations whose end has come and none of whose messages still awaits its display. */
export async function closable(sql: Sql, now: number, limit: number): Promise<ConversationRow[]> {
  const rows = await sql.all<ConversationDbRow>(
    `SELECT * FROM history_conversations c WHERE state = 'open' AND ends_at <= ?
       AND NOT EXISTS (SELECT 1 FROM history_messages m WHERE m.conversation_id = c.id AND m.kind = 'relayed' AND m.displayed = 0 AND m.display_due_at IS NOT NULL)
     ORDER BY ends_at LIMIT ?`,
    [now, limit],
  );
  return rows.map(conversation);
}

export async function conversationMessages(sql: Sql, conversationId: string): Promise<HistoryMessage[]> {
  const rows = await sql.all<MessageDbRow>(`SELECT ${MESSAGE_COLUMNS} FROM history_messages WHERE conversation_id = ? ORDER BY seq`, [conversationId]);
  return rows.map(message);
}

/** Closed, with the spool entries made; the bodies go (the entries carry them on). */
export async function markClosed(sql: Sql, id: string, now: number, reason: string, entries: ReadonlyArray<{ owner: string; entry: string }>): Promise<void> {
  await sql.run("UPDATE history_conversations SET state = 'closed', closed_at = ?, close_reason = coalesce(close_reason, ?), entries = ? WHERE id = ?", [now, reason, JSON.stringify(entries), id]);
  await sql.run('UPDATE history_messages SET body = NULL WHERE conversation_id = ?', [id]);
}

/** What a sign-out of `address` at `now` ends (bound: address, address, now): their open conversations. */
const OPEN_FOR_SIGN_OUT = "state = 'open' AND (user_a = ? OR user_b = ?) AND ends_at > ?";
/** ... and makes due now (bound: address, now): the messages to them still awaiting display. */
const AWAITING_DISPLAY_FOR_SIGN_OUT = "recipient = ? AND kind = 'relayed' AND displayed = 0 AND display_due_at > ?";

/**
 * Whether signing `address` out at `now` would change anything: an open conversation of theirs, or
 * a message to them awaiting display. A read (no write lock): most sign-outs have nothing to end,
 * as when a client that opens a connection per request closes it, which drops its binding.
 */
export async function hasSignOutWork(sql: Sql, address: string, now: number): Promise<boolean> {
  const row = await sql.get<{ w: number }>(
    `SELECT 1 AS w WHERE EXISTS (SELECT 1 FROM history_conversations WHERE ${OPEN_FOR_SIGN_OUT}) OR EXISTS (SELECT 1 FROM history_messages WHERE ${AWAITING_DISPLAY_FOR_SIGN_OUT})`,
    [address, address, now, address, now],
  );
  return row !== undefined;
}

/**
 * `address` signed out of every device: their open conversations end now, and the messages to them
 * still awaiting display are due now. Returns the conversations ended.
 */
export async function endForSignOut(sql: Sql, address: string, now: number): Promise<string[]> {
  const ended = await sql.all<{ id: string }>(`SELECT id FROM history_conversations WHERE ${OPEN_FOR_SIGN_OUT}`, [address, address, now]);
  for (const { id } of ended) await sql.run("UPDATE history_conversations SET ends_at = ?, close_reason = 'signed-out' WHERE id = ?", [now, id]);
  await sql.run(`UPDATE history_messages SET display_due_at = ? WHERE ${AWAITING_DISPLAY_FOR_SIGN_OUT}`, [now, address, now]);
  return ended.map((r) => r.id);
}

/** A user's open conversations and those closed since `since`, newest first. */
export async function listConversations(sql: Sql, address: string, since: number, limit = 200): Promise<ConversationRow[]> {
  const rows = await sql.all<ConversationDbRow>("SELECT * FROM history_conversations WHERE (user_a = ? OR user_b = ?) AND (state = 'open' OR closed_at >= ?) ORDER BY started_at DESC LIMIT ?", [address, address, since, limit]);
  return rows.map(conversation);
}

/** Forgets conversations closed before `before` (a batch); returns how many. */
export async function forgetClosed(sql: Sql, before: number, limit: number): Promise<number> {
  const ids = await sql.all<{ id: string }>("SELECT id FROM history_conversations WHERE state = 'closed' AND closed_at < ? LIMIT ?", [before, limit]);
  for (const { id } of ids) {
    await sql.run('DELETE FROM history_messages WHERE conversation_id = ?', [id]);
    await sql.run('DELETE FROM history_conversations WHERE id = ?', [id]);
  }
  return ids.length;
}
