// The connection to a cluster's Redis, which holds what the nodes share for a short time (the
// location service, the bus). Through ioredis: it speaks to a single server, a Sentinel-watched
// master (and follows a failover) or a Redis Cluster, reconnects by itself, and runs Lua scripts
// by their digest (loading them again after a restart emptied the script cache).
//
// Addresses accepted (the `redis` setting), as text:
//   redis://[user:password@]host[:port][/db]         a server (port 6379, database 0 by default)
//   rediss://[user:password@]host[:port][/db]        the same over TLS (the system's CAs; SNI = host)
//   unix:///path/to/redis.sock[?db=N]                a server's Unix socket (also redis+unix://)
//   redis-sentinel://[user:password@]host:port[,host:port…]/master[/db]
//                                                    the master named `master`, as the Sentinels say
//                                                    (user/password: the master's; Sentinels without one)
// or as an object:
//   { host, port?, db?, username?, password?, tls?, tlsCa? }
//   { path, db?, username?, password? }
//   { sentinels: [{ host, port }…], name, db?, username?, password?, sentinelUsername?, sentinelPassword?, tls?, tlsCa? }
// (tlsCa: a PEM file of the CAs to trust instead of the system's, for a Redis with a private CA)
// Redis Cluster is not accepted yet: the location service's scripts touch keys of several slots.
//
// At start-up a Redis that cannot be reached is an error at once (CLUSTER_REDIS_UNREACHABLE, …);
// once connected, the client reconnects without end, and a command issued while Redis is away
// fails after a few reconnection attempts (CLUSTER_REDIS_UNAVAILABLE) rather than waiting longer
// than a SIP transaction would.

import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { ClusterError } from './errors.ts';

export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
}

interface Credentials {
  readonly db: number;
  readonly username: string | null;
  readonly password: string | null;
}

export type RedisAddress =
  | (Credentials & {
      readonly kind: 'server';
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      /** PEM file of the CAs to trust for TLS instead of the system's (a private CA); null: the system's */
      readonly tlsCa: string | null;
    })
  | (Credentials & { readonly kind: 'socket'; readonly path: string })
  | (Credentials & {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisEndpoint[];
      /** the master's name, as configured in the Sentinels */
      readonly name: string;
      readonly sentinelUsername: string | null;
      readonly sentinelPassword: string | null;
      readonly tls: boolean;
      readonly tlsCa: string | null;
    });

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const FORMS =
  'redis://[user:password@]host[:port][/db], rediss://… (TLS), unix:///path/to/redis.sock[?db=N] or redis-sentinel://host:port[,host:port…]/master[/db]';

/**
 * Reads the `redis` setting (text or object, see the top of this file). `where` names the setting
 * in messages. Throws ClusterError CLUSTER_REDIS_ADDRESS_INVALID; the message never shows a password.
 */
export function parseRedisAddress(config: unknown, where = 'redis'): RedisAddress {
  if (typeof config === 'string') return parseAddressText(config, where);
  if (config !== null && typeof config === 'object' && !Array.isArray(config)) return parseAddressObject(config as Record<string, unknown>, where);
  throw invalid(where, `must be a Redis address such as ${FORMS}, or an object { host, port } / { path } / { sentinels, name }`);
}

function parseAddressText(text: string, where: string): RedisAddress {
  const scheme = /^([a-z+-]+):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'redis-sentinel') return parseSentinelText(text, where);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(where, `is not an address of the forms ${FORMS} (${redactText(text)})`);
  }
  const credentials = (db: number): Credentials => ({
    db,
    username: url.username === '' ? null : decodeURIComponent(url.username),
    password: url.password === '' ? null : decodeURIComponent(url.password),
  });
  if (scheme === 'redis' || scheme === 'rediss') {
    if (url.hostname === '') throw invalid(where, `names no host (${redactText(text)}); write ${scheme}://host:port`);
    const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
    if (url.search !== '') throw invalid(where, `takes no query (${url.search}); the database number is the path: ${scheme}://host:port/2`);
    const db = parseDb(url.pathname.replace(/^\//, ''), where);
    return { kind: 'server', host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, tls: scheme === 'rediss', tlsCa: null, ...credentials(db) };
  }
  if (scheme === 'unix' || scheme === 'redis+unix') {
    if (url.hostname !== '') throw invalid(where, `names a host (${url.hostname}) in a Unix socket address; write ${scheme}:///path/to/redis.sock (three slashes)`);
    if (url.pathname === '' || url.pathname === '/') throw invalid(where, `names no socket path; write ${scheme}:///path/to/redis.sock`);
    const extra = [...url.searchParams.keys()].filter((k) => k !== 'db');
    if (extra.length > 0) throw invalid(where, `has an unknown query parameter ${extra[0]} (only db=N)`);
    const db = parseDb(url.searchParams.get('db') ?? '', where);
    return { kind: 'socket', path: decodeURIComponent(url.pathname), ...credentials(db) };
  }
  throw invalid(where, `has the scheme ${scheme ?? '(none)'}:, expected one of ${FORMS}`);
}

/** `redis-sentinel://[user:password@]host:port[,host:port…]/master[/db]` (not a WHATWG URL: several hosts). */
function parseSentinelText(text: string, where: string): RedisAddress {
  const match = /^redis-sentinel:\/\/(?:([^@/]*)@)?([^/]*)\/([^/?#]*)(?:\/([^/?#]*))?$/i.exec(text);
  if (!match) throw invalid(where, `is not a Sentinel address: write redis-sentinel://host:port[,host:port…]/master[/db] (${redactText(text)})`);
  const [, userinfo, hosts = '', name = '', db = ''] = match;
  let username: string | null = null;
  let password: string | null = null;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    username = user === '' ? null : decodeURIComponent(user);
    password = colon < 0 ? null : decodeURIComponent(userinfo.slice(colon + 1));
  }
  if (hosts === '') throw invalid(where, 'names no Sentinel; write redis-sentinel://host:port[,host:port…]/master');
  const sentinels = hosts.split(',').map((h) => parseHostPort(h, DEFAULT_SENTINEL_PORT, where));
  if (name === '') throw invalid(where, 'names no master; write redis-sentinel://host:port/master (the name the Sentinels monitor)');
  return {
    kind: 'sentinel', sentinels, name: decodeURIComponent(name), db: parseDb(db, where), username, password,
    sentinelUsername: null, sentinelPassword: null, tls: false, tlsCa: null,
  };
}

function parseHostPort(text: string, defaultPort: number, where: string): RedisEndpoint {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d+))?$/i.exec(text.trim());
  if (!match) throw invalid(where, `has a host that is not host[:port]: ${JSON.stringify(text)}`);
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) throw invalid(where, `has a port out of range: ${JSON.stringify(text)}`);
  return { host: (match[1] ?? match[2]) as string, port };
}

function parseAddressObject(o: Record<string, unknown>, where: string): RedisAddress {
  const known = new Set(['host', 'port', 'path', 'sentinels', 'name', 'db', 'username', 'password', 'sentinelUsername', 'sentinelPassword', 'tls', 'tlsCa']);
  for (const key of Object.keys(o)) if (!known.has(key)) throw invalid(where, `has an unknown field ${key} (known: ${[...known].join(', ')})`);
  const optionalText = (key: string): string | null => {
    const v = o[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v === '') throw invalid(`${where}.${key}`, 'must be a non-empty text');
    return v;
  };
  const db = o.db === undefined ? 0 : parseDb(o.db, `${where}.db`);
  const credentials: Credentials = { db, username: optionalText('username'), password: optionalText('password') };
  if (o.tls !== undefined && typeof o.tls !== 'boolean') throw invalid(`${where}.tls`, 'must be true or false');
  const tls = o.tls === true;
  const tlsCa = optionalText('tlsCa');
  if (tlsCa !== null && !tls) throw invalid(`${where}.tlsCa`, 'goes with tls: true');
  const forms = ['host', 'path', 'sentinels'].filter((k) => o[k] !== undefined);
  if (forms.length !== 1) throw invalid(where, `must have exactly one of host (a server), path (a Unix socket) or sentinels (Sentinel), not ${forms.length === 0 ? 'none' : forms.join(' and ')}`);
  if (o.host !== undefined) {
    const host = optionalText('host') as string;
    const port = o.port === undefined ? DEFAULT_PORT : o.port;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw invalid(`${where}.port`, `must be a port number from 1 to 65535, not ${JSON.stringify(port)}`);
    return { kind: 'server', host, port: port as number, tls, tlsCa, ...credentials };
  }
  if (o.port !== undefined) throw invalid(`${where}.port`, 'goes with host only');
  if (o.path !== undefined) {
    if (tls) throw invalid(`${where}.tls`, 'does not apply to a Unix socket');
    return { kind: 'socket', path: optionalText('path') as string, ...credentials };
  }
  if (!Array.isArray(o.sentinels) || o.sentinels.length === 0) throw invalid(`${where}.sentinels`, 'must be a list of { host, port } (at least one)');
  const sentinels = o.sentinels.map((s: unknown, i): RedisEndpoint => {
    const path = `${where}.sentinels[${i}]`;
    if (typeof s === 'string') return parseHostPort(s, DEFAULT_SENTINEL_PORT, path);
    const e = s as { host?: unknown; port?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.host !== 'string' || e.host === '') throw invalid(path, 'must be { host, port } or "host:port"');
    const port = e.port ?? DEFAULT_SENTINEL_PORT;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw invalid(`${path}.port`, `must be a port number from 1 to 65535, not ${JSON.stringify(port)}`);
    return { host: e.host, port: port as number };
  });
  const name = optionalText('name');
  if (name === null) throw invalid(`${where}.name`, 'must name the master the Sentinels monitor');
  return { kind: 'sentinel', sentinels, name, ...credentials, sentinelUsername: optionalText('sentinelUsername'), sentinelPassword: optionalText('sentinelPassword'), tls, tlsCa };
}

function parseDb(value: unknown, where: string): number {
  if (value === '' || value === undefined) return 0;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isSafeInteger(n) || (n as number) < 0) throw invalid(where, `names a database that is not a number from 0 up: ${JSON.stringify(value)}`);
  return n as number;
}

function invalid(where: string, what: string): ClusterError {
  return new ClusterError('CLUSTER_REDIS_ADDRESS_INVALID', `${where} ${what}`);
}

/** An address as text without its password (the user name stays: it helps find a wrong one). */
export function describeAddress(a: RedisAddress): string {
  const user = a.username !== null || a.password !== null ? `${a.username ?? ''}${a.password !== null ? ':***' : ''}@` : '';
  const db = a.db === 0 ? '' : `/${a.db}`;
  if (a.kind === 'server') return `${a.tls ? 'rediss' : 'redis'}://${user}${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}${db}`;
  if (a.kind === 'socket') return `unix://${user === '' ? '' : user}${a.path}${a.db === 0 ? '' : `?db=${a.db}`}`;
  return `redis-sentinel://${user}${a.sentinels.map((s) => `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).join(',')}/${a.name}${db}`;
}

/** A text that did not parse, with anything between `:` and `@` after the scheme hidden. */
function redactText(text: string): string {
  return text.replace(/^([a-z+-]+:\/\/[^:@/]*:)[^@]*@/i, '$1***@');
}

export interface RedisConnectionOptions {
  /** shown in CLIENT LIST, e.g. `parley:node-a` */
  readonly connectionName?: string;
  /** milliseconds to wait for the first connection (default 10 000) */
  readonly connectTimeoutMs?: number;
  /**
   * reconnection attempts a command waits through before it fails with CLUSTER_REDIS_UNAVAILABLE
   * (default 2: roughly 300 ms; a REGISTER then gets an error rather than no answer)
   */
  readonly commandRetries?: number;
  /** connection lost and restored are logged here (warn, info) */
  readonly logger?: Logger;
}

/** An open connection, its address for messages, and the way to open a second one (subscribers). */
export interface RedisConnection {
  readonly client: Redis;
  readonly address: RedisAddress;
  /** the address without its password */
  readonly description: string;
  /** another connection to the same Redis with the same settings (a subscriber needs its own) */
  duplicate(role: string): Promise<RedisConnection>;
  close(): Promise<void>;
}

/**
 * Connects to Redis and checks that it answers. Throws ClusterError: CLUSTER_REDIS_UNREACHABLE,
 * CLUSTER_REDIS_AUTH_FAILED or CLUSTER_REDIS_REFUSED, with the address (never the password) and
 * what to check. Once connected, the connection is restored by itself after a loss.
 */
export async function openRedis(config: RedisAddress | string | object, options: RedisConnectionOptions = {}): Promise<RedisConnection> {
  const address = isAddress(config) ? config : parseRedisAddress(config);
  return connect(address, options, options.connectionName ?? 'parley');
}

function isAddress(config: unknown): config is RedisAddress {
  const kind = (config as { kind?: unknown } | null)?.kind;
  return kind === 'server' || kind === 'socket' || kind === 'sentinel';
}

async function connect(address: RedisAddress, options: RedisConnectionOptions, connectionName: string): Promise<RedisConnection> {
  const description = describeAddress(address);
  const log = options.logger;
  let established = false;
  let lastError: Error | null = null;
  let lost = false;
  // Before the first connection, give up at once (the operator wants to know now); after it, retry
  // without end, waiting a little longer each time up to 2 s.
  const retry = (times: number): number | null => (established ? Math.min(times * 100, 2000) : null);
  const client = new Redis({
    ...clientOptions(address, description),
    connectionName,
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    maxRetriesPerRequest: options.commandRetries ?? 2,
    retryStrategy: retry,
    sentinelRetryStrategy: retry,
  });
  client.on('error', (err: Error) => {
    lastError = err;
  });
  // once per loss, however many attempts it takes (a close without an error is a loss too)
  client.on('reconnecting', () => {
    if (!established || lost) return;
    lost = true;
    log?.warn({ err: lastError === null ? undefined : redactError(lastError, address), redis: description }, 'connection to Redis at %s lost; reconnecting', description);
  });
  client.on('ready', () => {
    if (lost) log?.info({ redis: description }, 'connection to Redis at %s restored', description);
    lost = false;
    lastError = null;
  });
  try {
    await client.connect();
    // ioredis selects the database while connecting but only reports a refusal as an event
    if (address.db !== 0) await client.select(address.db);
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw connectFailure(lastError ?? (err as Error), address, description);
  }
  established = true;
  return {
    client,
    address,
    description,
    duplicate: (role) => connect(address, options, `${connectionName}:${role}`),
    async close() {
      established = false;
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function clientOptions(a: RedisAddress, description: string): RedisOptions {
  const credentials: RedisOptions = { db: a.db, ...(a.username !== null ? { username: a.username } : {}), ...(a.password !== null ? { password: a.password } : {}) };
  if (a.kind === 'socket') return { path: a.path, ...credentials };
  const ca = a.tlsCa === null ? {} : { ca: readCa(a.tlsCa, description) };
  if (a.kind === 'server') return { host: a.host, port: a.port, ...(a.tls ? { tls: { servername: a.host, ...ca } } : {}), ...credentials };
  return {
    sentinels: a.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: a.name,
    ...(a.sentinelUsername !== null ? { sentinelUsername: a.sentinelUsername } : {}),
    ...(a.sentinelPassword !== null ? { sentinelPassword: a.sentinelPassword } : {}),
    ...(a.tls ? { tls: { ...ca }, sentinelTLS: { ...ca }, enableTLSForSentinelMode: true } : {}),
    ...credentials,
  };
}

function readCa(file: string, description: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ClusterError('CLUSTER_REDIS_UNREACHABLE', `cannot read the CA file ${file} (tlsCa) for Redis at ${description}: ${(cause as Error).message}`, { cause });
  }
}

function connectFailure(err: Error, address: RedisAddress, description: string): ClusterError {
  const reason = redactError(err, address).message;
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(reason)) {
    const given = address.password === null ? 'no password was given; set one in the address or the password field' : 'check the user name and password';
    return new ClusterError('CLUSTER_REDIS_AUTH_FAILED', `Redis at ${description} refused the credentials (${reason}): ${given}`, { cause: err });
  }
  if (/DB index is out of range|invalid DB index/i.test(reason)) {
    return new ClusterError('CLUSTER_REDIS_REFUSED', `Redis at ${description} has no database ${address.db} (${reason}): use a number below its "databases" setting`, { cause: err });
  }
  const where = address.kind === 'sentinel'
    ? `check that the Sentinels run at those addresses and monitor a master named ${address.name}`
    : address.kind === 'socket'
      ? 'check that Redis runs and listens on that socket (unixsocket) and that this user may open it'
      : `check that Redis runs there and listens on ${address.host}${address.tls ? ' with TLS' : ''}, and that no firewall is in the way`;
  return new ClusterError('CLUSTER_REDIS_UNREACHABLE', `cannot connect to Redis at ${description} (${reason}); ${where}`, { cause: err });
}

/** ioredis's own messages never show the password; this keeps it so should that change. */
function redactError(err: Error, address: RedisAddress): Error {
  const secrets = [address.password, address.kind === 'sentinel' ? address.sentinelPassword : null].filter((s): s is string => s !== null && s !== '');
  if (!secrets.some((s) => err.message.includes(s))) return err;
  let message = err.message;
  for (const s of secrets) message = message.split(s).join('***');
  return Object.assign(new Error(message), { code: (err as { code?: unknown }).code });
}

/**
 * A failure of a command on an open connection, as a ClusterError: Redis away now
 * (CLUSTER_REDIS_UNAVAILABLE) or a refusal (CLUSTER_REDIS_REFUSED, the reply in the message).
 * `doing` says what was being done, e.g. `storing the bindings of alice@example.com`.
 */
export function commandFailure(err: unknown, connection: Pick<RedisConnection, 'description' | 'address'>, doing: string): ClusterError {
  if (err instanceof ClusterError) return err;
  const e = err instanceof Error ? redactError(err, connection.address) : new Error(String(err));
  if (e.name === 'ReplyError') {
    if (/^WRONGTYPE/.test(e.message)) return new ClusterError('CLUSTER_STATE_CORRUPT', `${doing}: Redis at ${connection.description} holds another kind of value under a key of Parley's (${e.message}); does another program use the same database and prefix?`, { cause: err });
    return new ClusterError('CLUSTER_REDIS_REFUSED', `${doing}: Redis at ${connection.description} refused (${e.message})`, { cause: err });
  }
  return new ClusterError('CLUSTER_REDIS_UNAVAILABLE', `${doing}: Redis at ${connection.description} is not reachable now (${e.message}); the connection is being restored, try again`, { cause: err });
}
