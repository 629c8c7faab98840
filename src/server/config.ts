// Server configuration: defaults, then the config file (JSON), then command-line flags. Validated
// once at start-up with messages that name the setting, then frozen.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseByteSize, UNLIMITED } from '../bytes.ts';
import type { MailboxQuotaLimits, SmtpRoutes } from '../mailbox/index.ts';
import { DEFAULT_MAILBOX_QUOTA, EWS_VERSIONS, imapEndpointError } from '../mailbox/index.ts';
import type { MailboxesConfig, SpoolQuotaLimits } from '../offline/index.ts';
import { DEFAULT_SPOOL_QUOTA } from '../offline/index.ts';
import { ParleyError } from '../errors.ts';
import { LOG_LEVELS, type LogLevel } from '../observability/logger.ts';
import { DEFAULT_REGISTRAR_SETTINGS, type RegistrarSettings } from '../registrar/plan.ts';
import { DEFAULT_CONNECTION_LIMITS, DIGEST_ALGORITHMS, type DigestAlgorithm } from '../sip/index.ts';
import { DEFAULT_SUBSCRIBE_EXPIRY } from '../events/index.ts';
import { DEFAULT_SUBSCRIPTION_LIMITS, type SubscriptionLimits } from '../events/index.ts';
import { DEFAULT_PUBLISH_EXPIRY, type ExpirySettings, MAX_PUBLISH_BODY } from '../presence/index.ts';
import type { AcmeSettings } from '../certs/index.ts';
import { isWildcardAddress } from '../sip/index.ts';
import { formatAuthority, parseHostHeader } from './own-names.ts';
import { DEFAULT_RETENTION, parseDuration, type RetentionPolicy } from '../retention/index.ts';
import { formatOrigin, parseOrigin } from './origins.ts';
import { isPostgresUrl } from '../storage/index.ts';
import { checkNodeId, ClusterError, parseRedisAddress } from '../cluster/index.ts';

export interface ServerConfig {
  domain: string;
  listen: string;
  sipPort: number;
  sipsPort: number;
  httpPort: number;
  /**
   * HTTPS and SIP over secure WebSocket (wss://…/sip) with the certificate of SIP over TLS; null: off.
   * The plain HTTP port stays (loopback use, ACME's HTTP-01 challenges).
   */
  httpsPort: number | null;
  /** inbound SMTP for mail from other organisations; null: off */
  smtpPort: number | null;
  /**
   * where mail to other organisations goes: { domains: { 'partner.example': { host, port } }, smarthost: { host, port }, mx: true };
   * a domain without a route, when there is no smarthost, goes to its MX hosts on port 25 unless mx is false
   */
  smtpRoutes: SmtpRoutes;
  /**
   * DNS servers the server asks (MX and A/AAAA of outbound mail; the federation link's SRV and
   * A/AAAA unless federation.dnsServers names others), `host` or `host:port`; []: the system resolver's servers
   */
  dnsServers: string[];
  dataDir: string;
  /**
   * null: the SQLite file in dataDir (one process). `postgres://user@host:port/db`: PostgreSQL, the
   * shared state of a cluster's nodes (a password is better in PGPASSWORD or ~/.pgpass than here).
   */
  database: string | null;
  /** PEM files; SIP over TLS runs only when both are set; reloaded when they change or on SIGHUP (src/certs) */
  tls: { cert: string; key: string } | null;
  /** certificates from an ACME CA (HTTP-01 on the HTTP port), kept in `<dataDir>/secrets/`; instead of tls; null: off */
  acme: AcmeSettings | null;
  logLevel: LogLevel;
  /** seconds a SIGTERM/SIGINT drain may take before the process exits anyway (src/cli.ts) */
  shutdownTimeout: number;
  registrar: RegistrarSettings;
  messaging: { maxBody: number; deviceTimeout: number };
  /** the offline-IM pipeline's mechanics (its policy is in CsImConfiguration) */
  offlineIm: OfflineImConfig;
  /** Conversation History's mechanics (its policy is EnableIMAutoArchiving, ConversationIdleTimeout, UnreadMissedTimeout) */
  history: { commitWindowMs: number };
  /** where users' mailboxes are: embedded by default, or external EWS servers per domain or user */
  mailboxes: MailboxesConfig;
  /** limits of every embedded mailbox, bytes (Exchange's Set-Mailbox quotas; src/mailbox/quota.ts) */
  mailboxQuota: MailboxQuotaLimits;
  sip: {
    t1: number;
    t2: number;
    t4: number;
    nonceLifetime: number;
    digestAlgorithms: DigestAlgorithm[];
    /** refuse digest credentials whose uri is not the Request-URI (RFC 7616 §3.4.6) */
    checkDigestUri: boolean;
    /** limits of SIP connections over TCP, TLS and WebSocket (src/sip/transport/guard.ts) */
    connections: ConnectionSettings;
    /**
     * host[:port] the server names itself by in the Via and Contact it writes (and the EWS URL of
     * provisioning, without publicUrl): for a server behind NAT or listening on every interface; null: the local address of each flow
     */
    advertise: string | null;
  };
  /** durations of presence publications (RFC 3903) and subscriptions (RFC 3856), seconds */
  presence: { publishExpiry: ExpirySettings; subscribeExpiry: ExpirySettings };
  /** more names clients reach this server at (a reverse proxy's): a Host naming one may appear in URLs given back (src/server/own-names.ts) */
  publicHosts: string[];
  /**
   * the base URL clients use for HTTP and the SIP WebSocket (`https://chat.example.com`): every URL
   * given to a client names it (src/server/own-names.ts); null: the request's Host when it is one
   * of ours, else the connection's local address
   */
  publicUrl: string | null;
  /** limits on live subscriptions (RFC 6665), every event package: per watcher and resource, per watcher, per resource */
  events: SubscriptionLimits;
  /** sign-in protection: lockouts of sources and accounts, the HTTP password-hashing queue */
  auth: AuthConfig;
  /** the web client's HTTP side (src/session) */
  web: WebConfig;
  /** how long history is kept (delivered offline messages, trace, audit, the mailbox change log) and how it is purged (src/retention) */
  retention: RetentionPolicy;
  /**
   * The federation link with partner organisations (src/federation): its own mutual-TLS port.
   * null: off, and every other domain is refused (403) whatever CsAccessEdgeConfiguration says.
   */
  federation: FederationConfig | null;
  /**
   * Cluster mode (issue 16): this process is one node of several sharing `database` (PostgreSQL,
   * required) and Redis (location, node registry, events between nodes). null: one process.
   */
  cluster: ClusterConfig | null;
}

/** `cluster` in the config file, or `--cluster NODE-ID --redis URL`. */
export interface ClusterConfig {
  /** this node's name among the nodes: letters, digits, `._-`, unique in the cluster (part of Redis keys) */
  nodeId: string;
  /** Redis: `redis://…`, `rediss://…`, `unix:///…`, `redis-sentinel://…`, or the object form (src/cluster/redis.ts) */
  redis: string | Record<string, unknown>;
  /**
   * host:port the other nodes reach this node's SIP TCP listener at (relayed requests); null:
   * sip.advertise's host, else the listen address, with the SIP port
   */
  sipAddress: string | null;
}

/** `federation` in the config file. Who may talk to which partner is administration (CsAccessEdgeConfiguration…), not config. */
export interface FederationConfig {
  /**
   * The name partners reach this server by: the target of the organisation's
   * `_sipfederationtls._tcp.<domain>` SRV record (or the ProxyFqdn partners configure), a DNS name
   * in the certificate. Via and Record-Route name it towards partners.
   */
  fqdn: string;
  /** address the federation port listens on; default: `listen` */
  listen: string | null;
  /** default 5061 (as Skype for Business's Edge); 0: any free port */
  port: number;
  /** PEM files of this server's certificate towards partners (server and client alike), reloaded when they change */
  cert: string;
  key: string;
  /** PEM bundle of the CAs partners' certificates must chain to; null: the system's CAs */
  ca: string | null;
  /** DNS servers for partners' SRV/A/AAAA records, `host` or `host:port`, when they are not the top-level dnsServers; []: the top-level dnsServers */
  dnsServers: string[];
  /** seconds a connection to a partner may take (TCP and TLS handshake) before the partner counts as unreachable */
  connectTimeout: number;
}

export interface WebConfig {
  /**
   * origins besides the server's own (its names × the HTTP port, http and https) whose pages may
   * use a browser session and open SIP over WebSocket: a reverse proxy's `https://chat.example.com`
   */
  allowedOrigins: string[];
}

export interface AuthConfig {
  /** thresholds in failed sign-ins, durations in seconds (src/auth/lockout.ts) */
  lockout: { sourceThreshold: number; accountThreshold: number; window: number; duration: number; maxDuration: number };
  /** scrypt runs at once for HTTP Basic; waiting ones in all, and per source (running included) */
  hashConcurrency: number;
  hashQueue: number;
  hashQueuePerSource: number;
  /** seconds a verified HTTP Basic password is remembered; 0: never */
  credentialCache: number;
  /** HTTP peers (a local TLS proxy) whose X-Forwarded-For names the client */
  trustedProxies: string[];
}

/** Limits of SIP's stream connections (TCP, TLS, WebSocket): see src/sip/transport/guard.ts. */
export interface ConnectionSettings {
  /** seconds a connection may stay silent; one carrying a registration or subscription lives at least until it expires */
  idleTimeout: number;
  /** seconds a message may take to arrive whole once it began (a TLS handshake too) */
  messageTimeout: number;
  /** open connections from one address (IPv6: one /64) */
  maxPerSource: number;
  /** open connections in all; kept under the process's open-file limit */
  maxTotal: number;
  /** bytes of unfinished messages held for connections on which nothing authenticated yet, all together */
  unauthenticatedBufferBudget: number;
}

const CONNECTION_DEFAULTS: ConnectionSettings = {
  idleTimeout: DEFAULT_CONNECTION_LIMITS.idleTimeoutMs / 1000,
  messageTimeout: DEFAULT_CONNECTION_LIMITS.messageTimeoutMs / 1000,
  maxPerSource: DEFAULT_CONNECTION_LIMITS.maxPerSource,
  maxTotal: DEFAULT_CONNECTION_LIMITS.maxTotal,
  unauthenticatedBufferBudget: DEFAULT_CONNECTION_LIMITS.unauthenticatedBufferBudget,
};

export interface OfflineImConfig {
  /** group commit: how long accepted messages gather before one durable write, ms */
  commitWindowMs: number;
  commitMaxBatch: number;
  /** spool entries delivered per round */
  deliveryBatch: number;
  /** retry back-off: first wait and longest wait, seconds */
  retryBase: number;
  retryMax: number;
  /** IANA time zone of the times in transcripts */
  timeZone: string;
  /**
   * seconds a worker holds the spool entries it takes: a node that dies while delivering leaves them
   * to another node once this has passed (the mailbox item's id keeps the delivery exactly once)
   */
  deliveryLease: number;
  /** what one sender may have undelivered in the spool, and leave a minute (src/offline/quota.ts) */
  senderQuota: SpoolQuotaLimits['sender'];
  /** what one recipient may have undelivered in the spool */
  recipientQuota: SpoolQuotaLimits['recipient'];
}

export const DEFAULT_CONFIG: ServerConfig = {
  domain: 'parley.local',
  listen: '127.0.0.1',
  sipPort: 5060,
  sipsPort: 5061,
  httpPort: 8080,
  httpsPort: null,
  smtpPort: null,
  smtpRoutes: {},
  dnsServers: [],
  dataDir: './data',
  database: null,
  tls: null,
  acme: null,
  logLevel: 'info',
  shutdownTimeout: 10,
  registrar: DEFAULT_REGISTRAR_SETTINGS,
  messaging: { maxBody: 64 * 1024, deviceTimeout: 10 },
  offlineIm: {
    commitWindowMs: 2, commitMaxBatch: 512, deliveryBatch: 64, retryBase: 5, retryMax: 300, timeZone: 'UTC', deliveryLease: 120,
    senderQuota: { ...DEFAULT_SPOOL_QUOTA.sender },
    recipientQuota: { ...DEFAULT_SPOOL_QUOTA.recipient },
  },
  // a crash loses at most one window of recorded messages: 10 ms at most
  history: { commitWindowMs: 10 },
  mailboxes: {},
  mailboxQuota: { ...DEFAULT_MAILBOX_QUOTA },
  sip: { t1: 500, t2: 4000, t4: 5000, nonceLifetime: 300, digestAlgorithms: ['SHA-256', 'MD5'], checkDigestUri: true, connections: CONNECTION_DEFAULTS, advertise: null },
  presence: { publishExpiry: { ...DEFAULT_PUBLISH_EXPIRY }, subscribeExpiry: { ...DEFAULT_SUBSCRIBE_EXPIRY } },
  publicHosts: [],
  publicUrl: null,
  events: { ...DEFAULT_SUBSCRIPTION_LIMITS },
  auth: {
    lockout: { sourceThreshold: 10, accountThreshold: 50, window: 900, duration: 60, maxDuration: 3600 },
    hashConcurrency: 2, hashQueue: 64, hashQueuePerSource: 4, credentialCache: 300, trustedProxies: [],
  },
  web: { allowedOrigins: [] },
  retention: DEFAULT_RETENTION,
  federation: null,
  cluster: null,
};

export const FEDERATION_DEFAULTS: Omit<FederationConfig, 'fqdn' | 'cert' | 'key'> = { listen: null, port: 5061, ca: null, dnsServers: [], connectTimeout: 10 };

export class ConfigError extends ParleyError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

type Check = (value: unknown, path: string) => unknown;

const port: Check = (v, path) => {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) throw new ConfigError(`${path} must be a port number from 0 to 65535 (0: any free port), not ${JSON.stringify(v)}`);
  return v;
};
const positive = (min: number, max: number): Check => (v, path) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(`${path} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return v;
};
/** a whole number from min to max */
const count = (min: number, max: number): Check => (v, path) => {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) throw new ConfigError(`${path} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return v;
};
const text = (pattern: RegExp, what: string): Check => (v, path) => {
  if (typeof v !== 'string' || !pattern.test(v)) throw new ConfigError(`${path} must be ${what}, not ${JSON.stringify(v)}`);
  return v;
};
const domainName = text(/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'a lower-case domain name such as parley.local');
/** an IPv4 or IPv6 address (`::` listens on both: dual stack), or localhost */
const address: Check = (v, path) => {
  if (typeof v !== 'string' || (v !== 'localhost' && isIP(v) === 0)) throw new ConfigError(`${path} must be an IP address to listen on, such as 127.0.0.1, 0.0.0.0 (every IPv4 address), ::1 or :: (every IPv6 and IPv4 address), not ${JSON.stringify(v)}`);
  return v;
};
const nonEmpty = text(/./, 'a non-empty path');
const logLevel: Check = (v, path) => {
  if (!(LOG_LEVELS as readonly unknown[]).includes(v)) throw new ConfigError(`${path} must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(v)}`);
  return v;
};
const digestAlgorithms: Check = (v, path) => {
  const ok = Array.isArray(v) && v.length > 0 && new Set(v).size === v.length && v.every((a) => (DIGEST_ALGORITHMS as readonly unknown[]).includes(a));
  if (!ok) throw new ConfigError(`${path} must list one or more of ${DIGEST_ALGORITHMS.join(', ')} (most preferred first, no repeats), not ${JSON.stringify(v)}`);
  return v;
};
const flag: Check = (v, path) => {
  if (typeof v !== 'boolean') throw new ConfigError(`${path} must be true or false, not ${JSON.stringify(v)}`);
  return v;
};
const hostName = text(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or IP address');
/** a name of this server for URLs (`mail.example.com`, `192.0.2.10`, `[2001:db8::1]`), no port or scheme */
const publicHost: Check = (v, path) => {
  const host = typeof v === 'string' ? parseHostHeader(v) : undefined;
  if (host === undefined || host.port !== null) throw new ConfigError(`${path} must be a host name or IP address without port or scheme, such as mail.example.com, not ${JSON.stringify(v)}`);
  return host.host;
};
/**
 * `publicUrl`: http:// or https://, a host (not a wildcard address) and an optional port, no path,
 * query, fragment or user info; kept as its origin (`https://chat.example.com`, default port dropped)
 */
const publicUrl: Check = (v, path) => {
  if (v === null) return null;
  const what = `${path} must be the URL clients reach this server at: http:// or https://, a host name or address and an optional port, nothing after (such as "https://chat.example.com" or "http://192.0.2.10:8080"), not ${JSON.stringify(v)}`;
  let url: URL;
  try {
    if (typeof v !== 'string') throw new TypeError();
    url = new URL(v);
  } catch {
    throw new ConfigError(what);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${what}: the scheme is not http or https`);
  if (url.username !== '' || url.password !== '') throw new ConfigError(`${what}: no user name or password belongs in it`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || /[?#]/.test(v as string)) {
    throw new ConfigError(`${what}: Parley serves from the root of its URL, so no path, query or fragment (a reverse proxy must map the whole host)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isWildcardAddress(host)) throw new ConfigError(`${what}: ${host} is "every address", which no client can connect to`);
  return url.origin;
};
/** `sip.advertise`: host[:port], as a Via sent-by is written (IPv6 in brackets); not a wildcard */
const advertise: Check = (v, path) => {
  if (v === null) return null;
  const parsed = typeof v === 'string' ? parseHostHeader(v) : undefined;
  if (parsed === undefined) throw new ConfigError(`${path} must be the host[:port] SIP clients reach this server at (such as "sip.example.com", "203.0.113.5:5060" or "[2001:db8::5]"), not ${JSON.stringify(v)}`);
  if (isWildcardAddress(parsed.host)) throw new ConfigError(`${path} must name an address clients can reach, not ${parsed.host} ("every address")`);
  return formatAuthority(parsed.host, parsed.port);
};
/** where mail for another organisation goes: `{ "host": "mx.partner.example", "port": 25 }` */
const smtpRoute: Check = (v, path) => {
  const route = section({ host: hostName, port, secure: flag, requireTls: flag })(v, path) as Record<string, unknown>;
  if (!('host' in route) || !('port' in route)) throw new ConfigError(`${path} needs host and port`);
  return route;
};
const smtpDomains: Check = (v, path) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${path} must be an object of domain → route`);
  for (const [domain, route] of Object.entries(v)) {
    domainName(domain, `${path} key`);
    smtpRoute(route, `${path}.${domain}`);
  }
  return v;
};
const tls: Check = (v, path) => {
  if (v === null) return null;
  return section({ cert: nonEmpty, key: nonEmpty }, true)(v, path);
};

/** `["192.0.2.53", "[2001:db8::53]:5353"]`: DNS servers by address (a name would need DNS to be found) */
const dnsServers: Check = (d, p) => {
  if (!Array.isArray(d) || d.length > 8 || !d.every((x) => typeof x === 'string' && /^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+)(:\d{1,5})?$/.test(x))) {
    throw new ConfigError(`${p} must list up to 8 DNS servers as IP addresses with an optional port, such as ["192.0.2.53", "[2001:db8::53]:5353"], not ${JSON.stringify(d)}`);
  }
  return d;
};

/** `{ "fqdn": "sip.example.com", "cert": "…pem", "key": "…pem", "port": 5061, "ca": "…pem", "dnsServers": ["192.0.2.53"] }` */
const federation: Check = (v, path) => {
  if (v === null) return null;
  const shape = {
    fqdn: domainName,
    listen: (l: unknown, p: string) => (l === null ? null : address(l, p)),
    port,
    cert: nonEmpty,
    key: nonEmpty,
    ca: (c: unknown, p: string) => (c === null ? null : nonEmpty(c, p)),
    dnsServers,
    connectTimeout: positive(1, 120),
  };
  const out = section(shape)(v, path) as Record<string, unknown>;
  for (const key of ['fqdn', 'cert', 'key']) if (!(key in out)) throw new ConfigError(`${path}.${key} is required`);
  return { ...FEDERATION_DEFAULTS, ...out };
};

/** `{ "directoryUrl": "https://…/directory", "domains": ["im.example.com"], "termsOfServiceAgreed": true, … }` */
const acme: Check = (v, path) => {
  if (v === null) return null;
  const out = section({
    directoryUrl: text(/^https:\/\/[^\s/]+(\/\S*)?$/, 'the https:// URL of the ACME directory, such as https://acme-v02.api.letsencrypt.org/directory'),
    email: text(/^[^\s@]+@[^\s@]+$/, 'an e-mail address for the CA\'s notices'),
    domains: (d: unknown, p: string) => {
      if (!Array.isArray(d) || d.length === 0 || d.length > 100) throw new ConfigError(`${p} must list 1 to 100 domain names, such as ["im.example.com"], not ${JSON.stringify(d)}`);
      return d.map((name, i) => domainName(name, `${p}[${i}]`));
    },
    accountKeyFile: nonEmpty,
    termsOfServiceAgreed: (t: unknown, p: string) => {
      if (t !== true) throw new ConfigError(`${p} must be true: read the CA's terms of service, then agree to them here`);
      return t;
    },
    renewBeforeDays: count(1, 3650),
    caBundle: nonEmpty,
  })(v, path) as Record<string, unknown>;
  for (const key of ['directoryUrl', 'domains', 'termsOfServiceAgreed']) if (!(key in out)) throw new ConfigError(`${path}.${key} is required`);
  return { renewBeforeDays: 30, ...out };
};

const timeZone: Check = (v, path) => {
  try {
    if (typeof v !== 'string') throw new RangeError();
    new Intl.DateTimeFormat('en', { timeZone: v });
  } catch {
    throw new ConfigError(`${path} must be an IANA time zone such as UTC or Europe/Madrid, not ${JSON.stringify(v)}`);
  }
  return v;
};
const httpUrl = text(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'an http:// or https:// URL');
const ewsServer: Check = (v, path) => {
  const server = section({
    kind: text(/^ews$/, 'ews'),
    url: httpUrl,
    username: text(/./, 'the service account name'),
    password: text(/./, 'a non-empty password'),
    passwordFile: nonEmpty,
    access: text(/^(impersonation|delegate)$/, 'impersonation or delegate'),
    version: (x, p) => {
      if (!(EWS_VERSIONS as readonly unknown[]).includes(x)) throw new ConfigError(`${p} must be one of ${EWS_VERSIONS.join(', ')}, not ${JSON.stringify(x)}`);
      return x;
    },
    timeout: positive(1, 600),
  })(v, path) as Record<string, unknown>;
  if (!('url' in server) || !('username' in server)) throw new ConfigError(`${path} needs url and username`);
  if (('password' in server) === ('passwordFile' in server)) throw new ConfigError(`${path} needs exactly one of password and passwordFile`);
  return server;
};
/** one of a mailbox's secrets: exactly one of `key` (inline) and `keyFile` */
function oneSecret(server: Record<string, unknown>, path: string, key: string): void {
  if ((key in server) === (`${key}File` in server)) throw new ConfigError(`${path} needs exactly one of ${key} and ${key}File`);
}
/** `{ "kind": "imap", "url": "imaps://mail.example.com", "username": "parley", "passwordFile": "…" }` (src/offline/connectors.ts ImapServerConfig) */
const imapServer: Check = (v, path) => {
  const server = section({
    kind: text(/^imap$/, 'imap'),
    url: text(/./, 'an imaps:// or imap:// URL'),
    starttls: flag,
    signIn: text(/^(master|authzid|per-user)$/, 'master, authzid or per-user'),
    username: text(/./, 'the master or admin account name'),
    password: text(/./, 'a non-empty password'),
    passwordFile: nonEmpty,
    masterSeparator: text(/^[^\s]{1,8}$/, "the separator of Dovecot's auth_master_user_separator, such as *"),
    credentials: mapOf((c, p) => {
      if (typeof c === 'string' && c !== '') return c;
      return section({ username: text(/./, 'the login name'), password: text(/./, 'a non-empty password') }, true)(c, p);
    }, 'mailbox address'),
    credentialsFile: nonEmpty,
    folder: text(/^[^\r\n]{1,200}$/, 'a folder name such as "Conversation History"'),
    ca: nonEmpty,
    timeout: positive(1, 600),
    maxConnections: count(1, 1000),
  })(v, path) as Record<string, unknown>;
  if (!('url' in server)) throw new ConfigError(`${path} needs url`);
  const invalid = imapEndpointError(server.url as string, server.starttls as boolean | undefined);
  if (invalid !== undefined) throw new ConfigError(`${path}.url: ${invalid}`);
  const signIn = server.signIn ?? 'master';
  if (signIn === 'per-user') {
    oneSecret(server, path, 'credentials');
    for (const key of ['username', 'password', 'passwordFile', 'masterSeparator']) if (key in server) throw new ConfigError(`${path}.${key} is for a master or authzid sign-in, not signIn per-user (which uses credentials or credentialsFile)`);
  } else {
    if (!('username' in server)) throw new ConfigError(`${path} needs username (the ${signIn === 'master' ? 'master user' : 'account that acts for each mailbox'})`);
    oneSecret(server, path, 'password');
    if ('credentials' in server || 'credentialsFile' in server) throw new ConfigError(`${path}.credentials and credentialsFile are for signIn per-user, not ${signIn}`);
    if ('masterSeparator' in server && signIn !== 'master') throw new ConfigError(`${path}.masterSeparator is for signIn master only`);
  }
  return server;
};
/** Exchange Online through Microsoft Graph: an app registration signing in with a client secret or a certificate */
const graphServer: Check = (v, path) => {
  const server = section({
    kind: text(/^graph$/, 'graph'),
    tenantId: text(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'the directory (tenant) id, a GUID, or a verified domain of the tenant'),
    clientId: text(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "the application (client) id of the app registration, a GUID"),
    clientSecret: text(/./, 'a non-empty client secret (its value, not its id)'),
    clientSecretFile: nonEmpty,
    certificateFile: nonEmpty,
    privateKey: text(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key'),
    privateKeyFile: nonEmpty,
    graphUrl: text(/^https:\/\/[^\s/]+(\/\S*)?$/, 'an https:// URL such as https://graph.microsoft.com/v1.0'),
    authorityHost: text(/^https:\/\/[^\s/]+\/?$/, 'an https:// origin such as https://login.microsoftonline.com'),
    timeout: positive(1, 600),
  })(v, path) as Record<string, unknown>;
  if (!('tenantId' in server) || !('clientId' in server)) throw new ConfigError(`${path} needs tenantId and clientId`);
  const secrets = ['clientSecret', 'clientSecretFile'].filter((k) => k in server).length;
  const keys = ['privateKey', 'privateKeyFile'].filter((k) => k in server).length;
  const certificate = 'certificateFile' in server || keys > 0;
  if (secrets + (certificate ? 1 : 0) !== 1 || secrets > 1 || keys > 1) {
    throw new ConfigError(`${path} needs exactly one credential: clientSecret or clientSecretFile, or certificateFile with privateKey or privateKeyFile`);
  }
  if (certificate && (!('certificateFile' in server) || keys !== 1)) throw new ConfigError(`${path}: a certificate credential needs certificateFile and one of privateKey and privateKeyFile`);
  return server;
};
/** `mailboxes.servers.NAME`: which kind of mailbox server (`kind`, default ews: configs from before it keep working) */
const mailboxServer: Check = (v, path) => {
  const kind = typeof v === 'object' && v !== null && 'kind' in v ? (v as { kind: unknown }).kind : 'ews';
  switch (kind) {
    case 'ews':
      return ewsServer(v, path);
    case 'imap':
      return imapServer(v, path);
    case 'graph':
      return graphServer(v, path);
    default:
      throw new ConfigError(`${path}.kind must be ews (an Exchange server through EWS, the default), graph (Exchange Online through Microsoft Graph) or imap (an IMAP server), not ${JSON.stringify(kind)}`);
  }
};
const mailboxes: Check = (v, path) => {
  const out = section({ servers: mapOf(mailboxServer, 'server name'), domains: mapOf(text(/./, 'a server name'), 'domain'), users: mapOf(text(/./, 'a server name'), 'user address') })(v, path) as MailboxesConfig;
  const known = new Set(['embedded', ...Object.keys(out.servers ?? {})]);
  for (const [kind, map] of [['domains', out.domains], ['users', out.users]] as const) {
    for (const [key, name] of Object.entries(map ?? {})) {
      if (!known.has(name)) throw new ConfigError(`${path}.${kind}.${key} names mailbox server ${JSON.stringify(name)}, which is not embedded or one of mailboxes.servers (${[...known].join(', ')})`);
    }
  }
  return out;
};

const ipList: Check = (v, path) => {
  if (!Array.isArray(v) || !v.every((a) => typeof a === 'string' && isIP(a) !== 0)) throw new ConfigError(`${path} must list IP addresses, such as ["127.0.0.1"], not ${JSON.stringify(v)}`);
  return v;
};
const auth = section({
  lockout: section({
    sourceThreshold: count(1, 1_000_000),
    accountThreshold: count(1, 1_000_000),
    window: positive(1, 86400),
    duration: positive(1, 86400),
    maxDuration: positive(1, 30 * 86400),
  }),
  hashConcurrency: count(1, 64),
  hashQueue: count(0, 100_000),
  hashQueuePerSource: count(1, 100_000),
  credentialCache: positive(0, 86400),
  trustedProxies: ipList,
});
/** bytes: a whole number, "10MB", "2.3 GB" (binary units, as Exchange writes them) or "unlimited" */
const byteSize: Check = (v, path) => {
  const bytes = parseByteSize(v);
  if (bytes === undefined || bytes === 0) throw new ConfigError(`${path} must be a size such as 10485760, "10MB", "2.3 GB" or "unlimited", not ${JSON.stringify(v)}`);
  return bytes;
};
/** a positive whole number, or "unlimited" */
const countOrUnlimited: Check = (v, path) => {
  if (v === 'unlimited') return UNLIMITED;
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new ConfigError(`${path} must be a whole number of at least 1, or "unlimited", not ${JSON.stringify(v)}`);
  return v;
};

/** "30d", "12h", "90s", 45 (seconds) or "forever" */
const duration: Check = (v, path) => {
  const d = parseDuration(v);
  if (d === undefined) throw new ConfigError(`${path} must be a duration such as "30d", "12h", "15m", "90s", a number of seconds, or "forever", not ${JSON.stringify(v)}`);
  return d;
};
/** a duration that is not "forever" */
const finiteDuration = (min: number, max: number): Check => (v, path) => {
  const d = duration(v, path) as number | 'forever';
  if (d === 'forever' || d < min || d > max) throw new ConfigError(`${path} must be a duration from ${min} s to ${max} s (such as "5m"), not ${JSON.stringify(v)}`);
  return d;
};

/** `{ "min": 60, "max": 7200, "default": 3600 }` seconds, each optional, min ≤ default ≤ max once merged */
const expiry = section({ min: positive(1, 86400), max: positive(1, 7 * 86400), default: positive(1, 7 * 86400) });

/** `cluster.nodeId`: checked as the cluster checks it (a part of Redis keys) */
const clusterNodeId: Check = (v, path) => {
  if (typeof v !== 'string') throw new ConfigError(`${path} must be a text such as "node-a", not ${JSON.stringify(v)}`);
  try {
    checkNodeId(v);
  } catch (err) {
    if (err instanceof ClusterError) throw new ConfigError(`${path}: ${err.message}`);
    throw err;
  }
  return v;
};
/** `cluster.redis`: an address openRedis understands, checked now so a typo stops the start, not the first REGISTER */
const redisAddress: Check = (v, path) => {
  try {
    parseRedisAddress(v as string | object, path);
  } catch (err) {
    if (err instanceof ClusterError) throw new ConfigError(err.message);
    throw err;
  }
  return v;
};
/** `cluster.sipAddress`: host:port, a port required (the other nodes connect there) */
const clusterSipAddress: Check = (v, path) => {
  if (v === null) return null;
  const parsed = typeof v === 'string' ? parseHostHeader(v) : undefined;
  if (parsed === undefined || parsed.port === null || isWildcardAddress(parsed.host)) {
    throw new ConfigError(`${path} must be the host:port the other nodes reach this node's SIP TCP listener at (such as "10.0.0.5:5060"), not ${JSON.stringify(v)}`);
  }
  return formatAuthority(parsed.host, parsed.port);
};

function mapOf(check: Check, keyName: string): Check {
  return (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${path} must be an object of ${keyName} → value`);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(v)) out[key] = check(value, `${path}.${key}`);
    return out;
  };
}

function section(shape: Record<string, Check>, allRequired = false): Check {
  return (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${path} must be an object`);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(v)) {
      const check = shape[key];
      if (!check) throw new ConfigError(`unknown setting ${path}.${key}; known: ${Object.keys(shape).join(', ')}`);
      out[key] = check(value, `${path}.${key}`);
    }
    if (allRequired) for (const key of Object.keys(shape)) if (!(key in out)) throw new ConfigError(`${path}.${key} is required`);
    return out;
  };
}

const SCHEMA = section({
  domain: domainName,
  listen: address,
  sipPort: port,
  sipsPort: port,
  httpPort: port,
  httpsPort: (v: unknown, path: string) => (v === null ? null : port(v, path)),
  smtpPort: (v: unknown, path: string) => (v === null ? null : port(v, path)),
  smtpRoutes: section({ domains: smtpDomains, smarthost: smtpRoute, mx: flag }),
  dnsServers,
  dataDir: nonEmpty,
  database: (v: unknown, path: string) => {
    if (v === null) return null;
    if (typeof v !== 'string' || !isPostgresUrl(v)) throw new ConfigError(`${path} must be a PostgreSQL address such as "postgres://parley@db.example.com/parley", or null for SQLite in dataDir; not ${JSON.stringify(v)}`);
    return v;
  },
  tls,
  acme,
  federation,
  logLevel,
  shutdownTimeout: positive(1, 600),
  registrar: section({
    // whole seconds and bindings: Expires and Min-Expires are delta-seconds (RFC 3261 §20.19, §20.23)
    minExpires: count(1, 86400),
    maxExpires: count(1, 7 * 86400),
    defaultExpires: count(1, 7 * 86400),
    maxBindings: count(1, 1000),
  }),
  messaging: section({ maxBody: positive(1, 1024 * 1024), deviceTimeout: positive(0.1, 32) }),
  offlineIm: section({
    commitWindowMs: positive(0, 100),
    commitMaxBatch: positive(1, 10_000),
    deliveryBatch: positive(1, 1000),
    retryBase: positive(0.01, 3600),
    retryMax: positive(0.01, 86400),
    timeZone,
    deliveryLease: positive(1, 3600),
    senderQuota: section({ maxBytes: byteSize, maxMessages: countOrUnlimited, perMinute: countOrUnlimited }),
    recipientQuota: section({ maxBytes: byteSize, maxMessages: countOrUnlimited }),
  }),
  history: section({ commitWindowMs: positive(1, 10) }),
  mailboxes,
  mailboxQuota: section({ issueWarningQuota: byteSize, prohibitSendQuota: byteSize, prohibitSendReceiveQuota: byteSize, recoverableItemsQuota: byteSize }),
  sip: section({ t1: positive(1, 10_000), t2: positive(1, 60_000), t4: positive(1, 60_000), nonceLifetime: positive(10, 86400), digestAlgorithms, checkDigestUri: flag, advertise, connections: section({
    idleTimeout: positive(0.1, 86400),
    messageTimeout: positive(0.1, 3600),
    maxPerSource: count(1, 1_000_000),
    maxTotal: count(1, 1_000_000),
    unauthenticatedBufferBudget: count(64 * 1024, 2 ** 40),
  }) }),
  presence: section({ publishExpiry: expiry, subscribeExpiry: expiry }),
  publicHosts: (v: unknown, path: string) => {
    if (!Array.isArray(v) || v.length > 100) throw new ConfigError(`${path} must be a list of at most 100 host names or IP addresses, not ${JSON.stringify(v)}`);
    return v.map((h, i) => publicHost(h, `${path}[${i}]`));
  },
  publicUrl,
  events: section({ maxSubscriptionsPerWatcherResource: count(1, 1000), maxSubscriptionsPerWatcher: count(1, 1_000_000), maxSubscriptionsPerResource: count(1, 1_000_000) }),
  auth,
  web: section({
    allowedOrigins: (v: unknown, path: string) => {
      if (!Array.isArray(v) || v.length > 100) throw new ConfigError(`${path} must be a list of at most 100 origins such as "https://chat.example.com", not ${JSON.stringify(v)}`);
      return v.map((o, i) => {
        const origin = typeof o === 'string' ? parseOrigin(o) : undefined;
        if (origin === undefined) throw new ConfigError(`${path}[${i}] must be an origin: http:// or https://, a host and an optional port, no path (such as "https://chat.example.com"), not ${JSON.stringify(o)}`);
        return formatOrigin(origin);
      });
    },
  }),
  retention: section({
    delivered: duration,
    audit: duration,
    changeLog: section({ minAge: duration, maxAge: duration }),
    interval: finiteDuration(1, 86400),
    batch: count(1, 10_000),
  }),
  cluster: (v: unknown, path: string) => (v === null ? null : section({ nodeId: clusterNodeId, redis: redisAddress, sipAddress: clusterSipAddress })(v, path)),
  // flag only: `--digest-algorithms MD5` sets sip.digestAlgorithms
  digestAlgorithms,
});

export type ConfigOverrides = Partial<Pick<ServerConfig, 'domain' | 'listen' | 'sipPort' | 'sipsPort' | 'httpPort' | 'httpsPort' | 'smtpPort' | 'dataDir' | 'database' | 'logLevel' | 'publicUrl'>> & {
  digestAlgorithms?: DigestAlgorithm[];
  /** `--cluster NODE-ID`: cluster.nodeId (over the file's) */
  clusterNode?: string;
  /** `--redis URL`: cluster.redis (over the file's) */
  redis?: string;
};

/** The effective configuration: defaults < config file < flags. Throws ConfigError. */
export function loadConfig(file: string | undefined, flags: ConfigOverrides): Readonly<ServerConfig> {
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(raw) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
    fromFile = SCHEMA(fromFile, 'config') as Record<string, unknown>;
    if ('digestAlgorithms' in fromFile) throw new ConfigError('unknown setting config.digestAlgorithms; it is sip.digestAlgorithms in the file');
  }
  const merged = {
    ...DEFAULT_CONFIG,
    ...fromFile,
    registrar: { ...DEFAULT_CONFIG.registrar, ...(fromFile.registrar as object | undefined) },
    messaging: { ...DEFAULT_CONFIG.messaging, ...(fromFile.messaging as object | undefined) },
    offlineIm: offlineImOf(fromFile.offlineIm as Partial<OfflineImConfig> | undefined),
    history: { ...DEFAULT_CONFIG.history, ...(fromFile.history as object | undefined) },
    mailboxQuota: { ...DEFAULT_CONFIG.mailboxQuota, ...(fromFile.mailboxQuota as object | undefined) },
    sip: sipOf(fromFile.sip as Partial<ServerConfig['sip']> | undefined),
    presence: presenceOf(fromFile.presence as Partial<Record<keyof ServerConfig['presence'], Partial<ExpirySettings>>> | undefined),
    events: { ...DEFAULT_CONFIG.events, ...(fromFile.events as object | undefined) },
    auth: authOf(fromFile.auth as Partial<AuthConfig> | undefined),
    web: { ...DEFAULT_CONFIG.web, ...(fromFile.web as Partial<WebConfig> | undefined) },
    retention: retentionOf(fromFile.retention as Partial<RetentionPolicy> | undefined),
  };
  const { digestAlgorithms: algorithmsFlag, clusterNode, redis, ...topFlags } = flags;
  const defined = Object.fromEntries(Object.entries(topFlags).filter(([, v]) => v !== undefined));
  // the flags as validated: some settings are normalised (publicUrl to its origin)
  const { digestAlgorithms: _checked, ...checkedFlags } = SCHEMA(algorithmsFlag === undefined ? defined : { ...defined, digestAlgorithms: algorithmsFlag }, 'flag') as Record<string, unknown>;
  const config = { ...merged, ...checkedFlags } as ServerConfig;
  config.cluster = clusterOf(merged.cluster, clusterNode, redis);
  if (algorithmsFlag !== undefined) config.sip = { ...config.sip, digestAlgorithms: algorithmsFlag };
  if (config.registrar.minExpires > config.registrar.maxExpires) throw new ConfigError('registrar.minExpires must not exceed registrar.maxExpires');
  if (config.offlineIm.retryBase > config.offlineIm.retryMax) throw new ConfigError('offlineIm.retryBase must not exceed offlineIm.retryMax');
  const { lockout } = config.auth;
  if (lockout.duration > lockout.maxDuration) throw new ConfigError('auth.lockout.duration must not exceed auth.lockout.maxDuration');
  if (config.auth.hashQueuePerSource > config.auth.hashQueue + config.auth.hashConcurrency) {
    throw new ConfigError('auth.hashQueuePerSource must not exceed auth.hashQueue + auth.hashConcurrency (what one source can hold at most)');
  }
  checkConnections(config);
  if (config.tls !== null && config.acme !== null) throw new ConfigError('set tls (your own PEM files) or acme (certificates from an ACME CA), not both');
  if (config.httpsPort !== null && config.tls === null && config.acme === null) throw new ConfigError('httpsPort needs a certificate: set tls (cert and key PEM files) or acme');
  const fed = config.federation;
  if (fed !== null && fed.port !== 0 && (fed.listen ?? config.listen) === config.listen && (config.tls !== null || config.acme !== null) && fed.port === config.sipsPort) {
    throw new ConfigError(`federation.port ${fed.port} is also sipsPort, the users' SIP over TLS port, on ${config.listen}: give partners their own port or address (federation.port, federation.listen), or move sipsPort`);
  }
  const { minAge, maxAge } = config.retention.changeLog;
  if (maxAge !== 'forever' && (minAge === 'forever' || minAge > maxAge)) throw new ConfigError('retention.changeLog.minAge must not exceed retention.changeLog.maxAge');
  for (const [key, e] of Object.entries(config.presence)) {
    if (!(e.min <= e.default && e.default <= e.max)) throw new ConfigError(`presence.${key} must have min ≤ default ≤ max, not ${JSON.stringify(e)}`);
  }
  for (const wider of ['maxSubscriptionsPerWatcher', 'maxSubscriptionsPerResource'] as const) {
    if (config.events.maxSubscriptionsPerWatcherResource > config.events[wider]) throw new ConfigError(`events.maxSubscriptionsPerWatcherResource must not exceed events.${wider}`);
  }
  if (config.cluster !== null && config.database === null) {
    throw new ConfigError(`cluster mode needs database: postgres://… (the nodes share their durable state there; SQLite in one node's data directory cannot be shared), for node ${config.cluster.nodeId}`);
  }
  return deepFreeze(config);
}

/**
 * The cluster block: the file's, with `--cluster NODE-ID` and `--redis URL` over it. Either flag
 * alone makes one with the other from the file; both are then required.
 */
function clusterOf(file: Partial<ClusterConfig> | null, nodeFlag: string | undefined, redisFlag: string | undefined): ClusterConfig | null {
  if (file === null && nodeFlag === undefined && redisFlag === undefined) return null;
  const nodeId = nodeFlag === undefined ? file?.nodeId : (clusterNodeId(nodeFlag, '--cluster') as string);
  const redis = redisFlag === undefined ? file?.redis : (redisAddress(redisFlag, '--redis') as string);
  if (nodeId === undefined) throw new ConfigError('cluster mode needs this node\'s id: cluster.nodeId in the config file, or --cluster NODE-ID');
  if (redis === undefined) throw new ConfigError(`cluster mode needs the Redis the nodes share, for node ${nodeId}: cluster.redis in the config file, or --redis redis://host:port`);
  return { nodeId, redis, sipAddress: file?.sipAddress ?? null };
}

/** offlineIm over its defaults, its quota sections key by key. */
function offlineImOf(file: Partial<OfflineImConfig> | undefined): OfflineImConfig {
  const d = DEFAULT_CONFIG.offlineIm;
  return { ...d, ...file, senderQuota: { ...d.senderQuota, ...file?.senderQuota }, recipientQuota: { ...d.recipientQuota, ...file?.recipientQuota } };
}

/** The sip section over its defaults, and its connection limits key by key. */
function sipOf(file: Partial<ServerConfig['sip']> | undefined): ServerConfig['sip'] {
  return { ...DEFAULT_CONFIG.sip, ...file, connections: { ...DEFAULT_CONFIG.sip.connections, ...file?.connections } };
}

/**
 * The largest body any SIP method accepts (MESSAGE: messaging.maxBody; PUBLISH), so the most the
 * framing of a connection reads: a longer one would be refused once read anyway.
 */
export function largestBody(config: Pick<ServerConfig, 'messaging'>): number {
  return Math.max(config.messaging.maxBody, MAX_PUBLISH_BODY);
}

function checkConnections(config: ServerConfig): void {
  const c = config.sip.connections;
  if (c.maxPerSource > c.maxTotal) throw new ConfigError(`sip.connections.maxPerSource (${c.maxPerSource}) must not exceed sip.connections.maxTotal (${c.maxTotal})`);
  // A client sends its first request before it can authenticate: the largest must fit, twice.
  const largest = largestBody(config);
  if (c.unauthenticatedBufferBudget < largest * 2) {
    throw new ConfigError(`sip.connections.unauthenticatedBufferBudget (${c.unauthenticatedBufferBudget}) must be at least twice the largest body a request may have (${largest}: messaging.maxBody, or 65536 for PUBLISH): a client sends one before it has authenticated`);
  }
}

/** Each presence duration section over its defaults, key by key. */
function presenceOf(file: Partial<Record<keyof ServerConfig['presence'], Partial<ExpirySettings>>> | undefined): ServerConfig['presence'] {
  return {
    publishExpiry: { ...DEFAULT_CONFIG.presence.publishExpiry, ...file?.publishExpiry },
    subscribeExpiry: { ...DEFAULT_CONFIG.presence.subscribeExpiry, ...file?.subscribeExpiry },
  };
}

/** The retention section over its defaults, changeLog key by key. */
function retentionOf(file: Partial<RetentionPolicy> | undefined): RetentionPolicy {
  const d = DEFAULT_CONFIG.retention;
  return { ...d, ...file, changeLog: { ...d.changeLog, ...file?.changeLog } };
}

/** The auth section over its defaults, the lockout sub-section key by key. */
function authOf(file: Partial<AuthConfig> | undefined): AuthConfig {
  return { ...DEFAULT_CONFIG.auth, ...file, lockout: { ...DEFAULT_CONFIG.auth.lockout, ...file?.lockout } };
}

function deepFreeze<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v as object);
  return Object.freeze(o);
}
