// The lists each user keeps on the server — contacts (contacts.ts) and blocked watchers
// (blocks.ts) — are bounded (issue 18, finding 8b): a list is read whole (a contact list is one
// NOTIFY of every member's document), and one user must not grow the database without end. The
// count is taken in the transaction that adds; a full list is refused with 409 and a code of its own.

import type { Sql } from '../storage/index.ts';
import { PresenceError } from './errors.ts';

/** Contacts per list: a list is one NOTIFY of every member's document. */
export const MAX_CONTACTS = 1000;
/** Blocked watchers per user: as many as a contact list holds. */
export const MAX_BLOCKS = 1000;

/** One kind of per-user list: its tables (each with an `owner` column), its maximum and its error. */
export interface ListLimit {
  readonly tables: ReadonlyArray<'presence_contacts' | 'presence_remote_contacts' | 'presence_blocks'>;
  readonly max: number;
  readonly code: 'CONTACT_LIST_FULL' | 'BLOCK_LIST_FULL';
  /** what the error calls the list and what it holds */
  readonly list: string;
  readonly entries: string;
}

export const CONTACT_LIST: ListLimit = Object.freeze<ListLimit>({ tables: ['presence_contacts', 'presence_remote_contacts'], max: MAX_CONTACTS, code: 'CONTACT_LIST_FULL', list: 'contact list', entries: 'contacts' });
export const BLOCK_LIST: ListLimit = Object.freeze<ListLimit>({ tables: ['presence_blocks'], max: MAX_BLOCKS, code: 'BLOCK_LIST_FULL', list: 'block list', entries: 'blocked watchers' });

/** Whether `owner`'s list holds fewer entries than its maximum; call it in the transaction that adds. */
export async function hasRoom(tx: Sql, limit: ListLimit, owner: string): Promise<boolean> {
  let n = 0;
  for (const table of limit.tables) n += Number((await tx.get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE owner = ?`, [owner]))?.n ?? 0);
  return n < limit.max;
}

/** The error of a full list: 409 with the list's code. */
export function listFull(limit: ListLimit, owner: string): PresenceError {
  return new PresenceError(limit.code, `the ${limit.list} of ${owner} holds ${limit.max} ${limit.entries} already; remove some first`);
}
