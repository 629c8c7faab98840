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
//   redis-cluster://[user:password@]host:port[,host:port…]
//                                                    a Redis Cluster, found from any of these nodes
//                                                    (database 0 only: a cluster has no other)
//   { cluster: [{ host, port } | "host:port"…], username?, password?, tls?, tlsCa? }
// (tlsCa: a PEM file of the CAs to trust instead of the system's, for a Redis with a private CA)
//
// In a Redis Cluster every key Parley writes carries the hash tag of its prefix (`{parley}:` by
// default, KEY_PREFIX), so all of them live in ONE hash slot: the Lua scripts stay atomic and
// legal there, and the cluster gives the availability of that slot's master through its replicas,
// not a spreading of Parley's keys over the masters.
//
// At start-up a Redis that cannot be reached is an error at once (CLUSTER_REDIS_UNREACHABLE, …);
// once connected, the client reconnects without end, and a command issued while Redis is away
// fails after a few reconnection attempts (CLUSTER_REDIS_UNAVAILABLE) rather than waiting longer
// than a SIP transaction would.

import { readFileSync } from 'node:fs';
// ioredis is loaded by the first connection: a single process (no cluster) never loads it (memory)
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { ClusterError } from './errors.ts';

/**
 * The default prefix of every key and channel Parley uses in Redis. The braces are a hash tag:
 * in a Redis Cluster every key under it hashes to one slot (a single Redis ignores them).
 */
export const KEY_PREFIX = '{parley}:';

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
    })
  | (Credentials & {
      readonly kind: 'cluster';
      /** nodes to learn the cluster's layout from (any of them will do) */
      readonly nodes: readonly RedisEndpoint[];
      readonly db: 0;
      readonly tls: boolean;
      readonly tlsCa: string | null;
    });

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const FORMS =
  'redis://[user:password@]host[:port][/db], rediss://… (TLS), unix:///path/to/redis.sock[?db=N], redis-sentinel://host:port[,host:port…]/master[/db] or redis-cluster://host:port[,host:port…]';

/**
 * Reads the `redis` setting (text or object, see the top of this file). `where` names the setting
 * in messages. Throws ClusterError CLUSTER_REDIS_ADDRESS_INVALID; the message never shows a password.
 */
export function parseRedisAddress(config: unknown, where = 'redis'): RedisAddress {
  if (typeof config === 'string') return parseAddressText(config, where);
  if (config !== null && typeof config === 'object' && !Array.isArray(config)) return parseAddressObject(config as Record<string, unknown>, where);
  throw invalid(where, `must be a Redis address such as ${FORMS}, or an object { host, port } / { path } / { sentinels, name } / { cluster }`);
}

function parseAddressText(text: string, where: string): RedisAddress {
  const scheme = /^([a-z+-]+):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'redis-sentinel') return parseSentinelText(text, where);
  if (scheme === 'redis-cluster') return parseClusterText(text, where);
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
  const { username, password } = parseUserinfo(userinfo);
  if (hosts === '') throw invalid(where, 'names no Sentinel; write redis-sentinel://host:port[,host:port…]/master');
  const sentinels = hosts.split(',').map((h) => parseHostPort(h, DEFAULT_SENTINEL_PORT, where));
  if (name === '') throw invalid(where, 'names no master; write redis-sentinel://host:port/master (the name the Sentinels monitor)');
  return {
    kind: 'sentinel', sentinels, name: decodeURIComponent(name), db: parseDb(db, where), username, password,
    sentinelUsername: null, sentinelPassword: null, tls: false, tlsCa: null,
  };
}

/** `redis-cluster://[user:password@]host:port[,host:port…]` (no database: a cluster has only 0). */
function parseClusterText(text: string, where: string): RedisAddress {
  const match = /^redis-cluster:\/\/(?:([^@/]*)@)?([^/?#]*)(\/?.*)$/i.exec(text);
  if (!match) throw invalid(where, `is not a Redis Cluster address: write redis-cluster://host:port[,host:port…] (${redactText(text)})`);
  const [, userinfo, hosts = '', rest = ''] = match;
  if (rest !== '' && rest !== '/') throw invalid(where, `has something after the nodes (${rest}); a Redis Cluster has only database 0: write redis-cluster://host:port[,host:port…]`);
  if (hosts === '') throw invalid(where, 'names no node; write redis-cluster://host:port[,host:port…]');
  const nodes = hosts.split(',').map((h) => parseHostPort(h, DEFAULT_PORT, where));
  return { kind: 'cluster', nodes, db: 0, ...parseUserinfo(userinfo), tls: false, tlsCa: null };
}

function parseUserinfo(userinfo: string | undefined): { username: string | null; password: string | null } {
  if (userinfo === undefined) return { username: null, password: null };
  const colon = userinfo.indexOf(':');
  const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
  return { username: user === '' ? null : decodeURIComponent(user), password: colon < 0 ? null : decodeURIComponent(userinfo.slice(colon + 1)) };
}

function parseHostPort(text: string, defaultPort: number, where: string): RedisEndpoint {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d+))?$/i.exec(text.trim());
  if (!match) throw invalid(where, `has a host that is not host[:port]: ${JSON.stringify(text)}`);
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) throw invalid(where, `has a port out of range: ${JSON.stringify(text)}`);
  return { host: (match[1] ?? match[2]) as string, port };
}

function parseAddressObject(o: Record<string, unknown>, where: string): RedisAddress {
  const known = new Set(['host', 'port', 'path', 'sentinels', 'cluster', 'name', 'db', 'username', 'password', 'sentinelUsername', 'sentinelPassword', 'tls', 'tlsCa']);
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
  const forms = ['host', 'path', 'sentinels', 'cluster'].filter((k) => o[k] !== undefined);
  if (forms.length !== 1) throw invalid(where, `must have exactly one of host (a server), path (a Unix socket), sentinels (Sentinel) or cluster (Redis Cluster), not ${forms.length === 0 ? 'none' : forms.join(' and ')}`);
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
  if (o.cluster !== undefined) {
    if (credentials.db !== 0) throw invalid(`${where}.db`, 'must be 0 (or left out) for a Redis Cluster, which has no other database');
    for (const key of ['name', 'sentinelUsername', 'sentinelPassword']) if (o[key] !== undefined) throw invalid(`${where}.${key}`, 'goes with sentinels only');
    const nodes = parseEndpoints(o.cluster, `${where}.cluster`, DEFAULT_PORT);
    return { kind: 'cluster', nodes, ...credentials, db: 0, tls, tlsCa };
  }
  const sentinels = parseEndpoints(o.sentinels, `${where}.sentinels`, DEFAULT_SENTINEL_PORT);
  const name = optionalText('name');
  if (name === null) throw invalid(`${where}.name`, 'must name the master the Sentinels monitor');
  return { kind: 'sentinel', sentinels, name, ...credentials, sentinelUsername: optionalText('sentinelUsername'), sentinelPassword: optionalText('sentinelPassword'), tls, tlsCa };
}

/** A list of `{ host, port }` or `"host:port"`, at least one. */
function parseEndpoints(list: unknown, where: string, defaultPort: number): RedisEndpoint[] {
  if (!Array.isArray(list) || list.length === 0) throw invalid(where, 'must be a list of { host, port } (at least one)');
  return list.map((s: unknown, i): RedisEndpoint => {
    const path = `${where}[${i}]`;
    if (typeof s === 'string') return parseHostPort(s, defaultPort, path);
    const e = s as { host?: unknown; port?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.host !== 'string' || e.host === '') throw invalid(path, 'must be { host, port } or "host:port"');
    const port = e.port ?? defaultPort;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw invalid(`${path}.port`, `must be a port number from 1 to 65535, not ${JSON.stringify(port)}`);
    return { host: e.host, port: port as number };
  });
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
  const hosts = (list: readonly RedisEndpoint[]): string => list.map((s) => `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).join(',');
  if (a.kind === 'cluster') return `redis-cluster://${user}${hosts(a.nodes)}${a.tls ? ' (TLS)' : ''}`;
  return `redis-sentinel://${user}${hosts(a.sentinels)}/${a.name}${db}`;
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
  /** a Redis Cluster client for a redis-cluster address (it routes each command to its slot's master) */
  readonly client: Redis | Cluster;
  readonly address: RedisAddress;
  /** the address without its password */
  readonly description: string;
  /** another connection to the same Redis with the same settings (a subscriber needs its own) */
  duplicate(role: string): Promise<RedisConnection>;
  /**
   * For a Redis Cluster: a plain connection to one of its nodes, with the same credentials and TLS,
   * which gives up (ends) after a few failed reconnection attempts instead of retrying without end,
   * so that its user can move to another node (the bus's subscriber: PUBLISH reaches every node).
   * `avoid` names nodes (`host:port`) to try last. Throws the last node's failure if none answers.
   */
  openNode(role: string, avoid?: ReadonlySet<string>): Promise<RedisConnection>;
  close(): Promise<void>;
}

/** ioredis's clients, once the first connection is opened */
let ioredis: { Cluster: typeof Cluster; Redis: typeof Redis } | undefined;

/**
 * Connects to Redis and checks that it answers. Throws ClusterError: CLUSTER_REDIS_UNREACHABLE,
 * CLUSTER_REDIS_AUTH_FAILED or CLUSTER_REDIS_REFUSED, with the address (never the password) and
 * what to check. Once connected, the connection is restored by itself after a loss.
 */
export async function openRedis(config: RedisAddress | string | object, options: RedisConnectionOptions = {}): Promise<RedisConnection> {
  const address = isAddress(config) ? config : parseRedisAddress(config);
  if (ioredis === undefined) {
    const { Cluster, Redis } = await import('ioredis');
    ioredis = { Cluster, Redis };
  }
  return connect(address, options, options.connectionName ?? 'parley');
}

function isAddress(config: unknown): config is RedisAddress {
  const kind = (config as { kind?: unknown } | null)?.kind;
  return kind === 'server' || kind === 'socket' || kind === 'sentinel' || kind === 'cluster';
}

/** reconnection attempts of a connection to one node of a Redis Cluster before it ends (see openNode) */
const NODE_RETRIES = 3;

async function connect(address: RedisAddress, options: RedisConnectionOptions, connectionName: string, giveUpAfter = Infinity): Promise<RedisConnection> {
  const description = describeAddress(address);
  const log = options.logger;
  let established = false;
  let lastError: Error | null = null;
  let lost = false;
  // Before the first connection, give up at once (the operator wants to know now); after it, retry
  // without end (a connection to one node of a Redis Cluster: giveUpAfter times, then it ends),
  // waiting a little longer each time up to 2 s.
  const retry = (times: number): number | null => (established && times <= giveUpAfter ? Math.min(times * 100, 2000) : null);
  // loaded by openRedis, through which every connection starts: nothing here waits for it
  const { Cluster, Redis } = ioredis as NonNullable<typeof ioredis>;
  const common = { connectionName, connectTimeout: options.connectTimeoutMs ?? 10_000, maxRetriesPerRequest: options.commandRetries ?? 2 };
  const client = address.kind === 'cluster'
    ? new Cluster(address.nodes.map((n) => ({ host: n.host, port: n.port })), { ...clusterOptions(address, description, common), lazyConnect: true, clusterRetryStrategy: retry })
    : new Redis({ ...clientOptions(address, description), ...common, lazyConnect: true, retryStrategy: retry, sentinelRetryStrategy: retry });
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
    openNode: (role, avoid) => openNode(address, client, options, `${connectionName}:${role}`, avoid ?? new Set()),
    async close() {
      established = false;
      await client.quit().catch(() => client.disconnect());
    },
  };
}

async function openNode(address: RedisAddress, client: Redis | Cluster, options: RedisConnectionOptions, connectionName: string, avoid: ReadonlySet<string>): Promise<RedisConnection> {
  if (address.kind !== 'cluster') return connect(address, options, connectionName);
  // the masters the client knows now, then the configured addresses (the layout may have changed)
  const known = isRedisCluster(client) ? client.nodes('master').map((n) => ({ host: n.options.host ?? '', port: n.options.port ?? DEFAULT_PORT })) : [];
  const byName = new Map<string, RedisEndpoint>();
  for (const n of [...known, ...address.nodes]) if (n.host !== '') byName.set(`${n.host}:${n.port}`, n);
  const order = [...byName.entries()].sort(([a], [b]) => Number(avoid.has(a)) - Number(avoid.has(b)));
  let failure: unknown = new ClusterError('CLUSTER_REDIS_UNREACHABLE', `no node of the Redis Cluster at ${describeAddress(address)} is known`);
  for (const [, node] of order) {
    const one: RedisAddress = { kind: 'server', host: node.host, port: node.port, tls: address.tls, tlsCa: address.tlsCa, db: 0, username: address.username, password: address.password };
    try {
      return await connect(one, options, connectionName, NODE_RETRIES);
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}

function clusterOptions(a: RedisAddress & { kind: 'cluster' }, description: string, common: RedisOptions): ClusterOptions {
  const ca = a.tlsCa === null ? {} : { ca: readCa(a.tlsCa, description) };
  return {
    redisOptions: {
      ...common,
      ...(a.username !== null ? { username: a.username } : {}),
      ...(a.password !== null ? { password: a.password } : {}),
      ...(a.tls ? { tls: { ...ca } } : {}),
    },
    // the same bound on a command's wait as a single server's: an error rather than no answer
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
  };
}

function clientOptions(a: RedisAddress & { kind: 'server' | 'socket' | 'sentinel' }, description: string): RedisOptions {
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
  // a Redis Cluster client says only that no node gave it the slots; the last node's error says why
  const lastNodeError = (err as { lastNodeError?: unknown }).lastNodeError;
  const reason = lastNodeError instanceof Error ? `${redactError(err, address).message.replace(/\.$/, '')}: ${redactError(lastNodeError, address).message}` : redactError(err, address).message;
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(reason)) {
    const given = address.password === null ? 'no password was given; set one in the address or the password field' : 'check the user name and password';
    return new ClusterError('CLUSTER_REDIS_AUTH_FAILED', `Redis at ${description} refused the credentials (${reason}): ${given}`, { cause: err });
  }
  if (/DB index is out of range|invalid DB index/i.test(reason)) {
    return new ClusterError('CLUSTER_REDIS_REFUSED', `Redis at ${description} has no database ${address.db} (${reason}): use a number below its "databases" setting`, { cause: err });
  }
  if (/cluster support disabled/i.test(reason)) {
    return new ClusterError('CLUSTER_REDIS_REFUSED', `Redis at ${description} is not a Redis Cluster (${reason}): write its address as redis://host:port`, { cause: err });
  }
  const where = address.kind === 'sentinel'
    ? `check that the Sentinels run at those addresses and monitor a master named ${address.name}`
    : address.kind === 'cluster'
      ? 'check that the Redis Cluster runs at those addresses (cluster_state:ok in CLUSTER INFO) and that no firewall is in the way'
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

/** A Redis Cluster client (not `instanceof Cluster`: that would load ioredis where no connection is made). */
export function isRedisCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}

/**
 * Every key matching `pattern` (SCAN: never blocks Redis as KEYS would). In a Redis Cluster, SCAN
 * sees one node's keys only: each master is scanned (Parley's keys are all on one of them).
 */
export async function scanKeys(connection: Pick<RedisConnection, 'client'>, pattern: string): Promise<string[]> {
  const client = connection.client;
  const servers = isRedisCluster(client) ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys;
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
