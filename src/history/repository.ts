// Conversation History's reads and writes outside the group commit (commit.ts): what the worker
// turns into spool entries, sign-outs, and what `parley history list` shows. Protocol code never
// sees SQL; these take the Database first, like the other repositories.

import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';

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
export function hasDueWork(db: Database, now: number): boolean {
  return (
    statement(db, "SELECT 1 FROM history_conversations WHERE state = 'open' AND ends_at <= ? LIMIT 1").get(now) !== undefined ||
    statement(db, 'SELECT 1 FROM history_messages WHERE display_due_at IS NOT NULL AND display_due_at <= ? LIMIT 1').get(now) !== undefined
  );
}

/** Relayed messages asking for a display notification, unread when their time came: oldest first. */
export function dueUnread(db: Database, now: number, limit: number): HistoryMessage[] {
  const rows = statement(db, `SELECT ${MESSAGE_COLUMNS} FROM history_messages WHERE display_due_at IS NOT NULL AND display_due_at <= ? AND displayed = 0 AND kind = 'relayed' ORDER BY display_due_at, conversation_id, seq LIMIT ?`).all(now, limit) as unknown as MessageDbRow[];
  return rows.map(message);
}

/** The message went to the spool as part of a missed conversation: no longer in the history item. */
export function markMissed(db: Database, conversationId: string, seq: number, entryId: string): void {
  statement(db, "UPDATE history_messages SET kind = 'missed', spool_entry_id = ?, display_due_at = NULL, body = NULL WHERE conversation_id = ? AND seq = ?").run(entryId, conversationId, seq);
}

/** No display is awaited any more (the sender may not have offline IM): it stays in the history item. */
export function stopAwaitingDisplay(db: Database, conversationId: string, seq: number): void {
  statement(db, 'UPDATE history_messages SET display_due_at = NULL WHERE conversation_id = ? AND seq = ?').run(conversationId, seq);
}

/** Open conversations whose end has come and none of whose messages still awaits its display. */
export function closable(db: Database, now: number, limit: number): ConversationRow[] {
  const rows = statement(
    db,
    `SELECT * FROM history_conversations c WHERE state = 'open' AND ends_at <= ?
       AND NOT EXISTS (SELECT 1 FROM history_messages m WHERE m.conversation_id = c.id AND m.kind = 'relayed' AND m.displayed = 0 AND m.display_due_at IS NOT NULL)
     ORDER BY ends_at LIMIT ?`,
  ).all(now, limit) as unknown as ConversationDbRow[];
  return rows.map(conversation);
}

export function conversationMessages(db: Database, conversationId: string): HistoryMessage[] {
  const rows = statement(db, `SELECT ${MESSAGE_COLUMNS} FROM history_messages WHERE conversation_id = ? ORDER BY seq`).all(conversationId) as unknown as MessageDbRow[];
  return rows.map(message);
}

/** Closed, with the spool entries made; the bodies go (the entries carry them on). */
export function markClosed(db: Database, id: string, now: number, reason: string, entries: ReadonlyArray<{ owner: string; entry: string }>): void {
  statement(db, "UPDATE history_conversations SET state = 'closed', closed_at = ?, close_reason = coalesce(close_reason, ?), entries = ? WHERE id = ?").run(now, reason, JSON.stringify(entries), id);
  statement(db, 'UPDATE history_messages SET body = NULL WHERE conversation_id = ?').run(id);
}

/**
 * `address` signed out of every device: their open conversations end now, and the messages to them
 * still awaiting display are due now. Returns the conversations ended.
 */
export function endForSignOut(db: Database, address: string, now: number): string[] {
  const ended = statement(db, "SELECT id FROM history_conversations WHERE state = 'open' AND (user_a = ? OR user_b = ?) AND ends_at > ?").all(address, address, now) as Array<{ id: string }>;
  const end = statement(db, "UPDATE history_conversations SET ends_at = ?, close_reason = 'signed-out' WHERE id = ?");
  for (const { id } of ended) end.run(now, id);
  statement(db, "UPDATE history_messages SET display_due_at = ? WHERE recipient = ? AND kind = 'relayed' AND displayed = 0 AND display_due_at > ?").run(now, address, now);
  return ended.map((r) => r.id);
}

/** A user's open conversations and those closed since `since`, newest first. */
export function listConversations(db: Database, address: string, since: number, limit = 200): ConversationRow[] {
  const rows = statement(db, "SELECT * FROM history_conversations WHERE (user_a = ? OR user_b = ?) AND (state = 'open' OR closed_at >= ?) ORDER BY started_at DESC LIMIT ?").all(address, address, since, limit) as unknown as ConversationDbRow[];
  return rows.map(conversation);
}

/** Forgets conversations closed before `before` (a batch); returns how many. */
export function forgetClosed(db: Database, before: number, limit: number): number {
  const ids = statement(db, "SELECT id FROM history_conversations WHERE state = 'closed' AND closed_at < ? LIMIT ?").all(before, limit) as Array<{ id: string }>;
  const messages = statement(db, 'DELETE FROM history_messages WHERE conversation_id = ?');
  const conversations = statement(db, 'DELETE FROM history_conversations WHERE id = ?');
  for (const { id } of ids) {
    messages.run(id);
    conversations.run(id);
  }
  return ids.length;
}
