// The MailboxConnector for a mailbox on an IMAP server (Dovecot, Cyrus, any IMAP4rev1/rev2
// server; issue 17). Parley signs in as a master user for every mailbox (Dovecot's
// `user*master` login, or SASL PLAIN with an authorization identity), or with credentials an
// administrator gives per user, and APPENDs the item as an Internet message (message.ts) to the
// configured folder ("Conversation History" by default, created and subscribed when missing) or,
// for a partner's note, to INBOX: `\Seen` unset for the recipient's Missed item, set for history
// and the sender's copy.
// Idempotent by Message-ID (= the spool entry's InternetMessageId): `UID SEARCH HEADER Message-ID`
// in the folder first, APPEND only when nothing has it, so a delivery repeated after a lost answer,
// a server restart or a Parley crash finds the message instead of making a second. Limits (as for
// EWS): one delivery per id at a time, which the spool guarantees; the connector also queues the
// uses of one mailbox on its one connection (sessions.ts).
import type { ImapFlow } from 'imapflow';
import { deliveryItemError } from '../connector.ts';
import type { ConnectorCheck, DeliveryItem, DeliveryResult, MailboxConnector } from '../connector.ts';
import { MailboxError } from '../errors.ts';
import { MISSED_CLASS } from '../missed.ts';
import type { MissedSummary } from '../missed.ts';
import { imapEndpoint, imapEndpointError } from './endpoint.ts';
import { imapError } from './errors.ts';
import { CLASS_HEADER, itemMessage } from './message.ts';
import { ImapSessions } from './sessions.ts';
import type { ImapLogin } from './sessions.ts';

export const DEFAULT_IMAP_FOLDER = 'Conversation History';

/** How Parley signs in for a mailbox. */
export type ImapSignIn =
  /** Dovecot's master users (and UW-IMAP's): `mailbox<separator>username` with the master password */
  | { method: 'master'; username: string; password: string; separator?: string }
  /** SASL PLAIN with the mailbox as authorization identity (Dovecot master users, Cyrus admins, …) */
  | { method: 'authzid'; username: string; password: string }
  /** the mailbox owner's own credentials, from the administrator's list; undefined: none for that mailbox */
  | { method: 'per-user'; credentials: (mailbox: string) => { username: string; password: string } | undefined };

export interface ImapConnectorOptions {
  /** imaps://mail.example.com (TLS) or imap://mail.example.com (STARTTLS; cleartext only on loopback) */
  url: string;
  /** imap://: upgrade with STARTTLS (default: on, except to a loopback address) */
  starttls?: boolean;
  signIn: ImapSignIn;
  /** where Missed Conversations and history go (default "Conversation History") */
  folder?: string;
  /** PEM CA certificate(s) to verify the server with, instead of the system's */
  ca?: string | Buffer;
  /** connect, greeting and inactivity timeout, ms (default 30 s) */
  timeoutMs?: number;
  /** open connections kept for reuse (default 10) */
  maxConnections?: number;
  /** an unused connection is closed after this, ms (default 30 s) */
  idleMs?: number;
}

export class ImapMailboxConnector implements MailboxConnector {
  readonly #folder: string;
  readonly #server: string;
  readonly #signIn: ImapSignIn;
  readonly #sessions: ImapSessions;

  constructor(opts: ImapConnectorOptions) {
    const invalid = imapEndpointError(opts.url, opts.starttls);
    if (invalid !== undefined) throw new TypeError(invalid);
    this.#folder = opts.folder ?? DEFAULT_IMAP_FOLDER;
    this.#signIn = opts.signIn;
    this.#server = `the IMAP server ${opts.url}`;
    this.#sessions = new ImapSessions({
      endpoint: imapEndpoint(opts.url, opts.starttls),
      ca: opts.ca,
      timeoutMs: opts.timeoutMs ?? 30_000,
      idleMs: opts.idleMs ?? 30_000,
      maxConnections: opts.maxConnections ?? 10,
      login: (mailbox) => loginFor(opts.signIn, mailbox),
    });
  }

  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    const invalid = deliveryItemError(item);
    if (invalid !== undefined) throw invalid;
    const path = item.folder === 'inbox' ? 'INBOX' : this.#folder;
    const message = await itemMessage(item);
    return this.#use(item.mailbox, async (client, step) => {
      // Conversation History is made on first use; an Inbox that cannot be opened is a refusal
      await step(`SELECT "${path}"`, () => this.#select(client, path, item.folder === 'conversationhistory'));
      const earlier = await step(`SEARCH for Message-ID ${item.internetMessageId} in "${path}"`, () => findByMessageId(client, item.internetMessageId));
      if (earlier !== undefined) return { itemId: itemId(client, path, earlier), created: false };
      const appended = await step(`APPEND to "${path}"`, () => client.append(path, message, item.isRead ? ['\\Seen'] : []));
      if (appended === false) throw new MailboxError('REMOTE_UNAVAILABLE', `${this.#server} did not take the APPEND to "${path}" (the connection was not signed in)`);
      // without UIDPLUS the answer has no UID: the search finds it
      const uid = appended.uid ?? (await step('SEARCH for the appended message', () => findByMessageId(client, item.internetMessageId)));
      if (uid === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', `${this.#server} took the APPEND to "${path}" but a SEARCH does not find ${item.internetMessageId}`);
      return { itemId: itemId(client, path, uid), created: true };
    });
  }

  /** SEARCH in the folder: messages whose class header is the Missed class, and the UNSEEN ones among them. */
  async missedSummary(mailbox: string): Promise<MissedSummary> {
    return this.#use(mailbox, async (client, step) => {
      const exists = await step(`SELECT "${this.#folder}"`, () => this.#select(client, this.#folder, false));
      if (!exists) return { total: 0, unread: 0 };
      const missed = { header: { [CLASS_HEADER]: MISSED_CLASS } };
      const total = await step('SEARCH for Missed Conversations', () => countOf(client, missed));
      const unread = await step('SEARCH for unread Missed Conversations', () => countOf(client, { ...missed, seen: false }));
      return { total, unread };
    });
  }

  /**
   * `parley mailbox test`: sign-in, the mailbox (its INBOX), the folder (created and subscribed
   * when missing, as the first delivery would), and the right to write: a test message APPENDed
   * to the folder and removed at once (\Deleted, then UID EXPUNGE of that one message). A write is
   * what a delivery does, so it also finds what an ACL check would not (a full quota, a read-only
   * folder); MYRIGHTS is not used.
   */
  async check(mailbox: string): Promise<ConnectorCheck[]> {
    const steps: ConnectorCheck[] = [];
    const fail = (step: ConnectorCheck['step'], error: unknown, doing: string): ConnectorCheck[] => {
      steps.push({ step, ok: false, detail: imapError(error, doing, this.#server).message });
      return steps;
    };
    let login: ImapLogin;
    try {
      login = loginFor(this.#signIn, mailbox);
    } catch (error) {
      return fail('sign-in', error, `signing in for ${mailbox}`);
    }
    try {
      return await this.#sessions.use(mailbox, async (client) => {
        steps.push({ step: 'sign-in', ok: true, detail: `signed in to ${this.#server} as ${login.describe}` });
        let stage: ConnectorCheck['step'] = 'mailbox';
        try {
          const inbox = await client.status('INBOX', { messages: true });
          if (inbox === false) throw new MailboxError('REMOTE_REFUSED', `${this.#server} gives no STATUS of INBOX for ${mailbox}`);
          steps.push({ step: 'mailbox', ok: true, detail: `${mailbox}'s INBOX holds ${inbox.messages ?? 0} messages` });
          stage = 'folder';
          const listed = await this.#select(client, this.#folder, false);
          if (!listed) await this.#select(client, this.#folder, true);
          steps.push({ step: 'folder', ok: true, detail: listed ? `the folder "${this.#folder}" exists` : `the folder "${this.#folder}" was missing and is now created and subscribed (as the first delivery would)` });
          stage = 'write';
          steps.push({ step: 'write', ok: true, detail: await this.#writeTest(client) });
          return steps;
        } catch (error) {
          return fail(stage, error, stage === 'write' ? `writing a test message to "${this.#folder}"` : stage === 'folder' ? `finding or creating "${this.#folder}"` : `opening ${mailbox}'s mailbox`);
        }
      });
    } catch (error) {
      // the sign-in itself: a refused authorization identity means the credentials are right but not for this mailbox
      const code = (error as { serverResponseCode?: string } | null)?.serverResponseCode;
      if (code === 'AUTHORIZATIONFAILED') {
        steps.push({ step: 'sign-in', ok: true, detail: `${this.#server} accepted the credentials of ${login.describe}` });
        return fail('mailbox', error, `acting for ${mailbox}`);
      }
      return fail('sign-in', error, `signing in as ${login.describe}`);
    }
  }

  /** Logs out of every kept connection. */
  close(): Promise<void> {
    return this.#sessions.close();
  }

  /** Runs `work` on the mailbox's connection; every failure becomes a MailboxError that says what was being done. */
  async #use<T>(mailbox: string, work: (client: ImapFlow, step: <R>(doing: string, fn: () => Promise<R>) => Promise<R>) => Promise<T>): Promise<T> {
    let signedIn = false;
    try {
      return await this.#sessions.use(mailbox, (client) => {
        signedIn = true;
        return work(client, async (doing, fn) => {
          try {
            return await fn();
          } catch (error) {
            throw imapError(error, `${doing} for ${mailbox}`, this.#server);
          }
        });
      });
    } catch (error) {
      // a MailboxError already says what failed (a step, or no credentials for the mailbox)
      if (error instanceof MailboxError) throw error;
      if (signedIn) throw imapError(error, `work for ${mailbox}`, this.#server);
      throw imapError(error, `signing in as ${loginFor(this.#signIn, mailbox).describe}`, this.#server);
    }
  }

  /** SELECTs `path`; when it does not exist: creates and subscribes it (`create`), or answers false. */
  async #select(client: ImapFlow, path: string, create: boolean): Promise<boolean> {
    if (client.mailbox !== false && client.mailbox.path === path) return true;
    try {
      await client.mailboxOpen(path);
      return true;
    } catch (error) {
      if ((error as { mailboxMissing?: boolean }).mailboxMissing !== true) throw error;
      if (!create) return false;
    }
    await this.#create(client, path);
    await client.mailboxOpen(path);
    return true;
  }

  async #create(client: ImapFlow, path: string): Promise<void> {
    await client.mailboxCreate(path);
    // a folder the user's mail client does not list would hide the Missed Conversations
    await client.mailboxSubscribe(path);
  }

  async #writeTest(client: ImapFlow): Promise<string> {
    const id = `<parley-mailbox-test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}@parley.invalid>`;
    const message = Buffer.from(`Message-ID: ${id}\r\nSubject: Parley mailbox test (removed at once)\r\nFrom: <parley@parley.invalid>\r\n\r\nParley checked that it may write here.\r\n`);
    const appended = await client.append(this.#folder, message, ['\\Seen', '\\Deleted']);
    if (appended === false) throw new MailboxError('REMOTE_UNAVAILABLE', `${this.#server} did not take the test APPEND`);
    await this.#select(client, this.#folder, false);
    const uid = appended.uid ?? (await findByMessageId(client, id));
    if (uid === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', `${this.#server} took the test APPEND but a SEARCH does not find it`);
    const removed = await client.messageDelete(String(uid), { uid: true });
    const how = client.capabilities.has('UIDPLUS') ? 'UID EXPUNGE' : 'EXPUNGE (no UIDPLUS: this also removed other messages already marked \\Deleted in the folder)';
    if (!removed) return `may APPEND to "${this.#folder}", but the test message (UID ${uid}, flagged \\Deleted) could not be expunged: it goes at the folder's next EXPUNGE`;
    return `APPENDed a test message to "${this.#folder}" and removed it (${how})`;
  }
}

/** The sign-in for one mailbox. */
function loginFor(signIn: ImapSignIn, mailbox: string): ImapLogin {
  switch (signIn.method) {
    case 'master':
      return { user: `${mailbox}${signIn.separator ?? '*'}${signIn.username}`, pass: signIn.password, describe: `master user ${signIn.username} for ${mailbox}` };
    case 'authzid':
      return { user: signIn.username, pass: signIn.password, authzid: mailbox, describe: `${signIn.username} acting for ${mailbox} (SASL PLAIN authorization identity)` };
    case 'per-user': {
      const own = signIn.credentials(mailbox);
      if (own === undefined) throw new MailboxError('REMOTE_REFUSED', `no IMAP credentials for ${mailbox}: add the user to the mailbox server's credentials, or route the user to another mailbox server`);
      return { user: own.username, pass: own.password, describe: own.username === mailbox ? mailbox : `${own.username} (${mailbox})` };
    }
  }
}

/** The UID of the message in the selected folder whose Message-ID is exactly `id` (SEARCH HEADER matches substrings). */
async function findByMessageId(client: ImapFlow, id: string): Promise<number | undefined> {
  const uids = await client.search({ header: { 'Message-ID': id } }, { uid: true });
  if (uids === false || uids === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', 'the server refused the SEARCH');
  if (uids.length === 0) return undefined;
  // the message says `<id>` even where the id was given without brackets (MailComposer adds them)
  const bare = (value: string | undefined) => value?.trim().replace(/^<(.*)>$/, '$1');
  for await (const m of client.fetch(uids.join(','), { uid: true, envelope: true }, { uid: true })) {
    if (bare(m.envelope?.messageId) === bare(id)) return m.uid;
  }
  return undefined;
}

async function countOf(client: ImapFlow, query: Parameters<ImapFlow['search']>[0]): Promise<number> {
  const found = await client.search(query, { uid: true });
  if (found === false || found === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', 'the server refused the SEARCH');
  return found.length;
}

/** `Conversation History/1796622674/12`: the folder, its UIDVALIDITY and the message's UID (unique while UIDVALIDITY holds). */
function itemId(client: ImapFlow, path: string, uid: number): string {
  const validity = client.mailbox !== false ? String(client.mailbox.uidValidity) : '0';
  return `${path}/${validity}/${uid}`;
}
