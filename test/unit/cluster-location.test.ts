// What the cluster's location service does beyond the behaviour every location service shares
// (registrar-location.test.ts): two nodes on one Redis, the node a binding is held by, atomic
// changes from two nodes at once, expiry by Redis itself, a Redis restart, state it did not write.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ClusterError, openRedis, RedisLocationService, type RedisConnection } from '../../src/cluster/index.ts';
import type { Binding } from '../../src/registrar/location.ts';
import { MemoryLocationService } from '../../src/registrar/location.ts';
import { eventually } from '../harness/eventually.ts';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../harness/redis.ts';
import { binding, NOW } from './registrar-location-suite.ts';
import { planAndApply } from '../../src/registrar/handler.ts';
import { DEFAULT_REGISTRAR_SETTINGS, planRegistration } from '../../src/registrar/plan.ts';
import type { FlowRef } from '../../src/registrar/location.ts';
import { Headers, type SipRequest } from '../../src/sip/message.ts';

/** two connections: two nodes; on a Redis Cluster, keys need a prefix with a hash tag (as Parley's own) */
interface TwoConnections {
  readonly a: RedisConnection;
  readonly b: RedisConnection;
  readonly cluster: boolean;
}

let redis: TestRedis;
let redisCluster: TestRedisCluster;
let nodeA: RedisConnection;
let nodeB: RedisConnection;
let single: TwoConnections;
let clustered: TwoConnections;
before(async () => {
  [redis, redisCluster] = await Promise.all([startRedis(), startRedisCluster()]);
  nodeA = await openRedis(redis.url, { connectionName: 'parley:node-a' });
  nodeB = await openRedis(redis.url, { connectionName: 'parley:node-b' });
  single = { a: nodeA, b: nodeB, cluster: false };
  clustered = {
    a: await openRedis(redisCluster.url, { connectionName: 'parley:node-a' }),
    b: await openRedis(redisCluster.url, { connectionName: 'parley:node-b' }),
    cluster: true,
  };
});
after(async () => {
  await nodeA?.close();
  await nodeB?.close();
  await clustered?.a.close();
  await clustered?.b.close();
  await redis?.stop();
  await redisCluster?.stop();
});

let prefixes = 0;
/** node-a and node-b sharing one Redis (or one Redis Cluster) under a fresh prefix */
function twoNodes(options: { expiryGraceMs?: number } = {}, on: TwoConnections = single) {
  const prefix = on.cluster ? `{cl${++prefixes}}:` : `cl${++prefixes}:`;
  return {
    prefix,
    a: new RedisLocationService(on.a, { node: 'node-a', prefix, ...options }),
    b: new RedisLocationService(on.b, { node: 'node-b', prefix, ...options }),
  };
}

/** a binding as a REGISTER on some node makes it: no node named */
function unplaced(aor: string, key: string, flowId: string, expiresAt = NOW + 1000): Binding {
  const b = binding(aor, key, flowId, expiresAt);
  delete b.flow.node;
  return b;
}

const put = (b: Binding) => ({ type: 'put' as const, binding: b });

const FLOW_A: FlowRef = { id: 'tcp#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '192.0.2.1', port: 40000 } };
const FLOW_B: FlowRef = { ...FLOW_A, id: 'tcp#7' };

/** A REGISTER of alice with one Contact. */
function register(contact: string, callId: string, cseq: number): SipRequest {
  const headers = new Headers([
    { name: 'via', value: 'SIP/2.0/TCP 192.0.2.1:40000;branch=z9hG4bK1' },
    { name: 'from', value: '<sip:alice@parley.test>;tag=1' },
    { name: 'to', value: '<sip:alice@parley.test>' },
    { name: 'call-id', value: callId },
    { name: 'cseq', value: `${cseq} REGISTER` },
    { name: 'contact', value: contact },
  ]);
  return { kind: 'request', method: 'REGISTER', uri: 'sip:parley.test', headers, body: Buffer.alloc(0) };
}

// on one Redis, and on a Redis Cluster of three masters: each prefix's slot on one of them
for (const engine of [{ name: 'one Redis', on: () => single }, { name: 'a Redis Cluster', on: () => clustered }]) describe(`Redis location service across nodes, on ${engine.name}`, () => {
  it('records the node that applied a binding, unless the binding names one; the memory service records none', async () => {
    const { a } = twoNodes({}, engine.on());
    const [held] = await a.apply('alice@x', [put(unplaced('alice@x', 'k1', 'f1'))], NOW);
    assert.equal(held?.flow.node, 'node-a');
    const named = binding('bob@x', 'k2', 'f2');
    named.flow.node = 'node-c';
    assert.equal((await a.apply('bob@x', [put(named)], NOW))[0]?.flow.node, 'node-c');
    const memory = new MemoryLocationService();
    assert.equal((await memory.apply('alice@x', [put(unplaced('alice@x', 'k1', 'f1'))], NOW))[0]?.flow.node, undefined);
  });

  it('shows each node the bindings of the other, with the node that holds each flow', async () => {
    const { a, b } = twoNodes({}, engine.on());
    await a.apply('alice@x', [put(unplaced('alice@x', 'phone', 'tcp:1'))], NOW);
    await b.apply('alice@x', [put(unplaced('alice@x', 'laptop', 'tcp:1'))], NOW);
    const seen = (list: Binding[]) => list.map((x) => `${x.key}@${x.flow.node}`);
    assert.deepEqual(seen(await a.lookup('alice@x', NOW)), ['phone@node-a', 'laptop@node-b']);
    assert.deepEqual(seen(await b.lookup('alice@x', NOW)), ['phone@node-a', 'laptop@node-b']);
    assert.deepEqual([...(await b.countClusterByTransport(NOW))], [['tcp', 2]], 'counted for the whole cluster');
  });

  it('counts per node the bindings whose flow it holds, which add up to the cluster count (parley_registrations per node)', async () => {
    const { a, b } = twoNodes({}, engine.on());
    const over = (protocol: 'tcp' | 'ws', flowId: string) => ({ flow: { id: flowId, protocol, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } } });
    await a.apply('alice@x', [put(unplaced('alice@x', 'phone', 'tcp:1')), put({ ...binding('alice@x', 'web', 'ws:1', NOW + 1000, over('ws', 'ws:1')), flow: { ...over('ws', 'ws:1').flow } })], NOW);
    await b.apply('bob@x', [put(unplaced('bob@x', 'phone', 'tcp:1'))], NOW);
    await b.apply('carol@x', [put(unplaced('carol@x', 'phone', 'tcp:2', NOW + 10))], NOW);
    // a binding of alice moves from node a to node b: counted at node b only
    await b.apply('alice@x', [put(unplaced('alice@x', 'phone', 'tcp:3'))], NOW);
    assert.deepEqual(Object.fromEntries(await a.countByTransport(NOW)), { ws: 1 });
    assert.deepEqual(Object.fromEntries(await b.countByTransport(NOW)), { tcp: 3 });
    assert.deepEqual(Object.fromEntries(await a.countClusterByTransport(NOW)), { tcp: 3, ws: 1 });
    // expired and swept, and dropped with a closed flow: counted nowhere
    await b.sweep(NOW + 10);
    await b.removeFlow('tcp:1');
    assert.deepEqual(Object.fromEntries(await b.countByTransport(NOW + 10)), { tcp: 1 });
    assert.deepEqual(Object.fromEntries(await b.countClusterByTransport(NOW + 10)), { tcp: 1, ws: 1 });
  });

  it('drops on a closed flow only the bindings of that node: flow ids are unique within a node only', async () => {
    const { a, b } = twoNodes({}, engine.on());
    await a.apply('alice@x', [put(unplaced('alice@x', 'phone', 'tcp:1'))], NOW);
    await b.apply('alice@x', [put(unplaced('alice@x', 'laptop', 'tcp:1'))], NOW);
    assert.deepEqual((await b.removeFlow('tcp:1')).map((x) => x.key), ['laptop']);
    assert.deepEqual((await a.lookup('alice@x', NOW)).map((x) => x.key), ['phone']);
    assert.deepEqual(await b.removeFlow('tcp:1'), []);
    assert.deepEqual((await a.removeFlow('tcp:1')).map((x) => x.key), ['phone']);
  });

  it('drops every binding a node held once that node is gone, and only those', async () => {
    const { a, b } = twoNodes({}, engine.on());
    await a.apply('alice@x', [put(unplaced('alice@x', 'phone', 'tcp:1')), put(unplaced('alice@x', 'tablet', 'ws:[*]?'))], NOW);
    await a.apply('bob@x', [put(unplaced('bob@x', 'phone', 'udp:shared'))], NOW);
    await b.apply('alice@x', [put(unplaced('alice@x', 'laptop', 'tcp:1'))], NOW);
    const gone = await b.removeNode('node-a');
    assert.deepEqual(gone.map((x) => `${x.aor} ${x.key}`).sort(), ['alice@x phone', 'alice@x tablet', 'bob@x phone']);
    assert.deepEqual((await b.lookup('alice@x', NOW)).map((x) => x.key), ['laptop']);
    assert.deepEqual(await b.lookup('bob@x', NOW), []);
    assert.deepEqual(await b.removeNode('node-a'), []);
  });

  it('reports each expired binding to one sweeping node only', async () => {
    const { a, b } = twoNodes({}, engine.on());
    for (let i = 0; i < 20; i++) await (i % 2 ? a : b).apply(`u${i}@x`, [put(unplaced(`u${i}@x`, 'k', `f${i}`, NOW + 10))], NOW);
    const [fromA, fromB] = await Promise.all([a.sweep(NOW + 10), b.sweep(NOW + 10)]);
    const all = [...fromA, ...fromB].map((x) => x.aor).sort();
    assert.deepEqual(all, Array.from({ length: 20 }, (_, i) => `u${i}@x`).sort());
  });

  it('sweeps more addresses-of-record than one script takes at a time (batches of 500)', async () => {
    const { a } = twoNodes({}, engine.on());
    await Promise.all(Array.from({ length: 1234 }, (_, i) => a.apply(`u${i}@x`, [put(unplaced(`u${i}@x`, 'k', 'udp-shared', NOW + 10))], NOW)));
    await a.apply('stays@x', [put(unplaced('stays@x', 'k', 'udp-shared', NOW + 1000))], NOW);
    assert.equal((await a.sweep(NOW + 10)).length, 1234);
    assert.deepEqual((await a.removeFlow('udp-shared')).map((x) => x.aor), ['stays@x'], 'the flow index kept only the binding left');
  });

  it('applies the REGISTERs of two nodes for one address-of-record at once without losing any (atomic per AoR)', async () => {
    const { a, b } = twoNodes({}, engine.on());
    const writes = Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).apply('busy@x', [put(unplaced('busy@x', `k${i}`, `f${i}`))], NOW));
    await Promise.all(writes);
    const keys = (await a.lookup('busy@x', NOW)).map((x) => x.key).sort();
    assert.deepEqual(keys, Array.from({ length: 60 }, (_, i) => `k${i}`).sort());
  });

  it('two nodes planning REGISTERs of one AoR from the same lookup: the second applies nothing and plans again (CSeq order, RFC 3261 §10.3 step 7)', async () => {
    const { a, b } = twoNodes({}, engine.on());
    const aor = 'alice@parley.test';
    const newer = register('<sip:alice@192.0.2.1:5060;transport=tcp>', 'reg-1', 2);
    const older = register('<sip:alice@192.0.2.1:5060;transport=tcp>', 'reg-1', 1);
    // both nodes looked up the AoR (no bindings) and planned; node a's changes land first
    const basis = await b.lookup(aor, NOW);
    const planB = planRegistration({ aor, request: older, flow: FLOW_B, current: basis, now: NOW, settings: DEFAULT_REGISTRAR_SETTINGS });
    assert.ok(planB.ok);
    assert.ok((await planAndApply(a, DEFAULT_REGISTRAR_SETTINGS, { aor, request: newer, flow: FLOW_A, now: NOW })).ok);
    assert.equal(await b.applyIf(aor, basis, planB.changes, NOW), null, "node b's plan was made from bindings that changed");
    // planned again, the older CSeq is refused instead of overwriting the newer binding
    const again = await planAndApply(b, DEFAULT_REGISTRAR_SETTINGS, { aor, request: older, flow: FLOW_B, now: NOW });
    assert.equal(again.ok ? 200 : again.status, 400);
    assert.deepEqual((await b.lookup(aor, NOW)).map((x) => [x.cseq, x.flow.node]), [[2, 'node-a']]);
  });

  it('REGISTERs of one AoR at two nodes at once keep CSeq order per Call-ID and maxBindings', async () => {
    const { a, b } = twoNodes({}, engine.on());
    const aor = 'alice@parley.test';
    const settings = { ...DEFAULT_REGISTRAR_SETTINGS, maxBindings: 3 };
    // one Call-ID, CSeq 1…20, sent to both nodes at once: each either applies, or is refused (400:
    // a higher CSeq came first; 500: overtaken five times). No lower CSeq overwrites a higher one
    // that was answered 200: the binding ends at the highest CSeq applied.
    const refreshes = Array.from({ length: 20 }, (_, i) => planAndApply(i % 2 ? a : b, settings, { aor, request: register('<sip:alice@192.0.2.1:5060;transport=tcp>', 'reg-1', i + 1), flow: i % 2 ? FLOW_A : FLOW_B, now: NOW }));
    const outcomes = await Promise.all(refreshes);
    const appliedCseqs = outcomes.flatMap((o, i) => (o.ok ? [i + 1] : []));
    assert.ok(appliedCseqs.length > 0);
    for (const o of outcomes) assert.ok(o.ok || o.status === 400 || o.status === 500, JSON.stringify(o));
    assert.deepEqual((await a.lookup(aor, NOW)).map((x) => x.cseq), [Math.max(...appliedCseqs)]);
    // twelve devices registering at once through both nodes: never more than maxBindings
    await Promise.all(Array.from({ length: 12 }, (_, i) => planAndApply(i % 2 ? a : b, settings, { aor, request: register(`<sip:alice@192.0.2.${i + 10}:5060;transport=tcp>`, `dev-${i}`, 1), flow: i % 2 ? FLOW_A : FLOW_B, now: NOW + 1 })));
    assert.equal((await a.lookup(aor, NOW + 1)).length, 3);
  });
});

describe('Redis location service expiry by Redis', () => {
  it('lets Redis keep an address-of-record until its longest binding plus the grace', async () => {
    const { a, prefix } = twoNodes({ expiryGraceMs: 60_000 });
    await a.apply('alice@x', [put(unplaced('alice@x', 'short', 'f1', NOW + 30_000)), put(unplaced('alice@x', 'long', 'f2', NOW + 600_000))], NOW);
    const ttl = await nodeA.client.pttl(`${prefix}loc:aor:alice@x`);
    assert.ok(ttl > 30_000 + 60_000 && ttl <= 600_000 + 60_000, `TTL ${ttl} ms: the longest binding's 600 s and 60 s of grace`);
    const flowTtl = await nodeA.client.pttl(`${prefix}loc:flow:node-a:f2`);
    assert.ok(flowTtl > 30_000 + 60_000 && flowTtl <= 600_000 + 60_000, `flow index TTL ${flowTtl} ms`);
  });

  it('forgets an address-of-record and its flow index once Redis expires them, though no node swept', async () => {
    const { a, b, prefix } = twoNodes({ expiryGraceMs: 0 });
    const now = Date.now(); // Redis expires on its own clock: this test's bindings live on real time
    await a.apply('alice@x', [put(unplaced('alice@x', 'k1', 'f1', now + 300))], now);
    assert.equal((await b.lookup('alice@x', now)).length, 1);
    await eventually('Redis to expire the address-of-record', async () => ((await nodeA.client.exists(`${prefix}loc:aor:alice@x`)) === 0 ? true : undefined), 10_000);
    assert.deepEqual(await b.lookup('alice@x', now), [], 'gone even for a clock that says it is not expired yet');
    assert.equal(await nodeA.client.exists(`${prefix}loc:flow:node-a:f1`), 0, 'the flow index expired with it');
    assert.deepEqual(await a.removeFlow('f1'), []);
    assert.deepEqual(await a.sweep(now + 1000), [], 'what Redis expired is not reported again');
    assert.deepEqual([...(await a.countByTransport(now))], [], 'nor counted');
  });
});

describe('Redis location service and its Redis', () => {
  it('fails with CLUSTER_REDIS_UNAVAILABLE while Redis is down, and works again once it is back (empty: nothing persisted)', async () => {
    const own = await startRedis();
    const logged: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { level: number; msg: string }) });
    const connection = await openRedis(own.url, { commandRetries: 1, logger });
    try {
      const location = new RedisLocationService(connection, { node: 'node-a' });
      await location.apply('alice@x', [put(unplaced('alice@x', 'k1', 'f1'))], NOW);
      await own.halt();
      await assert.rejects(location.lookup('alice@x', NOW), (err: unknown) => {
        assert.ok(err instanceof ClusterError);
        assert.equal(err.code, 'CLUSTER_REDIS_UNAVAILABLE');
        assert.match(err.message, /looking up the bindings of alice@x: Redis at unix:\/\/.*redis\.sock is not reachable now/);
        return true;
      });
      await own.start();
      // the scripts are gone with the restarted server's script cache: loaded again by the client
      const stored = await eventually('the location service to work again', async () => {
        try {
          return await location.apply('alice@x', [put(unplaced('alice@x', 'k2', 'f1'))], NOW);
        } catch (err) {
          if (err instanceof ClusterError && err.code === 'CLUSTER_REDIS_UNAVAILABLE') return undefined;
          throw err;
        }
      });
      assert.deepEqual(stored.map((x) => x.key), ['k2'], 'the restarted Redis kept nothing: k1 is gone until its client registers again');
      assert.deepEqual(logged.map((l) => [l.level, l.msg.replace(/unix:\/\/\S+/, 'ADDRESS')]), [
        [40, 'connection to Redis at ADDRESS lost; reconnecting'],
        [30, 'connection to Redis at ADDRESS restored'],
      ], 'the loss told once, however many attempts, and the return');
      assert.deepEqual((await location.removeFlow('f1')).map((x) => x.key), ['k2']);
    } finally {
      await connection.close();
      await own.stop();
    }
  });

  it('refuses state it did not write with CLUSTER_STATE_CORRUPT', async () => {
    const { a, prefix } = twoNodes();
    await nodeA.client.set(`${prefix}loc:aor:alice@x`, 'not json');
    await assert.rejects(a.lookup('alice@x', NOW), { code: 'CLUSTER_STATE_CORRUPT' });
    await nodeA.client.set(`${prefix}loc:aor:bob@x`, JSON.stringify([JSON.stringify({ key: 'k' })]));
    await assert.rejects(a.lookup('bob@x', NOW), { code: 'CLUSTER_STATE_CORRUPT' });
    await nodeA.client.hset(`${prefix}loc:aor:carol@x`, 'k', 'v');
    await assert.rejects(a.lookup('carol@x', NOW), (err: unknown) => err instanceof ClusterError && err.code === 'CLUSTER_STATE_CORRUPT' && /another program/.test(err.message));
  });

  it('refuses a node id that cannot be part of a key', () => {
    for (const node of ['', 'a:b', 'a b', 'x'.repeat(65)]) {
      assert.throws(() => new RedisLocationService(nodeA, { node }), { code: 'CLUSTER_NODE_ID_INVALID' }, JSON.stringify(node));
    }
  });
});
