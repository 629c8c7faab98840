// Signed-in IMAP connections, kept and reused per mailbox. An IMAP session acts for one user (a
// master user signs in *as* the mailbox's owner), so a connection serves one mailbox; the offline
// pipeline writes the same few mailboxes again and again (a user's Missed item, the sender's copy,
// history items), and a connection saves the TCP, TLS and sign-in round trips (and the server's
// authentication work) on each. Commands on one connection run one at a time (IMAP's selected
// folder is connection state), so uses of a mailbox queue. A connection that fails, is closed by
// the server, or stays idle for `idleMs` is dropped; beyond `maxConnections` the least recently
// used idle ones are closed (busy ones are never interrupted: the count may exceed the limit while
// more mailboxes than that are written at once).
import type { ImapFlow, ImapFlowOptions } from 'imapflow';
import type { ImapEndpoint } from './endpoint.ts';

/** How the connection for one mailbox signs in. */
export interface ImapLogin {
  user: string;
  pass: string;
  /** SASL PLAIN's authorization identity: sign in as `user`, act as `authzid` */
  authzid?: string;
  /** for the error messages: `parley for alice@example.com (Dovecot master user)` */
  describe: string;
}

export interface ImapSessionsOptions {
  endpoint: ImapEndpoint;
  /** PEM CA certificates to trust instead of the system's */
  ca?: string | Buffer | undefined;
  /** connect, greeting and inactivity timeout of each connection */
  timeoutMs: number;
  idleMs: number;
  maxConnections: number;
  /** the sign-in for a mailbox; throws (a MailboxError) when there is none */
  login: (mailbox: string) => ImapLogin;
}

interface Session {
  client: ImapFlow | undefined;
  /** the last queued use: the next one starts after it */
  tail: Promise<unknown>;
  busy: number;
  lastUsed: number;
  idle: NodeJS.Timeout | undefined;
}

export class ImapSessions {
  readonly #o: ImapSessionsOptions;
  readonly #sessions = new Map<string, Session>();
  #closed = false;

  constructor(opts: ImapSessionsOptions) {
    this.#o = opts;
  }

  /**
   * Runs `work` with a signed-in connection for `mailbox`, after any earlier use of that mailbox.
   * `signIn` errors come from connect() (the caller maps them); the connection stays open for the
   * next use unless it failed.
   */
  use<T>(mailbox: string, work: (client: ImapFlow, login: ImapLogin) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the IMAP connector is closed'));
    let session = this.#sessions.get(mailbox);
    if (session === undefined) {
      session = { client: undefined, tail: Promise.resolve(), busy: 0, lastUsed: 0, idle: undefined };
      this.#sessions.set(mailbox, session);
    }
    const s = session;
    s.busy++;
    clearTimeout(s.idle);
    const run = s.tail.then(async () => {
      const login = this.#o.login(mailbox);
      if (s.client === undefined || !s.client.usable) {
        s.client = undefined;
        s.client = await this.#connect(mailbox, login, s);
      }
      const client = s.client;
      try {
        return await work(client, login);
      } finally {
        // a failure that broke the connection: the next use opens another
        if (!client.usable) this.#drop(s, client);
      }
    });
    s.tail = run.catch(() => undefined);
    return run.finally(() => {
      s.busy--;
      s.lastUsed = Date.now();
      if (s.busy === 0) {
        s.idle = setTimeout(() => this.#close(mailbox, s), this.#o.idleMs);
        s.idle.unref();
      }
      this.#trim();
    });
  }

  /** Closes every connection (a clean LOGOUT where the connection is idle). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sessions.entries()].map(async ([mailbox, s]) => {
      await s.tail;
      await this.#close(mailbox, s);
    }));
  }

  /** How many connections are open (for the tests and the metrics). */
  get open(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.client !== undefined) n++;
    return n;
  }

  async #connect(mailbox: string, login: ImapLogin, s: Session): Promise<ImapFlow> {
    const { endpoint, ca, timeoutMs } = this.#o;
    const options: ImapFlowOptions = {
      host: endpoint.host,
      port: endpoint.port,
      secure: endpoint.secure,
      // imap:// off loopback: STARTTLS or nothing (imapflow refuses when the server does not offer it)
      doSTARTTLS: endpoint.secure ? undefined : endpoint.starttls,
      tls: { rejectUnauthorized: true, ...(ca !== undefined ? { ca } : {}) },
      auth: { user: login.user, pass: login.pass, ...(login.authzid !== undefined ? { authzid: login.authzid, loginMethod: 'AUTH=PLAIN' } : {}) },
      logger: false,
      disableAutoIdle: true,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      clientInfo: { name: 'Parley' },
    };
    // loaded by the first connection: a server without IMAP mailboxes never loads it (memory)
    const { ImapFlow: Client } = await import('imapflow');
    const client = new Client(options);
    // an unhandled 'error' event would end the process; a failed connection is simply dropped
    client.on('error', () => this.#drop(s, client));
    client.on('close', () => this.#drop(s, client));
    try {
      await client.connect();
    } catch (error) {
      client.close();
      throw error;
    }
    if (this.#closed || this.#sessions.get(mailbox) !== s) {
      client.close();
      throw new Error('the IMAP connector is closed');
    }
    return client;
  }

  #drop(s: Session, client: ImapFlow): void {
    if (s.client === client) s.client = undefined;
    client.close();
  }

  async #close(mailbox: string, s: Session): Promise<void> {
    if (s.busy > 0) return;
    clearTimeout(s.idle);
    if (this.#sessions.get(mailbox) === s) this.#sessions.delete(mailbox);
    const client = s.client;
    s.client = undefined;
    if (client === undefined) return;
    await client.logout().catch(() => client.close());
  }

  /** Closes the least recently used idle connections beyond maxConnections. */
  #trim(): void {
    const open = [...this.#sessions.entries()].filter(([, s]) => s.client !== undefined);
    let excess = open.length - this.#o.maxConnections;
    if (excess <= 0) return;
    for (const [mailbox, s] of open.filter(([, s]) => s.busy === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed)) {
      if (excess-- <= 0) break;
      void this.#close(mailbox, s);
    }
  }
}
