// Mailboxes and folders. A mailbox is made on first use with Exchange's distinguished folders;
// users may add folders under any folder. All lookups are scoped to one mailbox.

import { parseAddress } from '../directory/index.ts';
import type { Sql } from '../storage/index.ts';
import { MailboxError } from './errors.ts';
import { isWellFormedId, newChangeKey, newId } from './ids.ts';
import { folderTreeUsage, growMailbox } from './usage.ts';
import { WRITE, writeMailbox } from './writes.ts';

/** EWS DistinguishedFolderId names Parley keeps (EWS reference, DistinguishedFolderId). */
export const DISTINGUISHED_FOLDERS = ['msgfolderroot', 'inbox', 'drafts', 'sentitems', 'deleteditems', 'conversationhistory', 'junkemail', 'outbox', 'calendar', 'contacts'] as const;
export type DistinguishedFolder = (typeof DISTINGUISHED_FOLDERS)[number];

const DISPLAY_NAMES: Record<DistinguishedFolder, string> = {
  msgfolderroot: 'Top of Information Store',
  inbox: 'Inbox',
  drafts: 'Drafts',
  sentitems: 'Sent Items',
  deleteditems: 'Deleted Items',
  conversationhistory: 'Conversation History',
  junkemail: 'Junk Email',
  outbox: 'Outbox',
  calendar: 'Calendar',
  contacts: 'Contacts',
};

/** Parley stores messages only; Calendar and Contacts exist because every Exchange mailbox has them and clients look them up. */
const FOLDER_CLASSES: Partial<Record<DistinguishedFolder, string>> = { calendar: 'IPF.Appointment', contacts: 'IPF.Contact' };

export interface Mailbox {
  id: number;
  /** `alice@parley.local` */
  address: string;
}

export interface FolderRecord {
  id: string;
  changeKey: string;
  mailboxId: number;
  parentId: string | null;
  distinguished: DistinguishedFolder | null;
  displayName: string;
  folderClass: string;
  totalCount: number;
  unreadCount: number;
  childFolderCount: number;
  /** when an item of the folder last changed (created, updated, read, moved, deleted), else when the folder was made; ms */
  lastModifiedAt: number;
}

export function isDistinguishedFolder(name: string): name is DistinguishedFolder {
  return (DISTINGUISHED_FOLDERS as readonly string[]).includes(name);
}

/** The user's mailbox, created with its distinguished folders when it does not exist yet. */
export async function ensureMailbox(sql: Sql, address: string, now: () => number = Date.now): Promise<Mailbox> {
  const normalised = parseAddress(address).address;
  const existing = await findMailbox(sql, normalised);
  if (existing) return existing;
  return sql.transaction(async (tx) => {
    const at = now();
    // a concurrent first use (another delivery, another node) may have made it meanwhile
    const made = await tx.get<{ id: number }>('INSERT INTO mailboxes (address, created_at) VALUES (?, ?) ON CONFLICT (address) DO NOTHING RETURNING id', [normalised, at]);
    if (made === undefined) return (await findMailbox(tx, normalised)) as Mailbox;
    const mailboxId = Number(made.id);
    const rootId = newId();
    const insert = 'INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
    await tx.run(insert, [rootId, mailboxId, null, 'msgfolderroot', DISPLAY_NAMES.msgfolderroot, 'IPF.Note', newChangeKey(), at]);
    for (const name of DISTINGUISHED_FOLDERS) {
      if (name !== 'msgfolderroot') await tx.run(insert, [newId(), mailboxId, rootId, name, DISPLAY_NAMES[name], FOLDER_CLASSES[name] ?? 'IPF.Note', newChangeKey(), at]);
    }
    return { id: mailboxId, address: normalised };
  }, WRITE);
}

export async function findMailbox(sql: Sql, address: string): Promise<Mailbox | undefined> {
  const row = await sql.get<{ id: number; address: string }>('SELECT id, address FROM mailboxes WHERE address = ?', [address.toLowerCase()]);
  return row === undefined ? undefined : { id: Number(row.id), address: row.address };
}

const FOLDER_COLUMNS = `f.id, f.change_key, f.mailbox_id, f.parent_id, f.distinguished, f.display_name, f.folder_class,
  (SELECT count(*) FROM mail_items i WHERE i.folder_id = f.id AND i.soft_deleted = 0) AS total,
  (SELECT count(*) FROM mail_items i WHERE i.folder_id = f.id AND i.soft_deleted = 0 AND i.is_read = 0) AS unread,
  (SELECT count(*) FROM mail_folders c WHERE c.parent_id = f.id) AS children,
  COALESCE((SELECT c.at FROM mail_changes c WHERE c.folder_id = f.id ORDER BY c.seq DESC LIMIT 1), f.created_at) AS changed_at`;

interface FolderRow {
  id: string;
  change_key: string;
  mailbox_id: number;
  parent_id: string | null;
  distinguished: string | null;
  display_name: string;
  folder_class: string;
  total: number;
  unread: number;
  children: number;
  changed_at: number;
}

function folderOf(row: FolderRow): FolderRecord {
  return {
    id: row.id,
    changeKey: row.change_key,
    mailboxId: Number(row.mailbox_id),
    parentId: row.parent_id,
    distinguished: row.distinguished !== null && isDistinguishedFolder(row.distinguished) ? row.distinguished : null,
    displayName: row.display_name,
    folderClass: row.folder_class,
    totalCount: Number(row.total),
    unreadCount: Number(row.unread),
    childFolderCount: Number(row.children),
    lastModifiedAt: Number(row.changed_at),
  };
}

/** A folder of this mailbox by id; ID_MALFORMED, ACCESS_DENIED (another mailbox's) or FOLDER_NOT_FOUND. */
export async function getFolder(sql: Sql, mailboxId: number, folderId: string): Promise<FolderRecord> {
  if (!isWellFormedId(folderId)) throw new MailboxError('ID_MALFORMED', 'the folder id is malformed');
  const row = await sql.get<FolderRow>(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.id = ?`, [folderId]);
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', 'no folder has that id');
  if (Number(row.mailbox_id) !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the folder belongs to another mailbox');
  return folderOf(row);
}

/**
 * The id of a folder of this mailbox, checked as getFolder checks it but without counting its
 * items: what a write into the folder needs (delivery makes thousands a second).
 */
export async function requireFolderId(sql: Sql, mailboxId: number, folderId: string): Promise<string> {
  if (!isWellFormedId(folderId)) throw new MailboxError('ID_MALFORMED', 'the folder id is malformed');
  const row = await sql.get<{ mailbox_id: number }>('SELECT mailbox_id FROM mail_folders WHERE id = ?', [folderId]);
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', 'no folder has that id');
  if (Number(row.mailbox_id) !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the folder belongs to another mailbox');
  return folderId;
}

/** The id of a distinguished folder, without counting its items. */
export async function distinguishedFolderId(sql: Sql, mailboxId: number, name: DistinguishedFolder): Promise<string> {
  const row = await sql.get<{ id: string }>('SELECT id FROM mail_folders WHERE mailbox_id = ? AND distinguished = ?', [mailboxId, name]);
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${name} folder`);
  return row.id;
}

export async function getDistinguishedFolder(sql: Sql, mailboxId: number, name: DistinguishedFolder): Promise<FolderRecord> {
  const row = await sql.get<FolderRow>(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.mailbox_id = ? AND f.distinguished = ?`, [mailboxId, name]);
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${name} folder`);
  return folderOf(row);
}

/** The folders under `parentId`: its children (shallow) or all descendants (deep), by display name. */
export async function listFolders(sql: Sql, mailboxId: number, parentId: string, deep: boolean): Promise<FolderRecord[]> {
  const parent = await getFolder(sql, mailboxId, parentId);
  const out: FolderRecord[] = [];
  const walk = async (id: string): Promise<void> => {
    for (const row of await sql.all<FolderRow>(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.parent_id = ? ORDER BY lower(f.display_name)`, [id])) {
      out.push(folderOf(row));
      if (deep) await walk(row.id);
    }
  };
  await walk(parent.id);
  return out;
}

export async function createFolder(sql: Sql, mailboxId: number, parentId: string, displayName: string, folderClass = 'IPF.Note', now: () => number = Date.now): Promise<FolderRecord> {
  const name = displayName.trim();
  if (name === '' || name.length > 255) throw new MailboxError('INVALID_REQUEST', 'a folder needs a display name of 1 to 255 characters');
  return writeMailbox(sql, mailboxId, async (tx) => {
    const parent = await getFolder(tx, mailboxId, parentId);
    const clash = await tx.get('SELECT 1 AS x FROM mail_folders WHERE parent_id = ? AND lower(display_name) = lower(?)', [parent.id, name]);
    if (clash !== undefined) throw new MailboxError('FOLDER_EXISTS', `a folder named ${JSON.stringify(name)} already exists there`);
    const id = newId();
    await tx.run('INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)', [id, mailboxId, parent.id, name, folderClass, newChangeKey(), now()]);
    return getFolder(tx, mailboxId, id);
  }, false);
}

/**
 * Deletes a user folder with everything under it (HardDelete, SoftDelete), or moves it under
 * Deleted Items (MoveToDeletedItems). Distinguished folders cannot be deleted.
 */
export async function deleteFolder(sql: Sql, mailboxId: number, folderId: string, mode: 'HardDelete' | 'SoftDelete' | 'MoveToDeletedItems'): Promise<void> {
  await writeMailbox(sql, mailboxId, async (tx) => {
    const folder = await getFolder(tx, mailboxId, folderId);
    if (folder.distinguished !== null) throw new MailboxError('DISTINGUISHED_FOLDER', `${folder.displayName} is a distinguished folder and cannot be deleted`);
    const deleted = await getDistinguishedFolder(tx, mailboxId, 'deleteditems');
    if (mode === 'MoveToDeletedItems' && !(await isUnder(tx, folder.id, deleted.id))) {
      const clash = await tx.get('SELECT 1 AS x FROM mail_folders WHERE parent_id = ? AND lower(display_name) = lower(?)', [deleted.id, folder.displayName]);
      if (clash !== undefined) throw new MailboxError('FOLDER_EXISTS', `Deleted Items already holds a folder named ${JSON.stringify(folder.displayName)}`);
      await tx.run('UPDATE mail_folders SET parent_id = ?, change_key = ? WHERE id = ?', [deleted.id, newChangeKey(), folder.id]);
      return;
    }
    const freed = await folderTreeUsage(tx, folder.id);
    await growMailbox(tx, mailboxId, -freed.size, -freed.deletedSize);
    await tx.run('DELETE FROM mail_folders WHERE id = ?', [folder.id]); // items and subfolders cascade
  }, false);
}

async function isUnder(sql: Sql, folderId: string, ancestorId: string): Promise<boolean> {
  let current: string | null = folderId;
  for (let hops = 0; current !== null && hops < 256; hops++) {
    const row: { parent_id: string | null } | undefined = await sql.get<{ parent_id: string | null }>('SELECT parent_id FROM mail_folders WHERE id = ?', [current]);
    current = row?.parent_id ?? null;
    if (current === ancestorId) return true;
  }
  return false;
}
