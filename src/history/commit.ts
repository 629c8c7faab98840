// One group commit of Conversation History: the messages the router told the recorder of in the
// last window, in ONE transaction (its COMMIT is the batch's only fsync). It runs in the recorder's
// thread with a connection of its own when the database is a file (recorder-thread.ts), in the loop
// otherwise; so it reads what it needs (the participants' settings) itself.
//
// Per message, in order of arrival:
// - a typing notice: dropped;
// - a `displayed` report from X (RFC 5438 §7.2.1.1): the messages to X with that imdn.Message-ID
//   are displayed (whatever became of the report itself: a reader who went offline still read);
// - text relayed to a device: a message of the pair's open conversation (a new one when none is
//   open, or the open one's end has passed); with a display request and the SENDER's
//   UnreadMissedTimeout on, it is due to be displayed by then;
// - text spooled for an offline recipient: noted (kind offline) for the transcript's note, no body;
// - text refused (480): nothing.
// Every kept message pushes the conversation's end to its time + the shorter idle timeout of the two.
// Nothing is kept for a pair where neither archives (EnableIMAutoArchiving) and no display is tracked.

import { recordTrace } from '../observability/trace.ts';
import { randomBase32 } from '../random-id.ts';
import type { RecordedMessage } from '../router/context.ts';
import type { EffectiveSettings } from '../settings/index.ts';
import { effectiveSettings } from '../settings/index.ts';
import type { Database } from '../storage/index.ts';
import { statement, transaction } from '../storage/index.ts';
import { classify } from './content.ts';

/** What one batch did (for /metrics). */
export interface CommitSummary {
  /** messages kept in a conversation */
  recorded: number;
  /** messages marked displayed by a report */
  displayed: number;
  /** conversations opened */
  opened: number;
}

/** `cv-` and 16 base32 characters, like spool entry ids. */
export function newConversationId(): string {
  return `cv-${randomBase32(10)}`;
}

/** A user's effective settings, null when they are no longer a user (removed meanwhile). */
export function settingsOf(db: Database, cache: Map<string, EffectiveSettings | null>, address: string): EffectiveSettings | null {
  let s = cache.get(address);
  if (s === undefined) {
    try {
      s = effectiveSettings(db, address);
    } catch {
      s = null;
    }
    cache.set(address, s);
  }
  return s;
}

export function writeHistoryBatch(db: Database, messages: readonly RecordedMessage[]): CommitSummary {
  return transaction(db, () => {
    const summary: CommitSummary = { recorded: 0, displayed: 0, opened: 0 };
    const cache = new Map<string, EffectiveSettings | null>();
    const markDisplayed = statement(db, "UPDATE history_messages SET displayed = 1 WHERE imdn_message_id = ? AND recipient = ? AND sender = ? AND displayed = 0");
    for (const m of messages) {
      const content = classify(m.contentType, m.body);
      if (content.kind === 'typing') continue;
      if (content.kind === 'report') {
        if (content.displayedId !== undefined) summary.displayed += Number(markDisplayed.run(content.displayedId, m.sender, m.recipient).changes);
        continue;
      }
      if (m.outcome === 'undelivered') continue;
      const sender = settingsOf(db, cache, m.sender);
      const recipient = settingsOf(db, cache, m.recipient);
      if (sender === null || recipient === null) continue;
      const archived = sender.EnableIMAutoArchiving || recipient.EnableIMAutoArchiving;
      const tracked = m.outcome === 'relayed' && content.displayRequestId !== undefined && sender.UnreadMissedTimeoutSeconds > 0;
      if (!archived && !tracked) continue;
      const idleMs = Math.min(sender.ConversationIdleTimeoutSeconds, recipient.ConversationIdleTimeoutSeconds) * 1000;
      const { id, opened } = conversationFor(db, m, idleMs);
      if (opened) summary.opened++;
      addMessage(db, id, m, content.displayRequestId, tracked ? m.at + sender.UnreadMissedTimeoutSeconds * 1000 : null);
      summary.recorded++;
    }
    return summary;
  });
}

/** The pair's open conversation that `m` continues, or a new one; its end moves to m.at + idle. */
function conversationFor(db: Database, m: RecordedMessage, idleMs: number): { id: string; opened: boolean } {
  const [a, b] = m.sender < m.recipient ? [m.sender, m.recipient] : [m.recipient, m.sender];
  const open = statement(db, "SELECT id, ends_at FROM history_conversations WHERE user_a = ? AND user_b = ? AND state = 'open' ORDER BY started_at DESC LIMIT 1").get(a, b) as { id: string; ends_at: number } | undefined;
  const endsAt = m.at + idleMs;
  if (open !== undefined && open.ends_at >= m.at) {
    statement(db, 'UPDATE history_conversations SET last_at = max(last_at, ?), ends_at = max(ends_at, ?), message_count = message_count + 1 WHERE id = ?').run(m.at, endsAt, open.id);
    return { id: open.id, opened: false };
  }
  // a conversation resumed after it ended is a new one (its own item); the ended one is closed by the worker
  const id = newConversationId();
  statement(db, "INSERT INTO history_conversations (id, user_a, user_b, state, started_at, last_at, ends_at, message_count) VALUES (?, ?, ?, 'open', ?, ?, ?, 1)").run(id, a, b, m.at, m.at, endsAt);
  recordTrace(db, { traceId: id, callId: m.callId, at: m.at, step: 'opened', detail: { between: `${a} ${b}`, endsAt: new Date(endsAt).toISOString() } });
  return { id, opened: true };
}

function addMessage(db: Database, conversationId: string, m: RecordedMessage, imdnMessageId: string | undefined, displayDueAt: number | null): void {
  const seq = (statement(db, 'SELECT coalesce(max(seq), 0) + 1 AS next FROM history_messages WHERE conversation_id = ?').get(conversationId) as { next: number }).next;
  const offline = m.outcome === 'spooled';
  statement(
    db,
    'INSERT INTO history_messages (conversation_id, seq, sender, recipient, call_id, received_at, content_type, body, kind, spool_entry_id, imdn_message_id, display_due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(conversationId, seq, m.sender, m.recipient, m.callId, m.at, m.contentType ?? 'text/plain', offline ? null : m.body, offline ? 'offline' : 'relayed', m.entryId ?? null, imdnMessageId ?? null, displayDueAt);
}
