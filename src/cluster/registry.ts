// Which nodes of the cluster are alive, and where to reach them: each node announces itself in
// Redis every few seconds under a key that expires (`<prefix>node:<id>`, JSON: where the other
// nodes reach its SIP TCP listener, its WebSocket URLs for the web client), and reads everyone's
// announcements at the same time. A node that stops announcing (SIGKILL, a lost machine) is gone
// for the others once its key expires: within ttlMs + everyMs.
//
// The ids announced are also kept in a set (`<prefix>nodes`), so a node that died leaves its id
// behind: the first node to see its key gone takes the id out of the set (SREM answers 1 to that
// node only) and is the one told through `onGone` — to drop the dead node's bindings once.
//
// What a request needs (isAlive, sipAddress) is answered from memory, from the last read.

import { ClusterError, checkNodeId } from './errors.ts';
import { commandFailure, KEY_PREFIX, type RedisConnection } from './redis.ts';

export interface NodeAnnouncement {
  /** the node's id */
  readonly node: string;
  /** host:port of its SIP TCP listener, for the other nodes */
  readonly sip: string;
  /** its SIP WebSocket URLs for clients (ws://…/sip, wss://…/sip) */
  readonly webSocketUrls: readonly string[];
}

export interface NodeRegistryOptions {
  /** what this node announces */
  readonly self: NodeAnnouncement;
  /** key prefix (default `{parley}:`, KEY_PREFIX: a hash tag, so that in a Redis Cluster all of them share one slot) */
  readonly prefix?: string;
  /** how long an announcement lives, ms (default 10 000) */
  readonly ttlMs?: number;
  /** how often this node announces itself and reads the others, ms (default 3 000) */
  readonly everyMs?: number;
  /** a node stopped announcing; called on one node only, the one that noticed first */
  readonly onGone?: (node: string) => void;
  /** a node appeared, or disappeared, in this node's view (every node is told; for the log) */
  readonly onJoined?: (node: string) => void;
  readonly onLeft?: (node: string) => void;
  /** a round that failed (Redis away): the last read stays in use meanwhile */
  readonly onError?: (err: Error) => void;
}

export class NodeRegistry {
  readonly #redis: RedisConnection;
  readonly #self: NodeAnnouncement;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #onGone: (node: string) => void;
  readonly #onError: (err: Error) => void;
  readonly #onJoined: (node: string) => void;
  readonly #onLeft: (node: string) => void;
  #alive = new Map<string, NodeAnnouncement>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  /** node → when find() last looked for it in Redis in vain (Date.now()) */
  readonly #missed = new Map<string, number>();
  /** node → its lookup in Redis under way (find) */
  readonly #looking = new Map<string, Promise<string | undefined>>();

  /** Announces this node and reads the others once before it resolves; then every `everyMs`. */
  static async start(redis: RedisConnection, options: NodeRegistryOptions): Promise<NodeRegistry> {
    checkNodeId(options.self.node);
    const registry = new NodeRegistry(redis, options);
    await registry.refresh();
    registry.#timer = setInterval(() => {
      registry.refresh().catch((err: unknown) => registry.#onError(err as Error));
    }, options.everyMs ?? 3_000);
    registry.#timer.unref();
    return registry;
  }

  private constructor(redis: RedisConnection, options: NodeRegistryOptions) {
    this.#redis = redis;
    this.#self = options.self;
    this.#prefix = options.prefix ?? KEY_PREFIX;
    this.#ttlMs = options.ttlMs ?? 10_000;
    this.#onGone = options.onGone ?? (() => undefined);
    this.#onError = options.onError ?? (() => undefined);
    this.#onJoined = options.onJoined ?? (() => undefined);
    this.#onLeft = options.onLeft ?? (() => undefined);
    this.#alive.set(this.#self.node, this.#self);
  }

  get node(): string {
    return this.#self.node;
  }

  /** whether `node` announced itself lately (this node always is) */
  isAlive(node: string): boolean {
    return this.#alive.has(node);
  }

  /** host:port of a live node's SIP TCP listener; undefined: not alive */
  sipAddress(node: string): string | undefined {
    return this.#alive.get(node)?.sip;
  }

  /**
   * sipAddress, but a node not known alive is looked for in Redis once more (at most once a
   * second per node): a node that started since the last round is found at once, a dead one costs little
   */
  async find(node: string): Promise<string | undefined> {
    const known = this.sipAddress(node);
    if (known !== undefined) return known;
    // a lookup of this node under way: its answer is this request's too (a node that has just
    // joined is not "down" for the requests that arrive while it is being looked for)
    const looking = this.#looking.get(node);
    if (looking !== undefined) return looking;
    const now = Date.now();
    if (now - (this.#missed.get(node) ?? 0) < 1_000) return undefined;
    // a bound on what unknown names can hold here (a node id comes from Redis, not from clients)
    if (this.#missed.size > 1_000) this.#missed.clear();
    this.#missed.set(node, now);
    const lookup = this.refresh()
      .catch((err: unknown) => this.#onError(err as Error))
      .then(() => this.sipAddress(node))
      .finally(() => this.#looking.delete(node));
    this.#looking.set(node, lookup);
    return lookup;
  }

  /** every live node's WebSocket URLs, this node's first */
  webSocketUrls(): string[] {
    const others = [...this.#alive.values()].filter((a) => a.node !== this.#self.node).sort((a, b) => a.node.localeCompare(b.node));
    return [...this.#self.webSocketUrls, ...others.flatMap((a) => a.webSocketUrls)];
  }

  /** the ids of the live nodes */
  nodes(): string[] {
    return [...this.#alive.keys()].sort();
  }

  /** One round: announce, read every announcement, take the ids of gone nodes out of the set. */
  refresh(): Promise<void> {
    this.#round ??= this.#refresh().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  async #refresh(): Promise<void> {
    const client = this.#redis.client;
    const setKey = `${this.#prefix}nodes`;
    let ids: string[];
    try {
      const [, , members] = (await client.multi().set(this.#key(this.#self.node), JSON.stringify(this.#self), 'PX', this.#ttlMs).sadd(setKey, this.#self.node).smembers(setKey).exec()) ?? [];
      if (members?.[0]) throw members[0];
      ids = (members?.[1] as string[] | undefined) ?? [];
    } catch (err) {
      throw commandFailure(err, this.#redis, 'announcing this node in the cluster registry');
    }
    const texts = ids.length === 0 ? [] : await client.mget(ids.map((id) => this.#key(id))).catch((err: unknown) => {
      throw commandFailure(err, this.#redis, 'reading the cluster registry');
    });
    const alive = new Map<string, NodeAnnouncement>([[this.#self.node, this.#self]]);
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const text = texts[i];
      if (id === this.#self.node) return;
      if (text === null || text === undefined) gone.push(id);
      else alive.set(id, parseAnnouncement(id, text));
    });
    const before = this.#alive;
    this.#alive = alive;
    for (const id of alive.keys()) if (!before.has(id)) this.#onJoined(id);
    for (const id of before.keys()) if (!alive.has(id)) this.#onLeft(id);
    for (const id of gone) {
      const removed = await client.srem(setKey, id).catch(() => 0);
      if (removed === 1) this.#onGone(id);
    }
  }

  /** Stops announcing and withdraws this node at once (a clean stop: the others need not wait for the TTL). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#round?.catch(() => undefined);
    await this.#redis.client.multi().del(this.#key(this.#self.node)).srem(`${this.#prefix}nodes`, this.#self.node).exec().catch(() => undefined);
  }

  #key(node: string): string {
    return `${this.#prefix}node:${node}`;
  }
}

function parseAnnouncement(id: string, text: string): NodeAnnouncement {
  let o: { node?: unknown; sip?: unknown; webSocketUrls?: unknown };
  try {
    o = JSON.parse(text) as typeof o;
  } catch {
    o = {};
  }
  if (o.node !== id || typeof o.sip !== 'string' || !Array.isArray(o.webSocketUrls) || !o.webSocketUrls.every((u) => typeof u === 'string')) {
    throw new ClusterError('CLUSTER_STATE_CORRUPT', `the cluster registry's entry for node ${id} is not what a Parley node announces (${JSON.stringify(text.slice(0, 80))}); does another program use the same keys?`);
  }
  return { node: id, sip: o.sip, webSocketUrls: o.webSocketUrls as string[] };
}
