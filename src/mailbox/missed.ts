// "Missed Conversations": the view of the IPM.Note.Microsoft.Missed items of Conversation History
// (MISSION.md). The registrar's message-summary notification (RFC 3842) reads its counts here.
import type { Sql } from '../storage/index.ts';
import { distinguishedFolderId, findMailbox } from './folders.ts';
import { findItems } from './items.ts';
import type { ItemFilter, ItemPage } from './items.ts';

export const MISSED_CLASS = 'IPM.Note.Microsoft.Missed';
export const CONVERSATION_CLASS = 'IPM.Note.Microsoft.Conversation';

export interface MissedSummary {
  total: number;
  unread: number;
}

/** Counts of the user's missed conversations; zeros when the user has no mailbox yet. */
export async function missedConversationSummary(sql: Sql, address: string): Promise<MissedSummary> {
  const mailbox = await findMailbox(sql, address);
  if (mailbox === undefined) return { total: 0, unread: 0 };
  const folder = await distinguishedFolderId(sql, mailbox.id, 'conversationhistory');
  const ofClass = { op: 'eq', field: 'itemClass', value: MISSED_CLASS } as const;
  const total = (await findItems(sql, mailbox.id, folder, { filter: ofClass, max: 0 })).total;
  const unread = (await findItems(sql, mailbox.id, folder, { filter: { op: 'and', filters: [ofClass, { op: 'eq', field: 'isRead', value: false }] }, max: 0 })).total;
  return { total, unread };
}

/** The missed conversations, newest first. */
export async function listMissedConversations(sql: Sql, address: string, offset = 0, max = 50): Promise<ItemPage> {
  const mailbox = await findMailbox(sql, address);
  if (mailbox === undefined) return { items: [], total: 0 };
  const folder = await distinguishedFolderId(sql, mailbox.id, 'conversationhistory');
  return findItems(sql, mailbox.id, folder, { filter: { op: 'eq', field: 'itemClass', value: MISSED_CLASS }, offset, max });
}

/** Which items of Conversation History: the missed ones, the others (saved conversations, sent copies), or all. */
export type ConversationKind = 'missed' | 'history' | 'all';

/**
 * The items of the user's Conversation History, newest first, one page: of a kind, and with `text`
 * (when not empty) in the subject or the plain-text body, case-insensitively (ASCII letters fold,
 * as SQLite's lower() does; PostgreSQL folds every letter). Empty when the user has no mailbox yet.
 */
export async function findConversations(sql: Sql, address: string, query: { kind: ConversationKind; text?: string; offset: number; max: number }): Promise<ItemPage> {
  const mailbox = await findMailbox(sql, address);
  if (mailbox === undefined) return { items: [], total: 0 };
  const folder = await distinguishedFolderId(sql, mailbox.id, 'conversationhistory');
  const filters: ItemFilter[] = [];
  if (query.kind !== 'all') filters.push({ op: query.kind === 'missed' ? 'eq' : 'ne', field: 'itemClass', value: MISSED_CLASS });
  const text = query.text?.trim() ?? '';
  if (text !== '') filters.push({ op: 'or', filters: [{ op: 'contains', field: 'subject', value: text }, { op: 'contains', field: 'bodyText', value: text }] });
  return findItems(sql, mailbox.id, folder, { filter: { op: 'and', filters }, order: 'desc', offset: query.offset, max: query.max });
}
