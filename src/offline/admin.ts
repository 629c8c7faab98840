// The History Spooler as an administrator sees it: the operations behind `parley spooler …` and
// the admin API's /admin/spool endpoints, so both behave the same.
import { recordTrace } from '../observability/trace.ts';
import { effectiveSettings } from '../settings/index.ts';
import type { Sql } from '../storage/index.ts';
import { OfflineError } from './errors.ts';
import { entryMessages, getEntry, listEntries, purgeDelivered, purgeEntry, retryEntry, SPOOL_STATES } from './spool.ts';
import type { EntryFilter, SpoolEntry, SpoolKind, SpoolState } from './spool.ts';
import { messageText } from './transcript.ts';

/** An entry as the administration shows it (times as ISO strings, messages as text). */
export interface SpoolEntryView {
  id: string;
  /** offline, unread (not displayed by a signed-in recipient), history (one participant's record of a conversation), email (to a partner's user, by e-mail) or note (from a partner's user, to the Inbox) */
  kind: SpoolKind;
  state: SpoolState;
  /** a history entry's owner */
  sender: string;
  /** a history entry's peer */
  recipient: string;
  /** the conversation (cv-…) an unread or history entry came from */
  conversationId: string | null;
  messages: number;
  /** the bodies of its messages, bytes (what the quotas count) */
  bytes: number;
  attempts: number;
  createdAt: string;
  pickupAt: string;
  nextAttemptAt: string | null;
  expiresAt: string;
  deliveredAt: string | null;
  failedAt: string | null;
  lastError: string | null;
  recipientItemId: string | null;
  senderItemId: string | null;
}

export interface SpoolEntryDetail extends SpoolEntryView {
  transcript: Array<{ seq: number; sender: string; receivedAt: string; callId: string; contentType: string; text: string }>;
  /** what a history entry's transcript adds after the messages */
  notes: string[];
}

export function viewOf(e: SpoolEntry): SpoolEntryView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: e.id,
    kind: e.kind,
    state: e.state,
    sender: e.sender,
    recipient: e.recipient,
    conversationId: e.conversationId,
    messages: e.messageCount,
    bytes: e.bytes,
    attempts: e.attempts,
    createdAt: new Date(e.createdAt).toISOString(),
    pickupAt: new Date(e.pickupAt).toISOString(),
    nextAttemptAt: e.state === 'waiting' ? new Date(e.nextAttemptAt).toISOString() : null,
    expiresAt: new Date(e.expiresAt).toISOString(),
    deliveredAt: iso(e.deliveredAt),
    failedAt: iso(e.failedAt),
    lastError: e.lastError,
    recipientItemId: e.recipientItemId,
    senderItemId: e.senderItemId,
  };
}

export function parseState(value: string | undefined): SpoolState | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (!(SPOOL_STATES as readonly string[]).includes(lower)) throw new OfflineError('BAD_REQUEST', `state must be one of ${SPOOL_STATES.join(', ')}, not ${JSON.stringify(value)}`);
  return lower as SpoolState;
}

export async function listSpool(sql: Sql, filter: EntryFilter): Promise<SpoolEntryView[]> {
  return (await listEntries(sql, filter)).map(viewOf);
}

export async function showSpoolEntry(sql: Sql, id: string): Promise<SpoolEntryDetail> {
  const entry = await getEntry(sql, id);
  return {
    ...viewOf(entry),
    notes: entry.notes,
    transcript: (await entryMessages(sql, id)).map((m) => ({
      seq: m.seq,
      sender: m.sender,
      receivedAt: new Date(m.receivedAt).toISOString(),
      callId: m.callId,
      contentType: m.contentType,
      text: messageText({ receivedAt: new Date(m.receivedAt), contentType: m.contentType, body: m.body }),
    })),
  };
}

/** Retries one entry now, with a fresh OfflineImMaxAge window of its sender (of a note: its recipient). */
export async function retrySpoolEntry(sql: Sql, id: string, now: number, actor: string): Promise<SpoolEntryView> {
  const entry = await getEntry(sql, id);
  // the local party's OfflineImMaxAge: a note's sender is a partner's user, with no settings here
  const maxAgeMs = await maxAgeMsOf(sql, entry.kind === 'note' ? entry.recipient : entry.sender);
  return sql.transaction(async (tx) => {
    const view = viewOf(await retryEntry(tx, id, now, maxAgeMs));
    await recordTrace(tx, { traceId: id, callId: null, at: now, step: 'admin', detail: { action: 'retry', by: actor } });
    return view;
  });
}

/** Retries every failed entry; returns their ids. */
export async function retryFailed(sql: Sql, now: number, actor: string): Promise<string[]> {
  const ids: string[] = [];
  for (const e of await listEntries(sql, { state: 'failed', limit: 1_000_000 })) ids.push((await retrySpoolEntry(sql, e.id, now, actor)).id);
  return ids;
}

export async function purgeSpoolEntry(sql: Sql, id: string, now: number, force: boolean): Promise<void> {
  await sql.transaction((tx) => purgeEntry(tx, id, now, force));
}

export async function purgeDeliveredBefore(sql: Sql, before: Date): Promise<number> {
  if (Number.isNaN(before.getTime())) throw new OfflineError('BAD_REQUEST', 'the date is not valid; write it like 2026-11-25 or 2026-11-25T10:00:00Z');
  return purgeDelivered(sql, before.getTime());
}

/** The sender's OfflineImMaxAge; the default's day when the sender no longer exists. */
async function maxAgeMsOf(sql: Sql, sender: string): Promise<number> {
  try {
    return (await effectiveSettings(sql, sender)).OfflineImMaxAgeSeconds * 1000;
  } catch {
    return 86_400_000;
  }
}
