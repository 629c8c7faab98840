// The MailboxConnector for Exchange Online through Microsoft Graph (EWS is off there). Like the
// EWS connector, a delivery is idempotent by InternetMessageId: list the folder's messages with
// that id first, create only when none is found, so a repeat after a timeout or a crash finds the
// item. The item is a received message (PR_MESSAGE_FLAGS, never a draft) of the IM class
// (PR_MESSAGE_CLASS) in the well-known folder conversationhistory (a partner's note: inbox).
// Throttling: a Retry-After is honoured before this connector sends anything more to Graph; a
// wait up to maxRetryWaitMs is waited out inside the delivery (the lookup runs again first),
// a longer one fails the attempt (REMOTE_UNAVAILABLE with retryAt) and the spool schedules its next
// attempt no sooner than Graph asked.
// Limits: one delivery per id at a time (the spool guarantees it).
import { setTimeout as sleep } from 'node:timers/promises';
import { runChecks } from '../checks.ts';
import { deliveryItemError } from '../connector.ts';
import type { ConnectorCheck, DeliveryItem, DeliveryResult, MailboxConnector } from '../connector.ts';
import { MailboxError } from '../errors.ts';
import type { MissedSummary } from '../missed.ts';
import { DEFAULT_AUTHORITY_HOST, DEFAULT_GRAPH_URL, classifyGraphError, findByInternetMessageIdQuery, folderPath, graphFailure, graphScope, messageJson, missedCountQuery, parseGraphError, retryAfterMs, userPath } from './requests.ts';
import { GraphSignIn } from './sign-in.ts';
import type { GraphCredential } from './sign-in.ts';

export interface GraphConnectorOptions {
  /** the directory (tenant) id, or a verified domain of the tenant */
  tenantId: string;
  /** the application (client) id of the app registration */
  clientId: string;
  credential: GraphCredential;
  /** default https://graph.microsoft.com/v1.0 */
  graphUrl?: string;
  /** default https://login.microsoftonline.com */
  authorityHost?: string;
  /** per request, ms (default 30 s) */
  timeoutMs?: number;
  /** the longest Retry-After waited out within one delivery, ms (default 30 s; the spool's lease is 120 s) */
  maxRetryWaitMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Deliveries tried within one attempt while Graph throttles with a Retry-After short enough to wait. */
const THROTTLED_TRIES = 3;

/** The subject of `parley mailbox test`'s write check (created, then deleted for good at once). */
const TEST_SUBJECT = 'Parley mailbox test (deleted at once)';

type Json = Record<string, unknown>;

export class GraphMailboxConnector implements MailboxConnector {
  readonly #signIn: GraphSignIn;
  readonly #graphUrl: string;
  readonly #o: GraphConnectorOptions;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  /** no request goes to Graph before this time (its last Retry-After) */
  #notBefore = 0;

  constructor(opts: GraphConnectorOptions) {
    this.#o = opts;
    this.#graphUrl = (opts.graphUrl ?? DEFAULT_GRAPH_URL).replace(/\/+$/, '');
    this.#now = opts.now ?? Date.now;
    this.#fetch = opts.fetch ?? fetch;
    this.#signIn = new GraphSignIn({
      tenantId: opts.tenantId,
      clientId: opts.clientId,
      credential: opts.credential,
      authorityHost: opts.authorityHost ?? DEFAULT_AUTHORITY_HOST,
      scope: graphScope(this.#graphUrl),
      fetch: this.#fetch,
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  }

  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    const invalid = deliveryItemError(item);
    if (invalid !== undefined) throw invalid;
    return this.#throttled(async () => {
      const messages = `${folderPath(item.mailbox, item.folder)}/messages`;
      const found = await this.#request(item.mailbox, 'GET', `${messages}${findByInternetMessageIdQuery(item.internetMessageId)}`);
      const existing = firstId(found);
      if (existing !== undefined) return { itemId: existing, created: false };
      const created = await this.#request(item.mailbox, 'POST', messages, messageJson(item, new Date(this.#now())));
      if (typeof created.id !== 'string' || created.id === '') throw new MailboxError('REMOTE_UNAVAILABLE', `Graph created the item for ${item.mailbox} but returned no id`);
      return { itemId: created.id, created: true };
    });
  }

  /** Two counting lists ($count, one id returned): the Missed items of Conversation History, and the unread ones. */
  async missedSummary(mailbox: string): Promise<MissedSummary> {
    const messages = `${folderPath(mailbox, 'conversationhistory')}/messages`;
    const count = async (unread: boolean): Promise<number> => {
      const page = await this.#request(mailbox, 'GET', `${messages}${missedCountQuery(unread)}`);
      const n = page['@odata.count'];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new MailboxError('REMOTE_UNAVAILABLE', `Graph answered the count of ${mailbox}'s Missed Conversations without @odata.count`);
      return n;
    };
    const [total, unread] = await Promise.all([count(false), count(true)]);
    return { total, unread };
  }

  /**
   * sign-in: a token for the app; mailbox: the mailbox's root folder; folder: conversationhistory;
   * write: a message created there and at once deleted for good (permanentDelete, not to Deleted
   * Items), so nothing is left behind.
   */
  async check(mailbox: string): Promise<ConnectorCheck[]> {
    const conversationHistory = folderPath(mailbox, 'conversationhistory');
    return runChecks([
      {
        step: 'sign-in',
        run: async () => {
          await this.#signIn.token();
          return `the app ${this.#o.clientId} signed in to tenant ${this.#o.tenantId} (client credentials) for ${graphScope(this.#graphUrl)}`;
        },
      },
      {
        step: 'mailbox',
        run: async () => {
          await this.#request(mailbox, 'GET', `${folderPath(mailbox, 'msgfolderroot')}?$select=id`);
          return `${this.#graphUrl} opens the mailbox of ${mailbox}`;
        },
      },
      {
        step: 'folder',
        run: async () => {
          const folder = await this.#request(mailbox, 'GET', `${conversationHistory}?$select=id,displayName,totalItemCount`);
          return `found ${String(folder.displayName ?? 'conversationhistory')} (conversationhistory), ${String(folder.totalItemCount ?? '?')} items`;
        },
      },
      {
        step: 'write',
        run: async () => {
          const created = await this.#request(mailbox, 'POST', `${conversationHistory}/messages`, { subject: TEST_SUBJECT, body: { contentType: 'text', content: 'Written by parley mailbox test to check the right to write; deleted at once.' } });
          if (typeof created.id !== 'string') throw new MailboxError('REMOTE_UNAVAILABLE', 'Graph created the test message but returned no id');
          await this.#request(mailbox, 'POST', `${userPath(mailbox)}/messages/${encodeURIComponent(created.id)}/permanentDelete`);
          return 'created a message in Conversation History and deleted it for good (permanentDelete)';
        },
      },
    ]);
  }

  /** `operation` again (from its start: the lookup first) while Graph throttles with a Retry-After short enough to wait. */
  async #throttled<T>(operation: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await operation();
      } catch (error) {
        const wait = this.#notBefore - this.#now();
        if (!(error instanceof MailboxError) || error.code !== 'REMOTE_UNAVAILABLE' || wait <= 0 || wait > this.#maxWait() || tries >= THROTTLED_TRIES) throw error;
        await sleep(wait);
      }
    }
  }

  #maxWait(): number {
    return this.#o.maxRetryWaitMs ?? 30_000;
  }

  /** One Graph request (after a Retry-After has passed); a new token and once more when Graph says the token expired. */
  async #request(mailbox: string, method: 'GET' | 'POST', path: string, body?: object): Promise<Json> {
    const wait = this.#notBefore - this.#now();
    if (wait > this.#maxWait()) throw new MailboxError('REMOTE_UNAVAILABLE', `Graph throttles this app until ${new Date(this.#notBefore).toISOString()} (its Retry-After); nothing is sent before`, { retryAt: this.#notBefore });
    if (wait > 0) await sleep(wait);
    for (let fresh = false; ; fresh = true) {
      const token = await this.#signIn.token(fresh);
      let res: Response;
      try {
        res = await this.#fetch(`${this.#graphUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.#o.timeoutMs ?? 30_000),
        });
      } catch (cause) {
        throw new MailboxError('REMOTE_UNAVAILABLE', `cannot reach Graph at ${this.#graphUrl}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      }
      const text = await res.text().catch(() => '');
      if (res.ok) {
        if (text === '') return {};
        try {
          return JSON.parse(text) as Json;
        } catch (cause) {
          throw new MailboxError('REMOTE_UNAVAILABLE', `Graph answered ${method} ${path.split('?')[0] ?? ''} with HTTP ${res.status} and a body that is not JSON`, { cause });
        }
      }
      const error = parseGraphError(res.status, text);
      const after = retryAfterMs(res.headers.get('retry-after'), this.#now());
      if (after !== undefined) this.#notBefore = Math.max(this.#notBefore, this.#now() + after);
      if (classifyGraphError(error) === 'token' && !fresh) continue;
      const failure = graphFailure(error, { mailbox, clientId: this.#o.clientId, graphUrl: this.#graphUrl });
      if (after !== undefined && failure.code === 'REMOTE_UNAVAILABLE') throw new MailboxError('REMOTE_UNAVAILABLE', `${failure.message}; Retry-After ${Math.ceil(after / 1000)} s honoured`, { retryAt: this.#notBefore });
      throw failure;
    }
  }
}

function firstId(page: Json): string | undefined {
  const first: unknown = Array.isArray(page.value) ? page.value[0] : undefined;
  const id = (first as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : undefined;
}
