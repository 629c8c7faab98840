// Which mailbox connector holds a user's mailbox: the embedded store by default, or an external
// server configured per domain or per user — an Exchange (or compatible) through EWS, or Exchange
// Online through Microsoft Graph (ARCHITECTURE.md: the pipeline knows mailboxes only through
// MailboxConnector).
import { readFileSync } from 'node:fs';
import type { EwsVersion, GraphCredential, MailboxConnector } from '../mailbox/index.ts';
import { EwsMailboxConnector, GraphMailboxConnector } from '../mailbox/index.ts';

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

export type MailboxServerConfig = EwsServerConfig | GraphServerConfig;

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
  return config.users?.[address] ?? config.domains?.[address.slice(address.lastIndexOf('@') + 1)] ?? EMBEDDED;
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

export function createMailboxRouting(config: MailboxesConfig, embedded: MailboxConnector): MailboxRouting {
  const connectors = new Map<string, MailboxConnector>([[EMBEDDED, embedded]]);
  for (const [name, server] of Object.entries(config.servers ?? {})) connectors.set(name, connectorOf(server));
  return {
    connectorFor(address) {
      const name = mailboxServerOf(config, address);
      const connector = connectors.get(name);
      // config validation guarantees the names exist; this is the last line of defence
      if (connector === undefined) throw new Error(`mailbox server ${name} is not configured`);
      return { name, connector };
    },
  };
}
