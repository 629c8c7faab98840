// Which mailbox connector holds a user's mailbox: the embedded store by default, or an external
// EWS server (Exchange or compatible) or IMAP server configured per domain or per user
// (ARCHITECTURE.md: the pipeline knows mailboxes only through MailboxConnector).
import { readFileSync } from 'node:fs';
import type { EwsVersion, ImapSignIn, MailboxConnector } from '../mailbox/index.ts';
import { EwsMailboxConnector, ImapMailboxConnector } from '../mailbox/index.ts';

/** An external EWS server as the configuration names it. */
export interface EwsServerConfig {
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

export type MailboxServerConfig = EwsServerConfig | ImapServerConfig;

/**
 * `mailboxes` in the config file:
 * `{ "servers": { "exchange": { "url": …, "username": …, "passwordFile": … } },
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

/** The routing the server builds from its config, which owns its connectors. */
export interface ConfiguredMailboxRouting extends MailboxRouting {
  /** closes the connections the connectors keep (IMAP), once nothing delivers any more */
  close(): Promise<void>;
}

export function createMailboxRouting(config: MailboxesConfig, embedded: MailboxConnector): ConfiguredMailboxRouting {
  const connectors = new Map<string, MailboxConnector>([[EMBEDDED, embedded]]);
  const kept: ImapMailboxConnector[] = [];
  for (const [name, server] of Object.entries(config.servers ?? {})) {
    switch (server.kind) {
      case 'imap': {
        const imap = imapConnector(server);
        kept.push(imap);
        connectors.set(name, imap);
        break;
      }
      case undefined:
      case 'ews':
        connectors.set(
          name,
          new EwsMailboxConnector({
            url: server.url,
            username: server.username,
            password: secret(server.password, server.passwordFile),
            access: server.access ?? 'impersonation',
            ...(server.version !== undefined ? { version: server.version } : {}),
            timeoutMs: (server.timeout ?? 30) * 1000,
          }),
        );
        break;
    }
  }
  const pick = (name: string): { name: string; connector: MailboxConnector } => {
    const connector = connectors.get(name);
    // config validation guarantees the names exist; this is the last line of defence
    if (connector === undefined) throw new Error(`mailbox server ${name} is not configured`);
    return { name, connector };
  };
  return {
    close: async () => {
      await Promise.all(kept.map((c) => c.close()));
    },
    connectorFor(address) {
      const user = config.users?.[address];
      if (user !== undefined) return pick(user);
      const domain = config.domains?.[address.slice(address.lastIndexOf('@') + 1)];
      return pick(domain ?? EMBEDDED);
    },
  };
}

/** A secret given inline or as a file (its content, trimmed). */
function secret(inline: string | undefined, file: string | undefined): string {
  return inline ?? (file !== undefined ? readFileSync(file, 'utf8').trim() : '');
}

function imapConnector(server: ImapServerConfig): ImapMailboxConnector {
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
    timeoutMs: (server.timeout ?? 30) * 1000,
    ...(server.maxConnections !== undefined ? { maxConnections: server.maxConnections } : {}),
  });
}
