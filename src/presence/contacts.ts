// The users' contact lists, kept by the server so that a client watches its whole list with one
// SUBSCRIBE (RFC 4662 resource lists, see lists.ts): each user has one list, of users of the
// organisation. The SQL lives here (the table in schema.ts).

import type { Database } from '../storage/index.ts';
import { transaction } from '../storage/index.ts';
import { CONTACT_LIST, hasRoom } from './list-limits.ts';

export { MAX_CONTACTS } from './list-limits.ts';

export interface Contact {
  /** `bob@parley.local` */
  member: string;
  /** the member's display name, null when none */
  displayName: string | null;
  since: Date;
}

interface Row {
  member: string;
  display_name: string | null;
  created_at: number;
}

/** The members of `owner`'s list, by address. */
export function listContacts(db: Database, owner: string): Contact[] {
  const rows = db
    .prepare('SELECT c.member, u.display_name, c.created_at FROM presence_contacts c JOIN users u ON u.address = c.member WHERE c.owner = ? ORDER BY c.member')
    .all(owner) as unknown as Row[];
  return rows.map(contactOf);
}

export function getContact(db: Database, owner: string, member: string): Contact | undefined {
  const row = db
    .prepare('SELECT c.member, u.display_name, c.created_at FROM presence_contacts c JOIN users u ON u.address = c.member WHERE c.owner = ? AND c.member = ?')
    .get(owner, member) as Row | undefined;
  return row === undefined ? undefined : contactOf(row);
}

/**
 * Adds `member` (a user: the foreign key refuses others) to `owner`'s list. Returns the contact,
 * whether it is new, and `full` when the list already holds MAX_CONTACTS (nothing added).
 */
export function addContact(db: Database, owner: string, member: string, now: number): { contact?: Contact; created: boolean; full: boolean } {
  return transaction(db, () => {
    const existing = getContact(db, owner, member);
    if (existing !== undefined) return { contact: existing, created: false, full: false };
    if (!hasRoom(db, CONTACT_LIST, owner)) return { created: false, full: true };
    db.prepare('INSERT INTO presence_contacts (owner, member, created_at) VALUES (?, ?, ?)').run(owner, member, now);
    return { contact: getContact(db, owner, member), created: true, full: false };
  });
}

/** false when `member` was not on `owner`'s list. */
export function removeContact(db: Database, owner: string, member: string): boolean {
  return Number(db.prepare('DELETE FROM presence_contacts WHERE owner = ? AND member = ?').run(owner, member).changes) > 0;
}

/** The owners of the lists `member` is on. */
export function listsWith(db: Database, member: string): string[] {
  return (db.prepare('SELECT owner FROM presence_contacts WHERE member = ?').all(member) as Array<{ owner: string }>).map((r) => r.owner);
}

function contactOf(row: Row): Contact {
  return { member: row.member, displayName: row.display_name, since: new Date(Number(row.created_at)) };
}

/** What the presence service reads of the lists (a seam: tests pass their own). */
export interface ContactLists {
  membersOf(owner: string): Contact[];
  /** the owners of the lists `member` is on */
  listsWith(member: string): string[];
}

export function databaseContactLists(db: Database): ContactLists {
  const members = db.prepare('SELECT c.member, u.display_name, c.created_at FROM presence_contacts c JOIN users u ON u.address = c.member WHERE c.owner = ? ORDER BY c.member');
  const owners = db.prepare('SELECT owner FROM presence_contacts WHERE member = ?');
  return {
    membersOf: (owner) => (members.all(owner) as unknown as Row[]).map(contactOf),
    listsWith: (member) => (owners.all(member) as Array<{ owner: string }>).map((r) => r.owner),
  };
}
