// What users (HTTP, http.ts) and administrators (the Cs…PresenceBlock cmdlets) may ask of their
// blocks and contact lists: the addresses checked and normalised, the rules applied (no blocking
// oneself, contacts are users of the organisation), then the repositories (blocks.ts, contacts.ts).

import { DirectoryError, findUser, parseAddress } from '../directory/index.ts';
import type { Database } from '../storage/index.ts';
import { addBlock, getBlock, removeBlock } from './blocks.ts';
import type { PresenceBlock } from './blocks.ts';
import { addContact, getContact, removeContact } from './contacts.ts';
import type { Contact } from './contacts.ts';
import { PresenceError } from './errors.ts';
import { BLOCK_LIST, CONTACT_LIST, listFull } from './list-limits.ts';

/**
 * `bob`, `bob@parley.local` or `sip:bob@parley.local` → `bob@parley.local`. Any syntactically valid
 * address may be blocked, also one that is not (yet) a user. Throws DirectoryError BAD_ADDRESS.
 */
export function watcherAddress(text: string, domain: string): string {
  return parseAddress(text, domain).address;
}

/** `owner` blocks `watcher`: they see `owner` Offline from their next NOTIFY on. BLOCK_LIST_FULL past MAX_BLOCKS. */
export function blockWatcher(db: Database, owner: string, watcher: string, now: number): { block: PresenceBlock; created: boolean } {
  if (watcher === owner) throw new PresenceError('SELF_BLOCK', `${owner} cannot block themselves`);
  const { block, created } = addBlock(db, owner, watcher, now);
  if (block === undefined) throw listFull(BLOCK_LIST, owner);
  return { block, created };
}

/** Throws NOT_BLOCKED when there was no such block. */
export function unblockWatcher(db: Database, owner: string, watcher: string, now: number): void {
  if (!removeBlock(db, owner, watcher, now)) throw notBlocked(owner, watcher);
}

export function requireBlock(db: Database, owner: string, watcher: string): PresenceBlock {
  const block = getBlock(db, owner, watcher);
  if (block === undefined) throw notBlocked(owner, watcher);
  return block;
}

function notBlocked(owner: string, watcher: string): PresenceError {
  return new PresenceError('NOT_BLOCKED', `${owner} has not blocked ${watcher}`);
}

/** Adds a user of the organisation to `owner`'s contact list; USER_NOT_FOUND for anyone else. */
export function addToContacts(db: Database, owner: string, member: string, now: number): { contact: Contact; created: boolean } {
  if (findUser(db, member) === undefined) {
    throw new DirectoryError('USER_NOT_FOUND', `${member} is not a user of the organisation: a contact list holds users of this server (partners' users are watched by subscribing to them directly; lists with remote entries are not there yet)`);
  }
  const { contact, created } = addContact(db, owner, member, now);
  if (contact === undefined) throw listFull(CONTACT_LIST, owner);
  return { contact, created };
}

/** Throws NOT_A_CONTACT when `member` was not on the list. */
export function removeFromContacts(db: Database, owner: string, member: string): void {
  if (!removeContact(db, owner, member)) throw notAContact(owner, member);
}

export function requireContact(db: Database, owner: string, member: string): Contact {
  const contact = getContact(db, owner, member);
  if (contact === undefined) throw notAContact(owner, member);
  return contact;
}

function notAContact(owner: string, member: string): PresenceError {
  return new PresenceError('NOT_A_CONTACT', `${member} is not on the contact list of ${owner}`);
}
