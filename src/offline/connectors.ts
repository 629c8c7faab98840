// Which mailbox connector holds a user's mailbox: the embedded store by default, or an external
// server configured per domain or per user — an Exchange (or compatible) through EWS, Exchange
// Online through Microsoft Graph, or an IMAP server (ARCHITECTURE.md: the pipeline knows mailboxes
// only through MailboxConnector).
import { readFileSync } from 'node:fs';
import type { EwsVersion, GraphCredential, ImapSignIn, MailboxConnector } from '../mailbox/index.ts';
import { EwsMailboxConnector, GraphMailboxConnector, ImapMailboxConnector } from '../mailbox/index.ts';

/** An external EWS server as the configuration names it. */
export interface EwsServerConfig {
  /** absent in configs from before there were other kinds */
  kind?: 'ews';
  /** https://mail.example.com/EWS/Exchange.asmx */
  url: string;
  /** the service account */
  username: string;
  /** its password, or a file holding it (preferred: keeps secrets out of the config file) */
  password?: string;
  passwordFile?: string;
  /** impersonation (default; the account needs the ApplicationImpersonation right) or delegate */
  access?: 'impersonation' | 'delegate';
  version?: EwsVersion;
  /** per request, seconds (default 30) */
  timeout?: number;
}

/** Exchange Online through Microsoft Graph, as the configuration names it: an app registration and its credential. */
export interface GraphServerConfig {
  kind: 'graph';
  /** the directory (tenant) id */
  tenantId: string;
  /** the application (client) id */
  clientId: string;
  /** a client secret (inline or in a file), or a certificate (PEM file) with its private key (inline or in a file) */
  clientSecret?: string;
  clientSecretFile?: string;
  certificateFile?: string;
  privateKey?: string;
  privateKeyFile?: string;
  /** default https://graph.microsoft.com/v1.0 (a national cloud's Graph, or a test stand-in) */
  graphUrl?: string;
  /** default https://login.microsoftonline.com */
  authorityHost?: string;
  /** per request, seconds (default 30) */
  timeout?: number;
}

/**
 * An IMAP server (Dovecot, Cyrus, …): `{ "kind": "imap", "url": "imaps://mail.example.com",
 * "username": "parley", "passwordFile": "/etc/parley/imap.pw" }` signs in as a Dovecot master user.
 */
export interface ImapServerConfig {
  kind: 'imap';
  /** imaps://host[:993] or imap://host[:143] (STARTTLS; cleartext only to a loopback address) */
  url: string;
  /** imap://: upgrade with STARTTLS (default true, except to a loopback address; false only there) */
  starttls?: boolean;
  /** master (default): `mailbox*username`; authzid: SASL PLAIN as username for the mailbox; per-user: credentials */
  signIn?: 'master' | 'authzid' | 'per-user';
  /** the master (or admin) account, with password or passwordFile (master and authzid) */
  username?: string;
  password?: string;
  passwordFile?: string;
  /** between the mailbox and the master user (Dovecot's auth_master_user_separator; default "*") */
  masterSeparator?: string;
  /** per-user: mailbox address → password, or { username, password } when the login name differs; inline or a JSON file */
  credentials?: Record<string, ImapCredential>;
  credentialsFile?: string;
  /** where Missed Conversations and history go (default "Conversation History") */
  folder?: string;
  /** a PEM file of the CA(s) the server's certificate is checked against (default: the system's) */
  ca?: string;
  /** connect, greeting and inactivity timeout, seconds (default 30) */
  timeout?: number;
  /** connections kept open for reuse (default 10) */
  maxConnections?: number;
}

export type ImapCredential = string | { username: string; password: string };

export type MailboxServerConfig = EwsServerConfig | GraphServerConfig | ImapServerConfig;

/**
 * `mailboxes` in the config file:
 * `{ "servers": { "exchange": { "url": …, "username": …, "passwordFile": … },
 *                 "online": { "kind": "graph", "tenantId": …, "clientId": …, "clientSecretFile": … } },
 *    "domains": { "parley.local": "exchange" }, "users": { "bob@parley.local": "embedded" } }`
 * A user entry wins over a domain entry; anything unnamed uses the embedded mailbox.
 */
export interface MailboxesConfig {
  servers?: Record<string, MailboxServerConfig>;
  domains?: Record<string, string>;
  users?: Record<string, string>;
}

export const EMBEDDED = 'embedded';

export interface MailboxRouting {
  /** the connector of `address` and its name (for the trace) */
  connectorFor(address: string): { name: string; connector: MailboxConnector };
}

/** The name of the mailbox server that holds `address`'s mailbox (EMBEDDED when none is configured for it). */
export function mailboxServerOf(config: MailboxesConfig, address: string): string {
  return own(config.users, address) ?? own(config.domains, address.slice(address.lastIndexOf('@') + 1)) ?? EMBEDDED;
}

/** `record[key]` when it is the record's own (not `constructor` or `toString` of every object). */
function own(record: Record<string, string> | undefined, key: string): string | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** A secret given inline or in a file (the file's content, trimmed of its final newline). */
function secret(inline: string | undefined, file: string | undefined): string {
  return inline ?? (file !== undefined ? readFileSync(file, 'utf8').trim() : '');
}

function connectorOf(server: MailboxServerConfig): MailboxConnector {
  const timeoutMs = (server.timeout ?? 30) * 1000;
  switch (server.kind ?? 'ews') {
    case 'graph': {
      const g = server as GraphServerConfig;
      const credential: GraphCredential =
        g.certificateFile !== undefined ? { certificate: readFileSync(g.certificateFile, 'utf8'), privateKey: secret(g.privateKey, g.privateKeyFile) } : { clientSecret: secret(g.clientSecret, g.clientSecretFile) };
      return new GraphMailboxConnector({
        tenantId: g.tenantId,
        clientId: g.clientId,
        credential,
        ...(g.graphUrl !== undefined ? { graphUrl: g.graphUrl } : {}),
        ...(g.authorityHost !== undefined ? { authorityHost: g.authorityHost } : {}),
        timeoutMs,
      });
    }
    case 'imap':
      return imapConnector(server as ImapServerConfig, timeoutMs);
    case 'ews': {
      const e = server as EwsServerConfig;
      return new EwsMailboxConnector({
        url: e.url,
        username: e.username,
        password: secret(e.password, e.passwordFile),
        access: e.access ?? 'impersonation',
        ...(e.version !== undefined ? { version: e.version } : {}),
        timeoutMs,
      });
    }
  }
}

function imapConnector(server: ImapServerConfig, timeoutMs: number): ImapMailboxConnector {
  const method = server.signIn ?? 'master';
  let signIn: ImapSignIn;
  if (method === 'per-user') {
    // read once at start, like every secret file: a changed file takes a restart
    const given = server.credentials ?? (JSON.parse(readFileSync(server.credentialsFile ?? '', 'utf8')) as Record<string, ImapCredential>);
    const credentials = new Map(Object.entries(given).map(([address, c]) => [address.toLowerCase(), typeof c === 'string' ? { username: address, password: c } : c]));
    signIn = { method, credentials: (mailbox) => credentials.get(mailbox.toLowerCase()) };
  } else {
    const account = { username: server.username ?? '', password: secret(server.password, server.passwordFile) };
    signIn = method === 'master' ? { method, ...account, ...(server.masterSeparator !== undefined ? { separator: server.masterSeparator } : {}) } : { method, ...account };
  }
  return new ImapMailboxConnector({
    url: server.url,
    ...(server.starttls !== undefined ? { starttls: server.starttls } : {}),
    signIn,
    ...(server.folder !== undefined ? { folder: server.folder } : {}),
    ...(server.ca !== undefined ? { ca: readFileSync(server.ca) } : {}),
    timeoutMs,
    ...(server.maxConnections !== undefined ? { maxConnections: server.maxConnections } : {}),
  });
}

/** The routing the server builds from its config, which owns its connectors. */
export interface ConfiguredMailboxRouting extends MailboxRouting {
  /** closes the connections the connectors keep (IMAP), once nothing delivers any more */
  close(): Promise<void>;
}

/**
 * The routing of `config`. connectorFor is on the path of every offline MESSAGE (the quotas ask it
 * for the sender's and the recipient's mailbox): the users and domains it routes are looked up in
 * Maps made once (an address as a key of the config's plain objects costs a slow dictionary
 * lookup), and it answers one object per connector, made once, not one per call.
 */
export function createMailboxRouting(config: MailboxesConfig, embedded: MailboxConnector): ConfiguredMailboxRouting {
  const connectors = new Map<string, MailboxConnector>([[EMBEDDED, embedded]]);
  for (const [name, server] of Object.entries(config.servers ?? {})) connectors.set(name, connectorOf(server));
  const answers = new Map([...connectors].map(([name, connector]) => [name, Object.freeze({ name, connector })]));
  const users = new Map(Object.entries(config.users ?? {}));
  const domains = new Map(Object.entries(config.domains ?? {}));
  const embeddedAnswer = answers.get(EMBEDDED) as { name: string; connector: MailboxConnector };
  return {
    close: async () => {
      await Promise.all([...connectors.values()].map((c) => (c instanceof ImapMailboxConnector ? c.close() : undefined)));
    },
    connectorFor(address) {
      // what mailboxServerOf says, from the Maps
      const name = users.get(address) ?? (domains.size === 0 ? undefined : domains.get(address.slice(address.lastIndexOf('@') + 1))) ?? EMBEDDED;
      if (name === EMBEDDED) return embeddedAnswer;
      const answer = answers.get(name);
      // config validation guarantees the names exist; this is the last line of defence
      if (answer === undefined) throw new Error(`mailbox server ${name} is not configured`);
      return answer;
    },
  };
}
