// The location service of a cluster, in Redis: every node sees every binding, and each binding
// names the node that holds its flow (FlowRef.node), so a request reaching another node can be
// forwarded there. The same semantics as MemoryLocationService, call for call (test/unit/
// registrar-location.test.ts runs one behaviour suite on both).
//
// Keys (under a prefix, `{parley}:` by default (KEY_PREFIX)):
//   loc:aor:<aor>               the AoR's bindings in order: a JSON array of each binding's JSON text
//   loc:flow:<node>:<flow id>   the AoRs with a binding over that node's flow (removeFlow)
//   loc:due                     sorted set: AoR → its earliest expiry (sweep)
//   loc:transport:<protocol>    sorted set: `<aor>\n<key>` → expiry (countClusterByTransport, for /metrics)
//   loc:held:<node>:<protocol>  the same, of the bindings whose flow that node holds (countByTransport)
//
// Expiry, two ways on purpose. Each binding carries its expiresAt and every read filters by it,
// as the memory service does. The sweep finds expired bindings through `loc:due` and hands them
// back, so the registrar can log them and tell presence (a key Redis drops by itself tells no
// one). And Redis itself expires an AoR's key and its flow keys some time (`expiryGraceMs`) after
// their longest binding, so nothing outlives its registration by much if no node sweeps at all
// (every node down for a while). TTLs are computed from the caller's `now`, never from clocks
// compared across machines.
//
// Atomicity: apply (with applyIf's check of the bindings it was planned from), removeFlow and each
// sweep batch are one Lua script each (atomic in Redis, one round trip; ioredis runs them by digest and loads them again after a Redis restart). A binding's
// JSON is stored as Parley wrote it; the scripts only read a few fields of it.
//
// In a Redis Cluster the prefix's hash tag puts every key here in one slot, so the scripts may
// touch several of them; each script names one of them (loc:due) as its KEYS[1], which is how the
// client sends it to the master of that slot.

import type { Cluster, Redis } from 'ioredis';
import { type Binding, type BindingChange, bindingVersions, type LocationService } from '../registrar/location.ts';
import type { TransportProtocol } from '../sip/index.ts';
import { checkNodeId, ClusterError } from './errors.ts';
import { commandFailure, KEY_PREFIX, type RedisConnection, scanKeys } from './redis.ts';

/** every transport a binding may be made over (a record, so a new protocol cannot be forgotten here) */
const TRANSPORTS: Record<TransportProtocol, true> = { udp: true, tcp: true, tls: true, ws: true, wss: true };

/** AoRs a sweep script takes at a time: Redis runs nothing else while a script runs */
const SWEEP_BATCH = 500;

export interface RedisLocationOptions {
  /** this node's id: bindings applied here without a node are held by this node */
  readonly node: string;
  /** key prefix (default `{parley}:`, KEY_PREFIX: a hash tag, so that in a Redis Cluster all of them share one slot) */
  readonly prefix?: string;
  /**
   * milliseconds Redis keeps an AoR after its longest binding expired (default 120 000): longer
   * than the sweep interval, so a sweep normally reports an expiry before Redis forgets it
   */
  readonly expiryGraceMs?: number;
}

// Shared by the scripts. KEYS[1] is the prefix's loc:due (only to route the script to its slot);
// ARGV[1] is always the key prefix.
const PRELUDE = `
local prefix = ARGV[1]
local function aorKey(aor) return prefix .. 'loc:aor:' .. aor end
local function flowKey(node, id) return prefix .. 'loc:flow:' .. node .. ':' .. id end
local function transportKey(protocol) return prefix .. 'loc:transport:' .. protocol end
local function heldKey(node, protocol) return prefix .. 'loc:held:' .. node .. ':' .. protocol end
local dueKey = prefix .. 'loc:due'

-- a binding: its JSON text as Parley wrote it, and the fields the scripts need
local function parse(text)
  local b = cjson.decode(text)
  return { text = text, key = b.key, callId = b.callId, cseq = b.cseq, expiresAt = b.expiresAt, flowId = b.flow.id, node = b.flow.node or '', protocol = b.flow.protocol }
end

local function load(aor)
  local raw = redis.call('GET', aorKey(aor))
  if not raw then return {} end
  local list = {}
  for i, text in ipairs(cjson.decode(raw)) do list[i] = parse(text) end
  return list
end

local function texts(list)
  local out = {}
  for i, b in ipairs(list) do out[i] = b.text end
  return out
end

-- Replaces an AoR's bindings and keeps the indexes in step. With now, the AoR key and the flow
-- keys live until the longest binding plus grace; without (removeFlow, sweep), TTLs stay as they
-- are. Only flows the AoR leaves lose it: a refresh over the same flow touches no flow set.
local function store(aor, before, after, now, grace)
  for _, b in ipairs(before) do
    local stays = false
    for _, a in ipairs(after) do
      if a.flowId == b.flowId and a.node == b.node then stays = true break end
    end
    if not stays then redis.call('SREM', flowKey(b.node, b.flowId), aor) end
    redis.call('ZREM', transportKey(b.protocol), aor .. '\\n' .. b.key)
    redis.call('ZREM', heldKey(b.node, b.protocol), aor .. '\\n' .. b.key)
  end
  if #after == 0 then
    redis.call('DEL', aorKey(aor))
    redis.call('ZREM', dueKey, aor)
    return
  end
  local earliest, latest = nil, nil
  for _, a in ipairs(after) do
    if earliest == nil or a.expiresAt < earliest then earliest = a.expiresAt end
    if latest == nil or a.expiresAt > latest then latest = a.expiresAt end
    redis.call('ZADD', transportKey(a.protocol), a.expiresAt, aor .. '\\n' .. a.key)
    redis.call('ZADD', heldKey(a.node, a.protocol), a.expiresAt, aor .. '\\n' .. a.key)
    local flow = flowKey(a.node, a.flowId)
    redis.call('SADD', flow, aor)
    if now then
      local wanted = math.max(1, math.floor(a.expiresAt - now + grace))
      local ttl = redis.call('PTTL', flow)
      if ttl < wanted then redis.call('PEXPIRE', flow, wanted) end
    end
  end
  redis.call('ZADD', dueKey, earliest, aor)
  if now then
    redis.call('SET', aorKey(aor), cjson.encode(texts(after)), 'PX', math.max(1, math.floor(latest - now + grace)))
  else
    redis.call('SET', aorKey(aor), cjson.encode(texts(after)), 'KEEPTTL')
  end
end
`;

// ARGV: prefix, aor, now, grace, changes as JSON [['put', key, text] | ['remove', key] | ['remove-all']],
// and the versions the changes were planned from as JSON [[key, callId, cseq, expiresAt], …] or ''
// (no condition). Returns false (nil: nothing applied) when the unexpired bindings differ from them.
const APPLY = `${PRELUDE}
local aor, now, grace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local before = load(aor)
local list = {}
for _, b in ipairs(before) do
  if b.expiresAt > now then list[#list + 1] = b end
end
if ARGV[6] ~= '' then
  local basis = cjson.decode(ARGV[6])
  if #basis ~= #list then return false end
  for i, v in ipairs(basis) do
    local b = list[i]
    if b.key ~= v[1] or b.callId ~= v[2] or b.cseq ~= v[3] or b.expiresAt ~= v[4] then return false end
  end
end
for _, change in ipairs(cjson.decode(ARGV[5])) do
  if change[1] == 'remove-all' then
    list = {}
  else
    local others = {}
    for _, b in ipairs(list) do
      if b.key ~= change[2] then others[#others + 1] = b end
    end
    if change[1] == 'put' then others[#others + 1] = parse(change[3]) end
    list = others
  end
end
store(aor, before, list, now, grace)
return texts(list)
`;

// ARGV: prefix, node, flow id
const REMOVE_FLOW = `${PRELUDE}
local node, flowId = ARGV[2], ARGV[3]
local flow = flowKey(node, flowId)
local removed = {}
for _, aor in ipairs(redis.call('SMEMBERS', flow)) do
  local list = load(aor)
  local keep = {}
  for _, b in ipairs(list) do
    if b.flowId == flowId and b.node == node then removed[#removed + 1] = b.text else keep[#keep + 1] = b end
  end
  store(aor, list, keep)
end
redis.call('DEL', flow)
return removed
`;

// ARGV: prefix, now, batch size. Returns { AoRs looked at, the texts of the expired bindings }.
const SWEEP = `${PRELUDE}
local now = tonumber(ARGV[2])
local aors = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local removed = {}
for _, aor in ipairs(aors) do
  local list = load(aor)
  local keep = {}
  for _, b in ipairs(list) do
    if b.expiresAt > now then keep[#keep + 1] = b else removed[#removed + 1] = b.text end
  end
  store(aor, list, keep)
end
return { #aors, removed }
`;

interface LocationCommands {
  parleyLocationApply(slotKey: string, prefix: string, aor: string, now: number, grace: number, changes: string, basis: string): Promise<string[] | null>;
  parleyLocationRemoveFlow(slotKey: string, prefix: string, node: string, flowId: string): Promise<string[]>;
  parleyLocationSweep(slotKey: string, prefix: string, now: number, batch: number): Promise<[number, string[]]>;
}

/** Defines the scripts on a client once (ioredis keeps them per client). */
function commands(client: Redis | Cluster): LocationCommands {
  const c = client as (Redis | Cluster) & Partial<LocationCommands>;
  if (c.parleyLocationApply === undefined) {
    client.defineCommand('parleyLocationApply', { numberOfKeys: 1, lua: APPLY });
    client.defineCommand('parleyLocationRemoveFlow', { numberOfKeys: 1, lua: REMOVE_FLOW });
    client.defineCommand('parleyLocationSweep', { numberOfKeys: 1, lua: SWEEP });
  }
  return c as (Redis | Cluster) & LocationCommands;
}

export class RedisLocationService implements LocationService {
  readonly #redis: RedisConnection;
  readonly #commands: LocationCommands;
  readonly #node: string;
  readonly #prefix: string;
  readonly #grace: number;
  /** the key a script names in KEYS[1] (see PRELUDE) */
  readonly #slotKey: string;

  constructor(redis: RedisConnection, options: RedisLocationOptions) {
    checkNodeId(options.node);
    this.#redis = redis;
    this.#commands = commands(redis.client);
    this.#node = options.node;
    this.#prefix = options.prefix ?? KEY_PREFIX;
    this.#grace = options.expiryGraceMs ?? 120_000;
    this.#slotKey = `${this.#prefix}loc:due`;
  }

  get node(): string {
    return this.#node;
  }

  async lookup(aor: string, now: number): Promise<Binding[]> {
    const raw = await this.#run(`looking up the bindings of ${aor}`, () => this.#redis.client.get(`${this.#prefix}loc:aor:${aor}`));
    if (raw === null) return [];
    return this.#decodeList(raw, aor).filter((b) => b.expiresAt > now);
  }

  /** The bindings put here without a node are held by this node: the one whose flow the REGISTER came on. */
  async apply(aor: string, changes: readonly BindingChange[], now: number): Promise<Binding[]> {
    return (await this.#apply(aor, null, changes, now)) as Binding[];
  }

  /** apply in the same script, which first compares the AoR's bindings with `basis` (atomic: no other node's apply runs in between). */
  async applyIf(aor: string, basis: readonly Binding[], changes: readonly BindingChange[], now: number): Promise<Binding[] | null> {
    return this.#apply(aor, basis, changes, now);
  }

  async #apply(aor: string, basis: readonly Binding[] | null, changes: readonly BindingChange[], now: number): Promise<Binding[] | null> {
    const wire = changes.map((change) => {
      if (change.type === 'remove-all') return ['remove-all'];
      if (change.type === 'remove') return ['remove', change.key];
      const binding = change.binding.flow.node === undefined ? { ...change.binding, flow: { ...change.binding.flow, node: this.#node } } : change.binding;
      return ['put', binding.key, JSON.stringify(binding)];
    });
    const condition = basis === null ? '' : JSON.stringify(bindingVersions(basis));
    const texts = await this.#run(`storing the bindings of ${aor}`, () => this.#commands.parleyLocationApply(this.#slotKey, this.#prefix, aor, now, this.#grace, JSON.stringify(wire), condition));
    if (texts === null) return null;
    return texts.map((t) => this.#decode(t, aor));
  }

  /** The bindings over one of this node's flows (flow ids are only unique within a node). */
  async removeFlow(flowId: string): Promise<Binding[]> {
    return this.#removeFlowOf(this.#node, flowId);
  }

  /**
   * Drops every binding held by `node` (a node known to be gone: its connections went with it),
   * flow by flow, each flow atomically. Its clients register again on another node.
   */
  async removeNode(node: string): Promise<Binding[]> {
    checkNodeId(node);
    const start = `${this.#prefix}loc:flow:${node}:`;
    const pattern = `${start.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const removed: Binding[] = [];
    const keys = await this.#run(`finding the flows of node ${node}`, () => scanKeys(this.#redis, pattern));
    for (const key of keys) removed.push(...(await this.#removeFlowOf(node, key.slice(start.length))));
    return removed;
  }

  async #removeFlowOf(node: string, flowId: string): Promise<Binding[]> {
    const texts = await this.#run(`dropping the bindings of flow ${flowId}`, () => this.#commands.parleyLocationRemoveFlow(this.#slotKey, this.#prefix, node, flowId));
    return texts.map((t) => this.#decode(t, `flow ${flowId}`));
  }

  /**
   * Drops the expired bindings of every node (whichever node sweeps first reports them; each is
   * reported once), in batches so Redis is never held long.
   */
  async sweep(now: number): Promise<Binding[]> {
    const removed: Binding[] = [];
    for (;;) {
      const [looked, texts] = await this.#run('sweeping expired bindings', () => this.#commands.parleyLocationSweep(this.#slotKey, this.#prefix, now, SWEEP_BATCH));
      for (const t of texts) removed.push(this.#decode(t, 'sweep'));
      if (looked < SWEEP_BATCH) break;
    }
    // entries of AoRs Redis expired by itself (none swept them in time) are dropped here
    const pipeline = this.#redis.client.pipeline();
    for (const protocol of Object.keys(TRANSPORTS)) {
      pipeline.zremrangebyscore(`${this.#prefix}loc:transport:${protocol}`, '-inf', now);
      // each node prunes its own (a node gone for good has no one to read them)
      pipeline.zremrangebyscore(`${this.#prefix}loc:held:${this.#node}:${protocol}`, '-inf', now);
    }
    await this.#run('sweeping expired bindings', () => pipeline.exec());
    return removed;
  }

  /**
   * Unexpired bindings per transport whose flow this node holds (what /metrics of this node shows:
   * the nodes' figures add up to the cluster's). A count per transport: cheap enough for a scrape.
   */
  countByTransport(now: number): Promise<Map<string, number>> {
    return this.#count(now, (protocol) => `${this.#prefix}loc:held:${this.#node}:${protocol}`);
  }

  /** Unexpired bindings per transport of every node: the same figure on each node. */
  countClusterByTransport(now: number): Promise<Map<string, number>> {
    return this.#count(now, (protocol) => `${this.#prefix}loc:transport:${protocol}`);
  }

  async #count(now: number, keyOf: (protocol: string) => string): Promise<Map<string, number>> {
    const protocols = Object.keys(TRANSPORTS);
    const pipeline = this.#redis.client.pipeline();
    for (const protocol of protocols) pipeline.zcount(keyOf(protocol), `(${now}`, '+inf');
    const results = await this.#run('counting bindings', () => pipeline.exec());
    const counts = new Map<string, number>();
    protocols.forEach((protocol, i) => {
      const [err, n] = results?.[i] ?? [null, 0];
      if (err) throw commandFailure(err, this.#redis, 'counting bindings');
      if (Number(n) > 0) counts.set(protocol, Number(n));
    });
    return counts;
  }

  async #run<T>(doing: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw commandFailure(err, this.#redis, doing);
    }
  }

  #decodeList(raw: string, what: string): Binding[] {
    let texts: unknown;
    try {
      texts = JSON.parse(raw);
    } catch {
      texts = null;
    }
    if (!Array.isArray(texts)) throw this.#corrupt(what);
    return texts.map((t) => this.#decode(t, what));
  }

  #decode(text: unknown, what: string): Binding {
    let b: Partial<Binding> | null = null;
    try {
      b = typeof text === 'string' ? (JSON.parse(text) as Partial<Binding>) : null;
    } catch {
      b = null;
    }
    if (b === null || typeof b !== 'object' || typeof b.key !== 'string' || typeof b.expiresAt !== 'number' || typeof b.flow?.id !== 'string') throw this.#corrupt(what);
    return b as Binding;
  }

  #corrupt(what: string): ClusterError {
    return new ClusterError('CLUSTER_STATE_CORRUPT', `a binding stored in Redis at ${this.#redis.description} for ${what} is not one Parley wrote (under ${this.#prefix}loc:); does another program use the same database and prefix?`);
  }
}
