// Missed Conversations and Conversation History for the web client, over the embedded mailbox
// (the same store and code EWS serves). JSON in, JSON out, problem JSON with a stable `code`.
//
//   GET  /api/conversations?kind=missed|history|all&q=&page=1&pageSize=20
//        → 200 {"items": [{"id", "kind", "subject", "with": {"address", "displayName"}, "received", "unread", "preview"}],
//               "page", "pageSize", "total", "unreadMissed"}      newest first; q searches subject and text
//   GET  /api/conversations/{id}       → 200 the item plus "html" (sanitised) and "text" | 404 CONVERSATION_NOT_FOUND
//   POST /api/conversations/{id}/read  → 204; the item is read in the mailbox, for every device: the
//                                         message-summary subscribers get their NOTIFY, as after EWS UpdateItem
//   409 MAILBOX_EXTERNAL: the user's mailbox is on an external EWS server (config mailboxes); the
//   client reads it there. 401 NO_SESSION, 403 CSRF_ORIGIN: see src/session/caller.ts.

import type http from 'node:http';
import { checkContentType, discardBody } from '../admin/http/body.ts';
import { HttpProblem, INTERNAL_PROBLEM, answerJson, answerProblem, pageParams, problemOf, type HttpCaller } from '../http-json.ts';
import { MailboxError, distinguishedFolderId, findConversations, findMailbox, getItem, missedConversationSummary, updateItem, type ConversationKind, type ItemRecord } from '../mailbox/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpRoute } from '../server/http.ts';
import type { Sql } from '../storage/index.ts';
import { detailOf, otherPartyAddress, summaryOf } from './view.ts';

export const CONVERSATIONS_PATH = '/api/conversations';
export const MAX_PAGE_SIZE = 50;
const DEFAULT_PAGE_SIZE = 20;
const MAX_QUERY = 256;
const KINDS: readonly ConversationKind[] = ['missed', 'history', 'all'];

export interface ConversationsRouteOptions {
  sql: Sql;
  logger: Logger;
  product: string;
  /** who is calling (src/session: the browser session or HTTP Basic) */
  caller: HttpCaller;
  /** true when the user's mailbox is not the embedded one (config mailboxes) */
  isExternal(address: string): boolean;
  /** the directory's display name of a person, if any */
  displayName(address: string): Promise<string | null>;
  /** after an item was marked read (the EWS route's onMailboxChanged: message-summary NOTIFY); must not throw */
  onMailboxChanged?: (address: string) => void;
  now?: () => number;
}

export function createConversationsRoute(opts: ConversationsRouteOptions): HttpRoute {
  const now = opts.now ?? Date.now;
  return {
    handle(req, res, url) {
      if (url.pathname !== CONVERSATIONS_PATH && !url.pathname.startsWith(`${CONVERSATIONS_PATH}/`)) return false;
      serve(req, url).then(
        ({ status, body }) => answerJson(res, opts.product, status, body),
        (error: unknown) => {
          const problem = problemOf(error);
          if (problem === undefined) opts.logger.error({ err: error }, 'conversations request failed');
          discardBody(req);
          answerProblem(res, opts.product, problem ?? INTERNAL_PROBLEM);
        },
      );
      return true;
    },
  };

  async function serve(req: http.IncomingMessage, url: URL): Promise<{ status: number; body?: unknown }> {
    const caller = await opts.caller(req);
    if (!caller.ok) throw caller.problem;
    const user = caller.address;
    const method = req.method ?? 'GET';
    const rest = url.pathname.slice(CONVERSATIONS_PATH.length).replace(/^\/+/, '');
    const [id, action, ...more] = rest === '' ? [] : rest.split('/');
    if (more.length > 0 || (action !== undefined && action !== 'read')) throw new HttpProblem(404, 'NOT_FOUND', `nothing is served at ${url.pathname}`);
    if (action === 'read') {
      if (method !== 'POST') throw notAllowed(method, 'POST');
      // no body is needed; one that is sent must be JSON (a form post from elsewhere is refused)
      checkContentType(req);
      discardBody(req);
    } else {
      if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'GET');
      discardBody(req);
    }
    if (opts.isExternal(user)) {
      throw new HttpProblem(409, 'MAILBOX_EXTERNAL', 'your mailbox is on your organisation\'s Exchange server, not in Parley: read your conversations there (Outlook, or EWS)');
    }
    if (id === undefined) return { status: 200, body: await list(user, url.searchParams) };
    const item = await conversationItem(user, decodeId(id));
    if (action === undefined) return { status: 200, body: detailOf(item, user, await namesOf([item], user)) };
    // the same change as EWS UpdateItem message:IsRead (items.ts updateItem), then its notification
    if (!item.isRead) {
      await updateItem(opts.sql, item.mailboxId, item.id, { isRead: true }, now);
      try {
        opts.onMailboxChanged?.(user);
      } catch (err) {
        opts.logger.error({ err, user }, 'a listener of mailbox changes failed');
      }
    }
    return { status: 204 };
  }

  async function list(user: string, query: URLSearchParams) {
    const kindText = query.get('kind') ?? 'all';
    const kind = KINDS.find((k) => k === kindText);
    if (kind === undefined) throw new HttpProblem(400, 'BAD_QUERY', `kind must be one of ${KINDS.join(', ')}, not ${JSON.stringify(kindText.slice(0, 40))}`);
    const q = query.get('q') ?? '';
    if (q.length > MAX_QUERY) throw new HttpProblem(400, 'BAD_QUERY', `q has ${q.length} characters; at most ${MAX_QUERY} are searched for`);
    const { page, pageSize, offset } = pageParams(query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    const found = await findConversations(opts.sql, user, { kind, text: q, offset, max: pageSize });
    const names = await namesOf(found.items, user);
    return {
      items: found.items.map((item) => summaryOf(item, user, names)),
      page,
      pageSize,
      total: found.total,
      unreadMissed: (await missedConversationSummary(opts.sql, user)).unread,
    };
  }

  /** The directory's display names of the people the items are with, asked once each, for the pure views. */
  async function namesOf(items: readonly ItemRecord[], user: string): Promise<(address: string) => string | null> {
    const names = new Map<string, string | null>();
    for (const item of items) {
      const address = otherPartyAddress(item, user);
      if (address !== '' && !names.has(address)) names.set(address, await opts.displayName(address));
    }
    return (address) => names.get(address) ?? null;
  }

  /** The user's item in Conversation History; anything else (another's, elsewhere, malformed) is 404. */
  async function conversationItem(user: string, id: string): Promise<ItemRecord> {
    const mailbox = await findMailbox(opts.sql, user);
    if (mailbox === undefined) throw notFound();
    let item: ItemRecord;
    try {
      item = await getItem(opts.sql, mailbox.id, id);
    } catch (error) {
      // another mailbox's item is not told apart from none: ids are not probed
      if (error instanceof MailboxError && ['ID_MALFORMED', 'ITEM_NOT_FOUND', 'ACCESS_DENIED'].includes(error.code)) throw notFound();
      throw error;
    }
    if (item.folderId !== (await distinguishedFolderId(opts.sql, mailbox.id, 'conversationhistory'))) throw notFound();
    return item;
  }
}

function decodeId(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpProblem(400, 'BAD_PATH', 'the conversation id has a malformed percent-encoding');
  }
}

function notFound(): HttpProblem {
  return new HttpProblem(404, 'CONVERSATION_NOT_FOUND', 'you have no conversation with that id (it may have been deleted)');
}

function notAllowed(method: string, allow: string): HttpProblem {
  return new HttpProblem(405, 'METHOD_NOT_ALLOWED', `this path accepts ${allow}, not ${method}`, { allow });
}
