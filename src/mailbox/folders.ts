// Mailboxes and folders. A mailbox is made on first use with Exchange's distinguished folders;
// users may add folders under any folder. All lookups are scoped to one mailbox.

import { parseAddress } from '../directory/index.ts';
import type { Database } from '../storage/index.ts';
import { statement, transaction } from '../storage/index.ts';
import { MailboxError } from './errors.ts';
import { isWellFormedId, newChangeKey, newId } from './ids.ts';
import { folderTreeUsage, growMailbox } from './usage.ts';

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
export function ensureMailbox(db: Database, address: string, now: () => number = Date.now): Mailbox {
  const normalised = parseAddress(address).address;
  const existing = findMailbox(db, normalised);
  if (existing) return existing;
  return transaction(db, () => {
    const again = findMailbox(db, normalised);
    if (again) return again;
    const at = now();
    const result = db.prepare('INSERT INTO mailboxes (address, created_at) VALUES (?, ?)').run(normalised, at);
    const mailboxId = Number(result.lastInsertRowid);
    const rootId = newId();
    const insert = db.prepare('INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    insert.run(rootId, mailboxId, null, 'msgfolderroot', DISPLAY_NAMES.msgfolderroot, 'IPF.Note', newChangeKey(), at);
    for (const name of DISTINGUISHED_FOLDERS) {
      if (name !== 'msgfolderroot') insert.run(newId(), mailboxId, rootId, name, DISPLAY_NAMES[name], FOLDER_CLASSES[name] ?? 'IPF.Note', newChangeKey(), at);
    }
    return { id: mailboxId, address: normalised };
  });
}

export function findMailbox(db: Database, address: string): Mailbox | undefined {
  const row = statement(db, 'SELECT id, address FROM mailboxes WHERE address = ?').get(address.toLowerCase()) as { id: number; address: string } | undefined;
  return row === undefined ? undefined : { id: row.id, address: row.address };
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
    mailboxId: row.mailbox_id,
    parentId: row.parent_id,
    distinguished: row.distinguished !== null && isDistinguishedFolder(row.distinguished) ? row.distinguished : null,
    displayName: row.display_name,
    folderClass: row.folder_class,
    totalCount: row.total,
    unreadCount: row.unread,
    childFolderCount: row.children,
    lastModifiedAt: row.changed_at,
  };
}

/** A folder of this mailbox by id; ID_MALFORMED, ACCESS_DENIED (another mailbox's) or FOLDER_NOT_FOUND. */
export function getFolder(db: Database, mailboxId: number, folderId: string): FolderRecord {
  if (!isWellFormedId(folderId)) throw new MailboxError('ID_MALFORMED', 'the folder id is malformed');
  const row = db.prepare(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.id = ?`).get(folderId) as FolderRow | undefined;
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', 'no folder has that id');
  if (row.mailbox_id !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the folder belongs to another mailbox');
  return folderOf(row);
}

/**
 * The id of a folder of this mailbox, checked as getFolder checks it but without counting its
 * items: what a write into the folder needs (delivery makes thousands a second).
 */
export function requireFolderId(db: Database, mailboxId: number, folderId: string): string {
  if (!isWellFormedId(folderId)) throw new MailboxError('ID_MALFORMED', 'the folder id is malformed');
  const row = statement(db, 'SELECT mailbox_id FROM mail_folders WHERE id = ?').get(folderId) as { mailbox_id: number } | undefined;
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', 'no folder has that id');
  if (row.mailbox_id !== mailboxId) throw new MailboxError('ACCESS_DENIED', 'the folder belongs to another mailbox');
  return folderId;
}

/** The id of a distinguished folder, without counting its items. */
export function distinguishedFolderId(db: Database, mailboxId: number, name: DistinguishedFolder): string {
  const row = statement(db, 'SELECT id FROM mail_folders WHERE mailbox_id = ? AND distinguished = ?').get(mailboxId, name) as { id: string } | undefined;
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${name} folder`);
  return row.id;
}

export function getDistinguishedFolder(db: Database, mailboxId: number, name: DistinguishedFolder): FolderRecord {
  const row = db.prepare(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.mailbox_id = ? AND f.distinguished = ?`).get(mailboxId, name) as FolderRow | undefined;
  if (row === undefined) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${name} folder`);
  return folderOf(row);
}

/** The folders under `parentId`: its children (shallow) or all descendants (deep), by display name. */
export function listFolders(db: Database, mailboxId: number, parentId: string, deep: boolean): FolderRecord[] {
  const parent = getFolder(db, mailboxId, parentId);
  const children = (id: string) => db.prepare(`SELECT ${FOLDER_COLUMNS} FROM mail_folders f WHERE f.parent_id = ? ORDER BY lower(f.display_name)`).all(id) as unknown as FolderRow[];
  const out: FolderRecord[] = [];
  const walk = (id: string) => {
    for (const row of children(id)) {
      out.push(folderOf(row));
      if (deep) walk(row.id);
    }
  };
  walk(parent.id);
  return out;
}

export function createFolder(db: Database, mailboxId: number, parentId: string, displayName: string, folderClass = 'IPF.Note', now: () => number = Date.now): FolderRecord {
  const name = displayName.trim();
  if (name === '' || name.length > 255) throw new MailboxError('INVALID_REQUEST', 'a folder needs a display name of 1 to 255 characters');
  return transaction(db, () => {
    const parent = getFolder(db, mailboxId, parentId);
    const clash = db.prepare('SELECT 1 AS x FROM mail_folders WHERE parent_id = ? AND lower(display_name) = lower(?)').get(parent.id, name);
    if (clash !== undefined) throw new MailboxError('FOLDER_EXISTS', `a folder named ${JSON.stringify(name)} already exists there`);
    const id = newId();
    db.prepare('INSERT INTO mail_folders (id, mailbox_id, parent_id, distinguished, display_name, folder_class, change_key, created_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)').run(id, mailboxId, parent.id, name, folderClass, newChangeKey(), now());
    return getFolder(db, mailboxId, id);
  });
}

/**
 * Deletes a user folder with everything under it (HardDelete, SoftDelete), or moves it under
 * Deleted Items (MoveToDeletedItems). Distinguished folders cannot be deleted.
 */
export function deleteFolder(db: Database, mailboxId: number, folderId: string, mode: 'HardDelete' | 'SoftDelete' | 'MoveToDeletedItems'): void {
  transaction(db, () => {
    const folder = getFolder(db, mailboxId, folderId);
    if (folder.distinguished !== null) throw new MailboxError('DISTINGUISHED_FOLDER', `${folder.displayName} is a distinguished folder and cannot be deleted`);
    const deleted = getDistinguishedFolder(db, mailboxId, 'deleteditems');
    if (mode === 'MoveToDeletedItems' && !isUnder(db, folder.id, deleted.id)) {
      const clash = db.prepare('SELECT 1 AS x FROM mail_folders WHERE parent_id = ? AND lower(display_name) = lower(?)').get(deleted.id, folder.displayName);
      if (clash !== undefined) throw new MailboxError('FOLDER_EXISTS', `Deleted Items already holds a folder named ${JSON.stringify(folder.displayName)}`);
      db.prepare('UPDATE mail_folders SET parent_id = ?, change_key = ? WHERE id = ?').run(deleted.id, newChangeKey(), folder.id);
      return;
    }
    const freed = folderTreeUsage(db, folder.id);
    growMailbox(db, mailboxId, -freed.size, -freed.deletedSize);
    db.prepare('DELETE FROM mail_folders WHERE id = ?').run(folder.id); // items and subfolders cascade
  });
}

function isUnder(db: Database, folderId: string, ancestorId: string): boolean {
  let current: string | null = folderId;
  for (let hops = 0; current !== null && hops < 256; hops++) {
    const row = db.prepare('SELECT parent_id FROM mail_folders WHERE id = ?').get(current) as { parent_id: string | null } | undefined;
    current = row?.parent_id ?? null;
    if (current === ancestorId) return true;
  }
  return false;
}
