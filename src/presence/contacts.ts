// The users' contact lists, kept by the server so that a client watches its whole list with one
// SUBSCRIBE (RFC 4662 resource lists, see lists.ts): each user has one list, of users of the
// organisation and (issue 15) of partners' users, whom the server watches on the list's behalf
// (remote.ts). The SQL lives here (the tables in schema.ts): local members in presence_contacts
// (a foreign key to users), remote ones in presence_remote_contacts; a list is the union.

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
  /** a partner's user (issue 15), watched through the federation link; false: a user of this organisation */
  remote: boolean;
}

interface Row {
  member: string;
  display_name: string | null;
  created_at: number;
  remote: number;
}

/** Both kinds of members of one owner's list (`?` twice: the owner), by address. */
const MEMBERS_SQL = `SELECT c.member, u.display_name, c.created_at, 0 AS remote FROM presence_contacts c JOIN users u ON u.address = c.member WHERE c.owner = ?
UNION ALL SELECT member, display_name, created_at, 1 AS remote FROM presence_remote_contacts WHERE owner = ?
ORDER BY member`;

/** The members of `owner`'s list, by address. */
export function listContacts(db: Database, owner: string): Contact[] {
  return (db.prepare(MEMBERS_SQL).all(owner, owner) as unknown as Row[]).map(contactOf);
}

export function getContact(db: Database, owner: string, member: string): Contact | undefined {
  const row = db
    .prepare(`SELECT * FROM (${MEMBERS_SQL}) WHERE member = ?`)
    .get(owner, owner, member) as Row | undefined;
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

/**
 * Adds partner's user `member` (`dave@partner.example`, lower case; the caller checked the
 * federation decision) to `owner`'s list, as addContact does for users.
 */
export function addRemoteContact(db: Database, owner: string, member: string, now: number): { contact?: Contact; created: boolean; full: boolean } {
  return transaction(db, () => {
    const existing = getContact(db, owner, member);
    if (existing !== undefined) return { contact: existing, created: false, full: false };
    if (!hasRoom(db, CONTACT_LIST, owner)) return { created: false, full: true };
    db.prepare('INSERT INTO presence_remote_contacts (owner, member, display_name, created_at) VALUES (?, ?, NULL, ?)').run(owner, member, now);
    return { contact: getContact(db, owner, member), created: true, full: false };
  });
}

/** false when `member` was not on `owner`'s list. */
export function removeContact(db: Database, owner: string, member: string): boolean {
  return transaction(db, () => {
    const local = Number(db.prepare('DELETE FROM presence_contacts WHERE owner = ? AND member = ?').run(owner, member).changes);
    const remote = Number(db.prepare('DELETE FROM presence_remote_contacts WHERE owner = ? AND member = ?').run(owner, member).changes);
    return local + remote > 0;
  });
}

/** The owners of the lists `member` (a user of the organisation) is on. */
export function listsWith(db: Database, member: string): string[] {
  return (db.prepare('SELECT owner FROM presence_contacts WHERE member = ?').all(member) as Array<{ owner: string }>).map((r) => r.owner);
}

function contactOf(row: Row): Contact {
  return { member: row.member, displayName: row.display_name, since: new Date(Number(row.created_at)), remote: Number(row.remote) === 1 };
}

/** What the presence service reads of the lists (a seam: tests pass their own). */
export interface ContactLists {
  membersOf(owner: string): Contact[];
  /** the owners of the lists `member` is on */
  listsWith(member: string): string[];
}

export function databaseContactLists(db: Database): ContactLists {
  const members = db.prepare(MEMBERS_SQL);
  const owners = db.prepare('SELECT owner FROM presence_contacts WHERE member = ?');
  return {
    membersOf: (owner) => (members.all(owner, owner) as unknown as Row[]).map(contactOf),
    listsWith: (member) => (owners.all(member) as Array<{ owner: string }>).map((r) => r.owner),
  };
}
