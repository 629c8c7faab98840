// What users (HTTP, http.ts) and administrators (the Cs…PresenceBlock cmdlets) may ask of their
// blocks and contact lists: the addresses checked and normalised, the rules applied (no blocking
// oneself, contacts are users of the organisation or partners' users the owner may reach), then
// the repositories (blocks.ts, contacts.ts).

import { DirectoryError, parseAddress } from '../directory/index.ts';
import type { Sql } from '../storage/index.ts';
import { addBlock, getBlock, removeBlock } from './blocks.ts';
import type { PresenceBlock } from './blocks.ts';
import { addContact, addRemoteContact, getContact, removeContact } from './contacts.ts';
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
export async function blockWatcher(sql: Sql, owner: string, watcher: string, now: number): Promise<{ block: PresenceBlock; created: boolean }> {
  if (watcher === owner) throw new PresenceError('SELF_BLOCK', `${owner} cannot block themselves`);
  const { block, created } = await addBlock(sql, owner, watcher, now);
  if (block === undefined) throw listFull(BLOCK_LIST, owner);
  return { block, created };
}

/** Throws NOT_BLOCKED when there was no such block. */
export async function unblockWatcher(sql: Sql, owner: string, watcher: string, now: number): Promise<void> {
  if (!(await removeBlock(sql, owner, watcher, now))) throw notBlocked(owner, watcher);
}

export async function requireBlock(sql: Sql, owner: string, watcher: string): Promise<PresenceBlock> {
  const block = await getBlock(sql, owner, watcher);
  if (block === undefined) throw notBlocked(owner, watcher);
  return block;
}

function notBlocked(owner: string, watcher: string): PresenceError {
  return new PresenceError('NOT_BLOCKED', `${owner} has not blocked ${watcher}`);
}

/**
 * What the contact rules need of federation (issue 15): this organisation's domain, and the
 * federation decision (the FederationGate's outboundRefusal; absent: federation is not configured).
 */
export interface ContactFederation {
  domain: string;
  outboundRefusal?: OutboundDecision;
}

/** Why `sender` may not reach `domain`, null when they may: the federation gate's decision, now or once it is made. */
export type OutboundDecision = (sender: string, domain: string) => Refusal | null | Promise<Refusal | null>;

export interface Refusal {
  code: string;
  warning: string;
}

/** What the contact rules ask of the rest of the server. */
export interface ContactRules {
  /** whether `address` is a user of the organisation (the directory) */
  userExists(address: string): Promise<boolean>;
  /** absent: no federation link, every contact is a user of the organisation */
  federation?: ContactFederation;
}

/**
 * Adds a user of the organisation to `owner`'s contact list (USER_NOT_FOUND for an address of
 * this domain that is no user), or a partner's user when the federation decision lets `owner`
 * reach their domain (PARTNER_REFUSED with the decision's reason otherwise). Without
 * `outboundRefusal` (no federation link) every address is taken for this organisation's.
 */
export async function addToContacts(sql: Sql, owner: string, member: string, now: number, rules: ContactRules): Promise<{ contact: Contact; created: boolean }> {
  const federation = rules.federation;
  const memberDomain = member.slice(member.lastIndexOf('@') + 1);
  // without a federation link, every address is taken for one of this organisation's (as before issue 15)
  const decide = federation?.outboundRefusal;
  const remote = decide !== undefined && memberDomain !== federation?.domain;
  if (remote) {
    const refusal = await decide(owner, memberDomain);
    if (refusal !== null) throw new PresenceError('PARTNER_REFUSED', `${member} cannot be on the contact list of ${owner}: ${refusal.warning} (${refusal.code})`);
  } else if (!(await rules.userExists(member))) {
    const why = federation === undefined || memberDomain === federation.domain ? '' : ` (partners' users may be on it once this server has a federation link: the "federation" key of its config)`;
    throw new DirectoryError('USER_NOT_FOUND', `${member} is not a user of the organisation: a contact list holds users of this server${why}`);
  }
  const { contact, created } = remote ? await addRemoteContact(sql, owner, member, now) : await addContact(sql, owner, member, now);
  if (contact === undefined) throw listFull(CONTACT_LIST, owner);
  return { contact, created };
}

/** Throws NOT_A_CONTACT when `member` was not on the list. */
export async function removeFromContacts(sql: Sql, owner: string, member: string): Promise<void> {
  if (!(await removeContact(sql, owner, member))) throw notAContact(owner, member);
}

export async function requireContact(sql: Sql, owner: string, member: string): Promise<Contact> {
  const contact = await getContact(sql, owner, member);
  if (contact === undefined) throw notAContact(owner, member);
  return contact;
}

function notAContact(owner: string, member: string): PresenceError {
  return new PresenceError('NOT_A_CONTACT', `${member} is not on the contact list of ${owner}`);
}
