// The presence publications of a cluster (RFC 3903, issue 16) in Redis, and their changes on the
// cluster bus: what src/presence/shared-publications.ts needs (SharedPublications).
//
// Keys (under a prefix, `{parley}:` by default (KEY_PREFIX)):
//   pres:<aor>   hash: entity-tag → the publication's JSON text as Parley wrote it (with the node
//                that took it, for operators)
// Bus topic `presence.changed` `{ aor }`: sent by the node that changed what watchers see (a new
// publication, a modification, a removal); every node gets it, and a node with no watchers of the
// AoR does no more than look up its subscriptions in memory. Expiries are not announced: each
// node watching the AoR computes again when a publication it read ends (shared-publications.ts).
//
// Expiry, two ways on purpose (as location.ts): each publication carries its expiresAt, and
// every read filters by it; and every write drops the AoR's expired publications and has Redis
// drop the whole key `expiryGraceMs` after its longest publication, so a node that dies leaves
// nothing behind for long. TTLs are computed from the caller's `now`.
//
// Atomicity: add and replace are one Lua script each, so two nodes refreshing one entity-tag at
// once cannot both win (the loser answers 412). One key per script: fits Redis Cluster too.

import type { Cluster, Redis } from 'ioredis';
import type { SharedPublication, SharedPublications, SharedPublicationsListener } from '../presence/index.ts';
import { PRESENCE_STATES } from '../presence/index.ts';
import type { ClusterBus } from './bus.ts';
import { checkNodeId, ClusterError } from './errors.ts';
import { commandFailure, KEY_PREFIX, type RedisConnection } from './redis.ts';

/** The bus topics of presence, with their payloads (for the bus's type: `ClusterBus<PresenceBusEvents & …>`). */
export interface PresenceBusEvents extends Record<string, unknown> {
  'presence.changed': { aor: string };
}

export const PRESENCE_CHANGED = 'presence.changed';

export interface RedisPublicationsOptions {
  /** this node's id, written beside each publication it takes */
  readonly node: string;
  /** key prefix (default `{parley}:`, KEY_PREFIX: a hash tag, so that in a Redis Cluster all of them share one slot) */
  readonly prefix?: string;
  /** milliseconds Redis keeps an AoR's publications after the longest one ended (default 120 000) */
  readonly expiryGraceMs?: number;
  /** a message on presence.changed that no Parley node sent */
  readonly onError?: (err: Error) => void;
}

// Shared by the scripts. KEYS[1]: the AoR's hash; ARGV[1]: now, ARGV[2]: grace.
const PRELUDE = `
local key, now, grace = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])

-- drops the AoR's expired publications; the key lives until its longest one ends, plus grace
local function tidy()
  local latest = nil
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local expiresAt = cjson.decode(fields[i + 1]).expiresAt
    if expiresAt <= now then
      redis.call('HDEL', key, fields[i])
    elseif latest == nil or expiresAt > latest then
      latest = expiresAt
    end
  end
  if latest == nil then redis.call('DEL', key) else redis.call('PEXPIRE', key, math.max(1, math.floor(latest - now + grace))) end
end

local function live(etag)
  local text = redis.call('HGET', key, etag)
  return text and cjson.decode(text).expiresAt > now
end
`;

// ARGV: now, grace, etag, text. 1: added; 0: the entity-tag is taken.
const ADD = `${PRELUDE}
if live(ARGV[3]) then return 0 end
redis.call('HSET', key, ARGV[3], ARGV[4])
tidy()
return 1
`;

// ARGV: now, grace, etag, next etag ('' removes), next text. 1: replaced; 0: gone; -1: next etag taken.
const REPLACE = `${PRELUDE}
if not live(ARGV[3]) then return 0 end
if ARGV[4] ~= '' and live(ARGV[4]) then return -1 end
redis.call('HDEL', key, ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', key, ARGV[4], ARGV[5]) end
tidy()
return 1
`;

interface PublicationCommands {
  parleyPresenceAdd(key: string, now: number, grace: number, etag: string, text: string): Promise<number>;
  parleyPresenceReplace(key: string, now: number, grace: number, etag: string, nextEtag: string, nextText: string): Promise<number>;
}

/** Defines the scripts on a client once (ioredis keeps them per client, and loads them again after a Redis restart). */
function commands(client: Redis | Cluster): PublicationCommands {
  const c = client as (Redis | Cluster) & Partial<PublicationCommands>;
  if (c.parleyPresenceAdd === undefined) {
    client.defineCommand('parleyPresenceAdd', { numberOfKeys: 1, lua: ADD });
    client.defineCommand('parleyPresenceReplace', { numberOfKeys: 1, lua: REPLACE });
  }
  return c as (Redis | Cluster) & PublicationCommands;
}

const STATES: ReadonlySet<string> = new Set(PRESENCE_STATES);

export class RedisPublications implements SharedPublications {
  readonly #redis: RedisConnection;
  readonly #commands: PublicationCommands;
  readonly #bus: ClusterBus<PresenceBusEvents>;
  readonly #node: string;
  readonly #prefix: string;
  readonly #grace: number;
  readonly #onError: (err: Error) => void;

  /**
   * `bus`: typed with presence's topics among others (`ClusterBus<PresenceBusEvents & Others>`), or
   * untyped (`ClusterBus`: the payloads are checked on arrival all the same). The bus and the
   * connection are the caller's to close.
   */
  constructor(redis: RedisConnection, bus: ClusterBus<PresenceBusEvents> | ClusterBus, options: RedisPublicationsOptions) {
    checkNodeId(options.node);
    this.#redis = redis;
    this.#commands = commands(redis.client);
    // the same class whatever its type parameter: an untyped bus carries presence's topic as well
    this.#bus = bus as ClusterBus<PresenceBusEvents>;
    this.#node = options.node;
    this.#prefix = options.prefix ?? KEY_PREFIX;
    this.#grace = options.expiryGraceMs ?? 120_000;
    this.#onError = options.onError ?? (() => undefined);
  }

  async add(publication: SharedPublication, now: number): Promise<boolean> {
    const added = await this.#run(`storing a publication of ${publication.aor}`, () =>
      this.#commands.parleyPresenceAdd(this.#key(publication.aor), now, this.#grace, publication.etag, this.#text(publication)));
    return added === 1;
  }

  async get(aor: string, etag: string, now: number): Promise<SharedPublication | undefined> {
    const text = await this.#run(`reading a publication of ${aor}`, () => this.#redis.client.hget(this.#key(aor), etag));
    if (text === null) return undefined;
    const publication = this.#decode(text, aor);
    return publication.expiresAt > now ? publication : undefined;
  }

  async replace(aor: string, etag: string, next: SharedPublication | undefined, now: number): Promise<'replaced' | 'gone' | 'taken'> {
    const result = await this.#run(`replacing a publication of ${aor}`, () =>
      this.#commands.parleyPresenceReplace(this.#key(aor), now, this.#grace, etag, next?.etag ?? '', next === undefined ? '' : this.#text(next)));
    return result === 1 ? 'replaced' : result === 0 ? 'gone' : 'taken';
  }

  async of(aor: string, now: number): Promise<SharedPublication[]> {
    const all = await this.#run(`reading the publications of ${aor}`, () => this.#redis.client.hgetall(this.#key(aor)));
    return Object.values(all).map((text) => this.#decode(text, aor)).filter((p) => p.expiresAt > now);
  }

  async announce(aor: string): Promise<void> {
    await this.#bus.publish(PRESENCE_CHANGED, { aor });
  }

  /** A node hears the others' changes, not its own (it told its watchers already). */
  async listen(listener: SharedPublicationsListener): Promise<() => Promise<void>> {
    const stopResubscribed = this.#bus.onResubscribed(() => listener.missed());
    let unsubscribe: () => Promise<void>;
    try {
      unsubscribe = await this.#bus.subscribe(PRESENCE_CHANGED, (payload, delivery) => {
        if (delivery.own) return;
        const aor = (payload as { aor?: unknown } | null)?.aor;
        if (typeof aor !== 'string' || aor === '') {
          this.#onError(new ClusterError('CLUSTER_BUS_MESSAGE_INVALID', `a ${PRESENCE_CHANGED} message from node ${delivery.from} names no AoR (${JSON.stringify(payload)?.slice(0, 80)})`));
          return;
        }
        listener.changed(aor);
      });
    } catch (err) {
      stopResubscribed();
      throw err;
    }
    return async () => {
      stopResubscribed();
      await unsubscribe();
    };
  }

  #key(aor: string): string {
    return `${this.#prefix}pres:${aor}`;
  }

  #text(p: SharedPublication): string {
    return JSON.stringify({ etag: p.etag, aor: p.aor, presence: { state: p.presence.state, note: p.presence.note }, updatedAt: p.updatedAt, expiresAt: p.expiresAt, node: this.#node });
  }

  #decode(text: string, aor: string): SharedPublication {
    let p: Partial<SharedPublication> | null;
    try {
      p = JSON.parse(text) as Partial<SharedPublication> | null;
    } catch {
      p = null;
    }
    const presence = p?.presence;
    if (
      p === null || typeof p !== 'object' || typeof p.etag !== 'string' || p.aor !== aor || typeof p.updatedAt !== 'number' || typeof p.expiresAt !== 'number'
      || typeof presence?.state !== 'string' || !STATES.has(presence.state) || typeof presence.note !== 'string'
    ) {
      throw new ClusterError('CLUSTER_STATE_CORRUPT', `a publication stored in Redis at ${this.#redis.description} for ${aor} is not one Parley wrote (under ${this.#prefix}pres:); does another program use the same database and prefix?`);
    }
    return { etag: p.etag, aor, presence: { state: presence.state, note: presence.note }, updatedAt: p.updatedAt, expiresAt: p.expiresAt };
  }

  async #run<T>(doing: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw commandFailure(err, this.#redis, doing);
    }
  }
}
