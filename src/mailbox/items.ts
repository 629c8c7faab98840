// Message items of the embedded mailbox. Every function takes the caller's mailbox id: an id that
// names another mailbox's item is ACCESS_DENIED, never served.

import type { Sql, SqlValue } from '../storage/index.ts';
import { MailboxError } from './errors.ts';
import { distinguishedFolderId, getFolder, requireFolderId } from './folders.ts';
import { logChange } from './changes.ts';
import { isWellFormedId, newChangeKey, newId } from './ids.ts';
import { growMailbox } from './usage.ts';
import { writeMailbox } from './writes.ts';

export interface Mailer {
  address: string;
  name?: string | undefined;
}

export interface NewItem {
  itemClass?: string | undefined;
  subject?: string | undefined;
  bodyHtml?: string | null | undefined;
  bodyText?: string | null | undefined;
  from?: Mailer | null | undefined;
  to?: readonly Mailer[] | undefined;
  cc?: readonly Mailer[] | undefined;
  sentAt?: number | null | undefined;
  receivedAt?: number | undefined;
  isRead?: boolean | undefined;
  internetMessageId?: string | null | undefined;
  conversationTopic?: string | null | undefined;
}

export interface ItemRecord {
  id: string;
  changeKey: string;
  mailboxId: number;
  folderId: string;
  itemClass: string;
  subject: string;
  bodyHtml: string | null;
  bodyText: string | null;
  from: Mailer | null;
  to: Mailer[];
  cc: Mailer[];
  sentAt: number | null;
  receivedAt: number;
  isRead: boolean;
  internetMessageId: string | null;
  conversationTopic: string | null;
  size: number;
  createdAt: number;
  updatedAt: number;
  /**
   * A number of the item, unique in the database and growing with each item stored: what IMAP
   * gateways use as the message's UID (MAPI PR_INTERNET_ARTICLE_NUMBER). A moved item keeps it.
   */
  articleNumber: number;
}

/** A restriction on items, compiled to SQL over a fixed set of fields (EWS FieldURIs). */
export type ItemField = 'itemClass' | 'subject' | 'isRead' | 'internetMessageId' | 'conversationTopic' | 'bodyText';
export type ItemFilter =
  | { op: 'eq' | 'ne'; field: ItemField; value: string | boolean }
  | { op: 'contains'; field: ItemField; value: string }
  | { op: 'and' | 'or'; filters: ItemFilter[] }
  | { op: 'not'; filter: ItemFilter };

export interface ItemQuery {
  filter?: ItemFilter | undefined;
  /** the direction; default newest first, as Outlook shows a folder */
  order?: 'asc' | 'desc' | undefined;
  /** by DateTimeReceived (default), or by article number (the order items were stored in) */
  sort?: 'received' | 'article' | undefined;
  offset?: number | undefined;
  max?: number | undefined;
}

export interface ItemPage {
  items: ItemRecord[];
  /** items matching the filter, all pages */
  total: number;
}

export type DeleteMode = 'HardDelete' | 'SoftDelete' | 'MoveToDeletedItems';

const COLUMNS: Record<ItemField, string> = {
  itemClass: 'item_class',
  subject: 'subject',
  isRead: 'is_read',
  internetMessageId: 'internet_message_id',
  conversationTopic: 'conversation_topic',
  bodyText: 'body_text',
};

interface ItemRow {
  id: string;
  change_key: string;
  mailbox_id: number;
  folder_id: string;
  item_class: string;
  subject: string;
  body_html: string | null;
  body_text: string | null;
  from_address: string | null;
  from_name: string | null;
  to_json: string;
  cc_json: string;
  sent_at: number | null;
  received_at: number;
  is_read: number;
  internet_message_id: string | null;
  conversation_topic: string | null;
  size: number;
  created_at: number;
  updated_at: number;
  /** the article number (migration 011) */
  article: number;
}

function itemOf(row: ItemRow): ItemRecord {
  return {
    id: row.id,
    changeKey: row.change_key,
    mailboxId: Number(row.mailbox_id),
    folderId: row.folder_id,
    itemClass: row.item_class,
    subject: row.subject,
    bodyHtml: row.body_html,
    bodyText: row.body_text,
    from: row.from_address === null ? null : { address: row.from_address, name: row.from_name ?? undefined },
    to: JSON.parse(row.to_json) as Mailer[],
    cc: JSON.parse(row.cc_json) as Mailer[],
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    receivedAt: Number(row.received_at),
    isRead: Number(row.is_read) === 1,
    internetMessageId: row.internet_message_id,
    conversationTopic: row.conversation_topic,
    size: Number(row.size),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    articleNumber: Number(row.article),
  };
}

const mailers = (list: readonly Mailer[] | undefined): string => JSON.stringify((list ?? []).map((m) => (m.name === undefined ? { address: m.address } : { address: m.address, name: m.name })));

/** Creates an item in a folder of this mailbox. INVALID_REQUEST when the InternetMessageId is already used here. */
export async function createItem(sql: Sql, mailboxId: number, folderId: string, item: NewItem, now: () => number = Date.now): Promise<ItemRecord> {
  return writeMailbox(sql, mailboxId, async (tx) => {
    const folder = { id: await requireFolderId(tx, mailboxId, folderId) };
    const messageId = item.internetMessageId ?? null;
    if (messageId !== null && (await findItemByInternetMessageId(tx, mailboxId, messageId)) !== undefined) {
      throw new MailboxError('INVALID_REQUEST', `an item with InternetMessageId ${messageId} already exists in this mailbox`);
    }
    const at = now();
    const subject = item.subject ?? '';
    const size = Buffer.byteLength(subject) + Buffer.byteLength(item.bodyHtml ?? '') + Buffer.byteLength(item.bodyText ?? '');
    const id = newId();
    await tx.run(
      `INSERT INTO mail_items (id, mailbox_id, folder_id, item_class, subject, body_html, body_text, from_address, from_name, to_json, cc_json,
        sent_at, received_at, is_read, internet_message_id, conversation_topic, size, change_key, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id, mailboxId, folder.id, item.itemClass ?? 'IPM.Note', subject, item.bodyHtml ?? null, item.bodyText ?? null,
        item.from?.address ?? null, item.from?.name ?? null, mailers(item.to), mailers(item.cc),
        item.sentAt ?? null, item.receivedAt ?? at, item.isRead === true ? 1 : 0, messageId, item.conversationTopic ?? null, size, newChangeKey(), at, at,
      ],
    );
    await logChange(tx, mailboxId, folder.id, id, 'create', at);
    await growMailbox(tx, mailboxId, size);
    return getItem(tx, mailboxId, id);
  });
}

/** An item of this mailbox; ID_MALFORMED, ACCESS_DENIED (another mailbox's) or ITEM_NOT_FOUND. */
export async function getItem(sql: Sql, mailboxId: number, itemId: string): Promise<ItemRecord> {
  if (!isWellFormedId(itemId)) throw new MailboxError('ID_MALFORMED', 'the item id is malformed');
  const row = await sql.get<ItemRow>('SELECT * FROM mail_items WHERE id = ? AND soft_deleted = 0', [itemId]);
  if (row === undefined) throw new MailboxError('ITEM_NOT_FOUND', 'no item has that id');
  if (Number(row.mailbox_id) !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the item belongs to another mailbox');
  return itemOf(row);
}

/** The item with this InternetMessageId in this mailbox, soft-deleted ones included (they still count for idempotence). */
export async function findItemByInternetMessageId(sql: Sql, mailboxId: number, internetMessageId: string): Promise<ItemRecord | undefined> {
  const row = await sql.get<ItemRow>('SELECT * FROM mail_items WHERE mailbox_id = ? AND internet_message_id = ?', [mailboxId, internetMessageId]);
  return row === undefined ? undefined : itemOf(row);
}

export async function findItems(sql: Sql, mailboxId: number, folderId: string, query: ItemQuery = {}): Promise<ItemPage> {
  const folder = await getFolder(sql, mailboxId, folderId);
  const params: SqlValue[] = [folder.id];
  const where = query.filter === undefined ? '' : ` AND (${compile(query.filter, params)})`;
  const base = `FROM mail_items WHERE folder_id = ? AND soft_deleted = 0${where}`;
  const total = Number((await sql.get<{ n: number }>(`SELECT count(*) AS n ${base}`, params))?.n ?? 0);
  const order = query.order === 'asc' ? 'ASC' : 'DESC';
  // the article number last: the same order on both engines for items received in the same millisecond
  const by = query.sort === 'article' ? `article ${order}` : `received_at ${order}, created_at ${order}, article ${order}`;
  const limit = Math.max(0, Math.min(query.max ?? 1000, 1000));
  const offset = Math.max(0, query.offset ?? 0);
  const rows = limit === 0 ? [] : await sql.all<ItemRow>(`SELECT * ${base} ORDER BY ${by} LIMIT ? OFFSET ?`, [...params, limit, offset]);
  return { items: rows.map(itemOf), total };
}

function compile(filter: ItemFilter, params: SqlValue[]): string {
  switch (filter.op) {
    case 'eq':
    case 'ne': {
      const column = COLUMNS[filter.field];
      params.push(valueFor(filter.field, filter.value));
      // IS [NOT] DISTINCT FROM: a missing InternetMessageId is simply not equal to any value
      return filter.op === 'eq' ? `${column} IS NOT DISTINCT FROM ?` : `${column} IS DISTINCT FROM ?`;
    }
    case 'contains':
      params.push(`%${filter.value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      return `lower(${COLUMNS[filter.field]}) LIKE ? ESCAPE '\\'`;
    case 'and':
    case 'or':
      if (filter.filters.length === 0) return filter.op === 'and' ? '1 = 1' : '1 = 0';
      return filter.filters.map((f) => `(${compile(f, params)})`).join(filter.op === 'and' ? ' AND ' : ' OR ');
    case 'not':
      return `NOT (${compile(filter.filter, params)})`;
  }
}

function valueFor(field: ItemField, value: string | boolean): string | number {
  if (field === 'isRead') return value === true || value === 'true' || value === '1' ? 1 : 0;
  return String(value);
}

export interface ItemChanges {
  isRead?: boolean | undefined;
  subject?: string | undefined;
}

/** Applies the changes and gives the item a new ChangeKey. */
export async function updateItem(sql: Sql, mailboxId: number, itemId: string, changes: ItemChanges, now: () => number = Date.now): Promise<ItemRecord> {
  return writeMailbox(sql, mailboxId, async (tx) => {
    const item = await getItem(tx, mailboxId, itemId);
    const subject = changes.subject ?? item.subject;
    const isRead = changes.isRead ?? item.isRead;
    const size = item.size - Buffer.byteLength(item.subject) + Buffer.byteLength(subject);
    const at = now();
    await tx.run('UPDATE mail_items SET subject = ?, is_read = ?, size = ?, change_key = ?, updated_at = ? WHERE id = ?', [subject, isRead ? 1 : 0, size, newChangeKey(), at, item.id]);
    await growMailbox(tx, mailboxId, size - item.size);
    if (subject !== item.subject) await logChange(tx, mailboxId, item.folderId, item.id, 'update', at);
    else if (isRead !== item.isRead) await logChange(tx, mailboxId, item.folderId, item.id, 'read', at);
    return getItem(tx, mailboxId, item.id);
  });
}

/**
 * EWS DeleteType: HardDelete removes the item; SoftDelete hides it (kept for idempotence of
 * deliveries, as Exchange keeps it in Recoverable Items); MoveToDeletedItems moves it there
 * (an item already in Deleted Items is soft-deleted, as Exchange does). `beforeSoftDelete` may
 * refuse a soft delete by throwing (the mailbox's RecoverableItemsQuota, quota.ts); it reads
 * through the transaction's handle it is given.
 */
export async function deleteItem(sql: Sql, mailboxId: number, itemId: string, mode: DeleteMode, now: () => number = Date.now, beforeSoftDelete?: (tx: Sql) => Promise<void>): Promise<void> {
  await writeMailbox(sql, mailboxId, async (tx) => {
    const item = await getItem(tx, mailboxId, itemId);
    const at = now();
    await logChange(tx, mailboxId, item.folderId, item.id, 'delete', at);
    if (mode === 'HardDelete') {
      await tx.run('DELETE FROM mail_items WHERE id = ?', [item.id]);
      await growMailbox(tx, mailboxId, -item.size);
      return;
    }
    const deleted = await distinguishedFolderId(tx, mailboxId, 'deleteditems');
    if (mode === 'MoveToDeletedItems' && item.folderId !== deleted) {
      await tx.run('UPDATE mail_items SET folder_id = ?, change_key = ?, updated_at = ? WHERE id = ?', [deleted, newChangeKey(), at, item.id]);
      await logChange(tx, mailboxId, deleted, item.id, 'create', at);
      return;
    }
    await beforeSoftDelete?.(tx);
    await tx.run('UPDATE mail_items SET soft_deleted = 1, change_key = ?, updated_at = ? WHERE id = ?', [newChangeKey(), at, item.id]);
    await growMailbox(tx, mailboxId, -item.size, item.size);
  });
}

/** Moves the item to another folder of the same mailbox; it keeps its id and gets a new ChangeKey. */
export async function moveItem(sql: Sql, mailboxId: number, itemId: string, folderId: string, now: () => number = Date.now): Promise<ItemRecord> {
  return writeMailbox(sql, mailboxId, async (tx) => {
    const item = await getItem(tx, mailboxId, itemId);
    const folder = await requireFolderId(tx, mailboxId, folderId);
    if (folder === item.folderId) return item;
    const at = now();
    await tx.run('UPDATE mail_items SET folder_id = ?, change_key = ?, updated_at = ? WHERE id = ?', [folder, newChangeKey(), at, item.id]);
    await logChange(tx, mailboxId, item.folderId, item.id, 'delete', at);
    await logChange(tx, mailboxId, folder, item.id, 'create', at);
    return getItem(tx, mailboxId, item.id);
  });
}

/** For administrators (`parley mailbox show`): the item wherever it is, with its mailbox address; soft-deleted ones too. */
export async function getItemAnyMailbox(sql: Sql, itemId: string): Promise<{ item: ItemRecord; address: string; softDeleted: boolean } | undefined> {
  if (!isWellFormedId(itemId)) return undefined;
  const row = await sql.get<ItemRow & { mailbox_address: string; soft_deleted: number }>('SELECT i.*, m.address AS mailbox_address FROM mail_items i JOIN mailboxes m ON m.id = i.mailbox_id WHERE i.id = ?', [itemId]);
  return row === undefined ? undefined : { item: itemOf(row), address: row.mailbox_address, softDeleted: Number(row.soft_deleted) === 1 };
}
