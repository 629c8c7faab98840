// The user's own blocked watchers and contact list over HTTP, on the server's HTTP port (as EWS:
// HTTP Basic with the user's Parley address and password; plain HTTP from loopback only). JSON in,
// JSON out, problem JSON (RFC 9457) with a stable `code` for every error. No request body is read.
//
//   GET    /presence/blocked            → 200 {"blocked": [{"watcher": "bob@parley.local", "since": "2026-…Z"}]}
//   GET    /presence/blocked/{watcher}  → 200 {"watcher", "since"} | 404 NOT_BLOCKED
//   PUT    /presence/blocked/{watcher}  → 201 {"watcher", "since"} (200 when already blocked) | 409 BLOCK_LIST_FULL
//   DELETE /presence/blocked/{watcher}  → 204 | 404 NOT_BLOCKED
//
//   GET    /presence/contacts           → 200 {"uri": "sip:alice+contacts@parley.local", "contacts": [{"contact", "displayName", "since"}]}
//   GET    /presence/contacts/{contact} → 200 {"contact", "displayName", "since"} | 404 NOT_A_CONTACT
//   PUT    /presence/contacts/{contact} → 201 (200 when already there) | 404 USER_NOT_FOUND | 403 PARTNER_REFUSED | 409 CONTACT_LIST_FULL
//   DELETE /presence/contacts/{contact} → 204 | 404 NOT_A_CONTACT
//
// {watcher} and {contact} are `bob`, `bob@parley.local` or `sip:bob@parley.local` (percent-encoded
// or not); a contact may be a partner's user (`dave@partner.example`, "remote": true) when the
// federation decision lets the user reach that domain. A blocked watcher sees the user Offline, with no hint that they are blocked; the change
// reaches their open subscriptions at once. The contact list is the resource list `uri` a client
// subscribes to (RFC 4662, lists.ts); a change reaches those subscriptions at once too.

import type http from 'node:http';
import { isSecureOrLocal } from '../auth/http-basic.ts';
import { HttpProblem as Problem, INTERNAL_PROBLEM, answerJson, answerProblem, problemOf, type HttpCaller } from '../http-json.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpRoute } from '../server/http.ts';
import type { Sql } from '../storage/index.ts';
import { listBlocks } from './blocks.ts';
import type { PresenceBlock } from './blocks.ts';
import type { OutboundDecision } from './policy.ts';
import { addToContacts, blockWatcher, removeFromContacts, requireBlock, requireContact, unblockWatcher, watcherAddress } from './policy.ts';
import { listContacts } from './contacts.ts';
import type { Contact } from './contacts.ts';
import { listResource } from './lists.ts';

export const BLOCKED_PATH = '/presence/blocked';
export const CONTACTS_PATH = '/presence/contacts';

export interface PresenceRouteOptions {
  sql: Sql;
  logger: Logger;
  domain: string;
  /** the Server header */
  product: string;
  /** after a block was added or removed (PresenceService.blocksChanged) */
  onBlocksChanged?: () => void;
  /**
   * The federation decision (ctx.federation.outboundRefusal, issue 15): with it, partners' users
   * may be contacts; absent: contacts are users of `domain` only.
   */
  outboundRefusal?: OutboundDecision;
  /** whether an address is a user of the organisation (the directory): a contact of this domain must be one */
  userExists(address: string): Promise<boolean>;
  /** after a user's contact list changed (PresenceService.contactsChanged) */
  onContactsChanged?: (owner: string) => void;
  /** accept Basic passwords over plain HTTP from other hosts than loopback (default false) */
  allowPlainHttp?: boolean;
  /** who is calling: the server's (a browser session or HTTP Basic through its sign-in, src/session) */
  caller: HttpCaller;
  now?: () => number;
}

export function createPresenceRoute(opts: PresenceRouteOptions): HttpRoute {
  const now = opts.now ?? Date.now;
  const caller = opts.caller;
  return {
    handle(req, res, url) {
      const collection = [BLOCKED_PATH, CONTACTS_PATH].find((p) => url.pathname === p || url.pathname.startsWith(`${p}/`));
      if (collection === undefined) return false;
      req.resume(); // no request body is read: PUT needs none
      serve(req, url, collection).then(
        ({ status, body }) => answerJson(res, opts.product, status, body),
        (error: unknown) => {
          const problem = problemOf(error);
          if (problem === undefined) {
            opts.logger.error({ err: error }, 'presence HTTP request failed');
            answerProblem(res, opts.product, INTERNAL_PROBLEM);
            return;
          }
          answerProblem(res, opts.product, problem);
        },
      );
      return true;
    },
  };

  async function serve(req: http.IncomingMessage, url: URL, collection: string): Promise<{ status: number; body?: unknown }> {
    if (opts.allowPlainHttp !== true && !isSecureOrLocal(req)) {
      throw new Problem(403, 'INSECURE_TRANSPORT', 'your password must not travel in clear: use HTTPS (plain HTTP is accepted on loopback only)');
    }
    const signedIn = await caller(req);
    if (!signedIn.ok) throw signedIn.problem;
    const user = signedIn.address;
    const method = req.method ?? 'GET';
    const rest = url.pathname.slice(collection.length).replace(/^\/+|\/+$/g, '');
    const item = collection === BLOCKED_PATH ? '{watcher}' : '{contact}';
    if (rest === '') {
      if (method !== 'GET' && method !== 'HEAD') throw new Problem(405, 'METHOD_NOT_ALLOWED', `${collection} accepts GET, not ${method}`, { allow: 'GET' });
      if (collection === BLOCKED_PATH) return { status: 200, body: { blocked: (await listBlocks(opts.sql, user)).map(jsonOf) } };
      return { status: 200, body: { uri: `sip:${listResource(user)}`, contacts: (await listContacts(opts.sql, user)).map(contactJson) } };
    }
    if (rest.includes('/')) throw new Problem(404, 'NOT_FOUND', `nothing is served at ${url.pathname}; use ${collection}/${item}`);
    let text: string;
    try {
      text = decodeURIComponent(rest);
    } catch {
      throw new Problem(400, 'BAD_PATH', `the path ${url.pathname} has a malformed percent-encoding`);
    }
    const address = watcherAddress(text, opts.domain);
    if (!['GET', 'HEAD', 'PUT', 'DELETE'].includes(method)) {
      throw new Problem(405, 'METHOD_NOT_ALLOWED', `${collection}/${item} accepts GET, PUT and DELETE, not ${method}`, { allow: 'GET, PUT, DELETE' });
    }
    return collection === BLOCKED_PATH ? blocked(method, user, address) : contacts(method, user, address);
  }

  async function contacts(method: string, user: string, member: string): Promise<{ status: number; body?: unknown }> {
    switch (method) {
      case 'PUT': {
        const federation = { domain: opts.domain, ...(opts.outboundRefusal === undefined ? {} : { outboundRefusal: opts.outboundRefusal }) };
        const { contact, created } = await addToContacts(opts.sql, user, member, now(), { userExists: opts.userExists, federation });
        if (created) opts.onContactsChanged?.(user);
        return { status: created ? 201 : 200, body: contactJson(contact) };
      }
      case 'DELETE':
        await removeFromContacts(opts.sql, user, member);
        opts.onContactsChanged?.(user);
        return { status: 204 };
      default:
        return { status: 200, body: contactJson(await requireContact(opts.sql, user, member)) };
    }
  }

  async function blocked(method: string, user: string, watcher: string): Promise<{ status: number; body?: unknown }> {
    switch (method) {
      case 'GET':
      case 'HEAD':
        return { status: 200, body: jsonOf(await requireBlock(opts.sql, user, watcher)) };
      case 'PUT': {
        const { block, created } = await blockWatcher(opts.sql, user, watcher, now());
        if (created) {
          opts.logger.info({ user, watcher }, '%s blocked %s', user, watcher);
          opts.onBlocksChanged?.();
        }
        return { status: created ? 201 : 200, body: jsonOf(block) };
      }
      default:
        await unblockWatcher(opts.sql, user, watcher, now());
        opts.logger.info({ user, watcher }, '%s unblocked %s', user, watcher);
        opts.onBlocksChanged?.();
        return { status: 204 };
    }
  }
}

function contactJson(contact: Contact): { contact: string; displayName: string | null; since: string; remote: boolean } {
  return { contact: contact.member, displayName: contact.displayName, since: contact.since.toISOString(), remote: contact.remote };
}

function jsonOf(block: PresenceBlock): { watcher: string; since: string } {
  return { watcher: block.watcher, since: block.since.toISOString() };
}
