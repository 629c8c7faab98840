// Which mailbox connector holds a user's mailbox: the embedded store by default, or an external
// EWS server (Exchange or compatible) configured per domain or per user (ARCHITECTURE.md: the
// pipeline knows mailboxes only through MailboxConnector).
import { readFileSync } from 'node:fs';
import type { EwsVersion, MailboxConnector } from '../mailbox/index.ts';
import { EwsMailboxConnector } from '../mailbox/index.ts';

/** An external EWS server as the configuration names it. */
export interface EwsServerConfig {
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
 * `mailboxes` in the config file:
 * `{ "servers": { "exchange": { "url": …, "username": …, "passwordFile": … } },
 *    "domains": { "parley.local": "exchange" }, "users": { "bob@parley.local": "embedded" } }`
 * A user entry wins over a domain entry; anything unnamed uses the embedded mailbox.
 */
export interface MailboxesConfig {
  servers?: Record<string, EwsServerConfig>;
  domains?: Record<string, string>;
  users?: Record<string, string>;
}

export const EMBEDDED = 'embedded';

export interface MailboxRouting {
  /** the connector of `address` and its name (for the trace) */
  connectorFor(address: string): { name: string; connector: MailboxConnector };
}

export function createMailboxRouting(config: MailboxesConfig, embedded: MailboxConnector): MailboxRouting {
  const connectors = new Map<string, MailboxConnector>([[EMBEDDED, embedded]]);
  for (const [name, server] of Object.entries(config.servers ?? {})) {
    const password = server.password ?? (server.passwordFile !== undefined ? readFileSync(server.passwordFile, 'utf8').trim() : '');
    connectors.set(
      name,
      new EwsMailboxConnector({
        url: server.url,
        username: server.username,
        password,
        access: server.access ?? 'impersonation',
        ...(server.version !== undefined ? { version: server.version } : {}),
        timeoutMs: (server.timeout ?? 30) * 1000,
      }),
    );
  }
  const pick = (name: string): { name: string; connector: MailboxConnector } => {
    const connector = connectors.get(name);
    // config validation guarantees the names exist; this is the last line of defence
    if (connector === undefined) throw new Error(`mailbox server ${name} is not configured`);
    return { name, connector };
  };
  return {
    connectorFor(address) {
      const user = config.users?.[address];
      if (user !== undefined) return pick(user);
      const domain = config.domains?.[address.slice(address.lastIndexOf('@') + 1)];
      return pick(domain ?? EMBEDDED);
    },
  };
}
