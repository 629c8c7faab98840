// The users' contact lists, kept by the server so that a client watches its whole list with one
// SUBSCRIBE (RFC 4662 resource lists, see lists.ts): each user has one list, of users of the
// organisation and (issue 15) of partners' users, whom the server watches on the list's behalf
// (remote.ts). The SQL lives here (the tables in schema.ts): local members in presence_contacts
// (a foreign key to users), remote ones in presence_remote_contacts; a list is the union.

import type { Sql } from '../storage/index.ts';
import { VersionedCache } from '../storage/index.ts';
import { CONTACT_LIST, hasRoom } from './list-limits.ts';
import { sharedLoads } from './shared-loads.ts';

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
export async function listContacts(sql: Sql, owner: string): Promise<Contact[]> {
  return (await sql.all<Row>(MEMBERS_SQL, [owner, owner])).map(contactOf);
}

export async function getContact(sql: Sql, owner: string, member: string): Promise<Contact | undefined> {
  const row = await sql.get<Row>(`SELECT * FROM (${MEMBERS_SQL}) AS m WHERE member = ?`, [owner, owner, member]);
  return row === undefined ? undefined : contactOf(row);
}

/**
 * Adds `member` (a user: the foreign key refuses others) to `owner`'s list. Returns the contact,
 * whether it is new, and `full` when the list already holds MAX_CONTACTS (nothing added).
 */
export function addContact(sql: Sql, owner: string, member: string, now: number): Promise<{ contact?: Contact; created: boolean; full: boolean }> {
  return addMember(sql, owner, member, 'INSERT INTO presence_contacts (owner, member, created_at) VALUES (?, ?, ?)', now);
}

/**
 * Adds partner's user `member` (`dave@partner.example`, lower case; the caller checked the
 * federation decision) to `owner`'s list, as addContact does for users.
 */
export function addRemoteContact(sql: Sql, owner: string, member: string, now: number): Promise<{ contact?: Contact; created: boolean; full: boolean }> {
  return addMember(sql, owner, member, 'INSERT INTO presence_remote_contacts (owner, member, display_name, created_at) VALUES (?, ?, NULL, ?)', now);
}

function addMember(sql: Sql, owner: string, member: string, insert: string, now: number): Promise<{ contact?: Contact; created: boolean; full: boolean }> {
  return sql.transaction(async (tx) => {
    const existing = await getContact(tx, owner, member);
    if (existing !== undefined) return { contact: existing, created: false, full: false };
    if (!(await hasRoom(tx, CONTACT_LIST, owner))) return { created: false, full: true };
    await tx.run(insert, [owner, member, now]);
    return { contact: await getContact(tx, owner, member), created: true, full: false };
  });
}

/** false when `member` was not on `owner`'s list. */
export function removeContact(sql: Sql, owner: string, member: string): Promise<boolean> {
  return sql.transaction(async (tx) => {
    const local = (await tx.run('DELETE FROM presence_contacts WHERE owner = ? AND member = ?', [owner, member])).changes;
    const remote = (await tx.run('DELETE FROM presence_remote_contacts WHERE owner = ? AND member = ?', [owner, member])).changes;
    return local + remote > 0;
  });
}

/** The owners of the lists `member` (a user of the organisation) is on. */
export async function listsWith(sql: Sql, member: string): Promise<string[]> {
  return (await sql.all<{ owner: string }>('SELECT owner FROM presence_contacts WHERE member = ?', [member])).map((r) => r.owner);
}

function contactOf(row: Row): Contact {
  return { member: row.member, displayName: row.display_name, since: new Date(Number(row.created_at)), remote: Number(row.remote) === 1 };
}

/** What the presence service reads of the lists (a seam: tests pass their own). */
export interface ContactLists {
  membersOf(owner: string): Promise<readonly Contact[]>;
  /** the owners of the lists `member` is on */
  listsWith(member: string): Promise<readonly string[]>;
  /** a list changed (by this process): what is kept in memory goes */
  forget?(): void;
}

/**
 * The lists of the database, read for every NOTIFY of a list and every change of a member's
 * presence: kept in memory until a list or a user changes (presence_version, users_version: a
 * member's display name is part of the list), so a burst of NOTIFYs does not wait for the database.
 */
export function databaseContactLists(sql: Sql): ContactLists {
  // both version rows in one value, so either moving drops what is kept
  const version = 'SELECT CAST(p.v AS TEXT) || \'/\' || CAST(u.v AS TEXT) AS v FROM presence_version p, users_version u';
  const members = new VersionedCache<readonly Contact[]>(sql, version, { maxEntries: 10_000 });
  const owners = new VersionedCache<readonly string[]>(sql, version);
  const loadMembers = sharedLoads((owner: string) => listContacts(sql, owner));
  const loadOwners = sharedLoads((member: string) => listsWith(sql, member));
  return {
    membersOf: (owner) => members.get(owner, () => loadMembers(owner)),
    listsWith: (member) => owners.get(member, () => loadOwners(member)),
    forget: () => {
      members.clear();
      owners.clear();
    },
  };
}
