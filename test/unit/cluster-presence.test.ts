// Presence across the nodes of a cluster (issue 16): two presence services as two nodes, each
// with its event service (the fake context of event-service-harness.ts, one clock for both),
// sharing a redis-server of the test's own and the cluster bus. PUBLISH on one node, watchers on
// the other; SIP-If-Match through either node; expiry seen by the watchers' node; a node that dies
// leaves its publications to expire; a Redis restart; contact lists and blocks as on one node.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { ClusterBus, openRedis, type RedisConnection } from '../../src/cluster/index.ts';
import { RedisPublications } from '../../src/cluster/presence.ts';
import { ManualTimers } from '../../src/events/index.ts';
import { buildPidf, parsePidf, PresenceService, type PresenceState } from '../../src/presence/index.ts';
import type { ContactLists, SharedPublications } from '../../src/presence/index.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { eventually } from '../harness/eventually.ts';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../harness/redis.ts';
import { DOMAIN, setup } from './event-service-harness.ts';
import { quiet, until } from './presence-database.ts';

const T0 = 1_700_000_000_000;
const BOB = `bob@${DOMAIN}`;
const PIDF_ACCEPT = 'application/pidf+xml';

let redis: TestRedis;
let redisCluster: TestRedisCluster;
let prefixes = 0;
before(async () => {
  [redis, redisCluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
after(async () => {
  await redis?.stop();
  await redisCluster?.stop();
});

interface NodeOptions {
  contacts?: ContactLists;
  isBlocked?: (watcher: string, presentity: string) => boolean;
}

/** What a node asks of the shared publications and hears from the other nodes, counted. */
function counted(shared: SharedPublications) {
  const counts = { reads: 0, heard: 0 };
  const spy: SharedPublications = {
    add: (p, now) => shared.add(p, now),
    get: (aor, etag, now) => shared.get(aor, etag, now),
    replace: (aor, etag, next, now) => shared.replace(aor, etag, next, now),
    announce: (aor) => shared.announce(aor),
    of: (aor, now) => {
      counts.reads++;
      return shared.of(aor, now);
    },
    listen: (listener) => shared.listen({ changed: (aor) => (counts.heard++, listener.changed(aor)), missed: () => listener.missed() }),
  };
  return { spy, counts };
}

/**
 * Two nodes on one Redis under a fresh prefix, one clock. `registered`: the AoRs with a binding,
 * the same for both nodes (the cluster's location service is shared).
 */
async function cluster(options: NodeOptions = {}, on: { url: string } = redis) {
  // a hash tag, as Parley's own prefix: all keys in one slot on a Redis Cluster too
  const prefix = `{pr${++prefixes}}:`;
  const clock = new ManualTimers(T0);
  const registered = new Set([BOB]);
  const closers: Array<() => Promise<void>> = [];
  async function node(name: string) {
    const connection: RedisConnection = await openRedis(on.url, { connectionName: `parley:${name}`, commandRetries: 1 });
    const bus = await ClusterBus.open(connection, { node: name, prefix });
    const { spy: shared, counts } = counted(new RedisPublications(connection, bus, { node: name, prefix, expiryGraceMs: 1000 }));
    const presence = new PresenceService({ timers: clock, shared, ...options });
    const registrations = new EventEmitter<{ changed: [aor: string] }>();
    const location = { lookup: async (aor: string) => (registered.has(aor) ? [{ aor, contact: `sip:${aor}`, userAgent: null, expiresAt: T0 + 3_600_000, flow: { id: 'tcp#9', protocol: 'tcp' } } as Binding] : []) };
    const h = setup([presence], { clock, users: ['alice', 'bob', 'mallory'], context: { registrations, location } });
    await presence.settled(); // listening to the other node
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      h.events.close();
      await bus.close();
      await connection.close();
    };
    closers.push(close);
    let cseq = 1;
    /** a PUBLISH by bob through this node; the response */
    async function publish(o: { state?: PresenceState['state']; note?: string; ifMatch?: string; expires?: number }) {
      const lines = [
        `PUBLISH sip:${BOB} SIP/2.0`,
        `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK${name}${cseq}`,
        'Max-Forwards: 70',
        `From: <sip:${BOB}>;tag=pub`,
        `To: <sip:${BOB}>`,
        `Call-ID: publish-${name}-${cseq}`,
        `CSeq: ${cseq++} PUBLISH`,
        'Event: presence',
        ...(o.ifMatch === undefined ? [] : [`SIP-If-Match: ${o.ifMatch}`]),
        ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
        ...(o.state === undefined ? [] : [`Content-Type: ${PIDF_ACCEPT}`]),
      ];
      const body = o.state === undefined ? '' : buildPidf(`sip:${BOB}`, { state: o.state, note: o.note ?? '' });
      const response = await h.send(presence.handlers[0]!, lines, 'tcp#9', body);
      assert.ok(response, 'PUBLISH answered');
      return { status: response.status, etag: response.headers.get('sip-etag'), expires: response.headers.get('expires'), warning: response.headers.get('warning'), retryAfter: response.headers.get('retry-after') };
    }
    /** the state the n-th NOTIFY shows (waits for it: the other node's change comes over the bus) */
    async function notified(n: number): Promise<PresenceState> {
      await until(() => h.notifies.length > n, `NOTIFY ${n} on ${name}`);
      await quiet(presence, h.events);
      h.answerAll();
      return parsePidf(h.notifies[n]!.request.body, `sip:${BOB}`);
    }
    return { ...h, name, presence, registrations, publish, notified, close, counts };
  }
  const a = await node('node-a');
  const b = await node('node-b');
  return { a, b, clock, registered, prefix, close: async () => { for (const c of closers) await c(); } };
}

/** Runs `test` on a fresh cluster, closed after. */
async function inCluster(test: (c: Awaited<ReturnType<typeof cluster>>) => Promise<void>, options: NodeOptions = {}, on: { url: string } = redis): Promise<void> {
  const c = await cluster(options, on);
  try {
    await test(c);
  } finally {
    await c.close();
  }
}

const watchBob = { from: 'alice', to: BOB, event: 'presence', accept: PIDF_ACCEPT, expires: 3600 } as const;

/** Lets both nodes finish what changes started (bus deliveries included, looked for several times). */
async function settle(...nodes: Array<{ presence: PresenceService; events: Parameters<typeof quiet>[1] }>): Promise<void> {
  for (let round = 0; round < 3; round++) {
    await new Promise((r) => setTimeout(r, 20));
    for (const n of nodes) await quiet(n.presence, n.events);
  }
}

describe('presence across the nodes of a cluster', () => {
  // on one Redis, and on a Redis Cluster: the bus across its nodes, the store on its slot's master
  for (const on of [{ name: 'one Redis', redis: () => redis }, { name: 'a Redis Cluster', redis: () => redisCluster }]) it(`a watcher on node A gets the NOTIFY of a publication made on node B, with the document of every node (${on.name})`, async () => {
    await inCluster(async ({ a, b }) => {
    assert.equal((await a.subscribe(watchBob)).status, 200);
    assert.deepEqual(await a.notified(0), { state: 'Available', note: '' }, 'registered, nothing published');

    const first = await b.publish({ state: 'Busy', note: 'in a call' });
    assert.equal(first.status, 200);
    assert.equal(first.expires, '3600');
    assert.deepEqual(await a.notified(1), { state: 'Busy', note: 'in a call' });

    // a second device of bob, through node A: the most available wins, as on one node
    const phone = await a.publish({ state: 'Away', note: 'phone idle' });
    assert.equal(phone.status, 200);
    await settle(a, b);
    assert.equal(a.notifies.length, 2, 'Busy still wins over Away: no NOTIFY');

    // Get-CsUserPresence on either node shows both devices' publications
    for (const node of [a, b]) {
      const inspection = await node.presence.inspect(BOB);
      assert.deepEqual(inspection.publications.map((p) => `${p.state}/${p.note}`).sort(), ['Away/phone idle', 'Busy/in a call'], node.name);
      assert.equal(inspection.state, 'Busy');
    }
    assert.deepEqual((await b.presence.snapshot(BOB)).publications, 2);
    assert.deepEqual((await a.presence.inspect(BOB)).watchers.map((w) => w.watcher), [`alice@${DOMAIN}`], 'watchers are the node\'s own');
    }, {}, on.redis());
  });

  it('refreshes, modifies and removes with SIP-If-Match through the other node (entity-tags are the cluster\'s); a stale tag gets 412', async () => {
    await inCluster(async ({ a, b }) => {
    await a.subscribe(watchBob);
    await a.notified(0);
    const initial = await b.publish({ state: 'Busy', note: 'call' });
    assert.ok(initial.etag);
    await a.notified(1);

    // the client failed over to node A: its refresh still finds the publication
    const refreshed = await a.publish({ ifMatch: initial.etag, expires: 600 });
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.expires, '600');
    assert.ok(refreshed.etag && refreshed.etag !== initial.etag, 'a new entity-tag (RFC 3903 §4.1)');
    assert.equal((await b.publish({ ifMatch: initial.etag })).status, 412, 'the old tag is gone on every node');

    const modified = await a.publish({ ifMatch: refreshed.etag, state: 'Away', note: 'lunch' });
    assert.equal(modified.status, 200);
    assert.deepEqual(await a.notified(2), { state: 'Away', note: 'lunch' });

    // a watcher on node B sees the same
    await b.subscribe({ ...watchBob, callId: 'watch-on-b' });
    assert.deepEqual(await b.notified(0), { state: 'Away', note: 'lunch' });

    const removed = await b.publish({ ifMatch: modified.etag, expires: 0 });
    assert.equal(removed.status, 200);
    assert.equal(removed.expires, '0');
    assert.deepEqual(await a.notified(3), { state: 'Available', note: '' });
    assert.deepEqual(await b.notified(1), { state: 'Available', note: '' });
    const gone = await a.publish({ ifMatch: modified.etag, expires: 0 });
    assert.equal(gone.status, 412);
    assert.match(gone.warning ?? '', /no publication of bob@parley\.test has the entity-tag/);
    assert.deepEqual((await a.presence.inspect(BOB)).publications, []);
    });
  });

  it('a node without watchers of the AoR only hears the change: it reads nothing', async () => {
    await inCluster(async ({ a, b }) => {
    await a.subscribe(watchBob);
    await a.notified(0);
    const readsBefore = { a: a.counts.reads, b: b.counts.reads };
    await b.publish({ state: 'Busy' });
    await a.notified(1);
    assert.equal(a.counts.heard, 1);
    assert.ok(a.counts.reads > readsBefore.a, 'node A, watching, read the publications');
    await a.publish({ state: 'Away' });
    await until(() => b.counts.heard === 1, 'node B hearing node A\'s change');
    await settle(a, b);
    assert.equal(b.counts.reads, readsBefore.b, 'node B, watching nobody, read nothing');
    assert.equal(a.counts.heard, 1, 'a node does not hear its own changes back');
    });
  });

  it('two nodes refreshing one entity-tag at once: one wins, the other answers 412', async () => {
    await inCluster(async ({ a, b }) => {
    const initial = await a.publish({ state: 'Busy' });
    assert.ok(initial.etag);
    const both = await Promise.all([a.publish({ ifMatch: initial.etag, state: 'Away' }), b.publish({ ifMatch: initial.etag, state: 'Be Right Back' })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 412]);
    const winner = both.find((r) => r.status === 200)!;
    assert.deepEqual((await b.presence.inspect(BOB)).publications.map((p) => p.state), [winner === both[0] ? 'Away' : 'Be Right Back'], 'one publication, the winner\'s');
    });
  });

  it('answers 423 and 400 as on one node, before touching what is shared', async () => {
    await inCluster(async ({ a }) => {
    const brief = await a.publish({ state: 'Busy', expires: 10 });
    assert.equal(brief.status, 423);
    assert.equal((await a.publish({})).status, 400, 'an initial PUBLISH needs a body');
    assert.equal((await a.publish({ expires: 0 })).status, 400, 'a removal needs SIP-If-Match');
    assert.deepEqual((await a.presence.inspect(BOB)).publications, []);
    });
  });

  it('a publication that is not refreshed expires: the watchers\' node NOTIFYs, even when the node that took it is gone', async () => {
    await inCluster(async ({ a, b, clock, prefix }) => {
    await a.subscribe(watchBob);
    await a.notified(0);
    const p = await b.publish({ state: 'Do Not Disturb', note: 'focus', expires: 60 });
    assert.equal(p.status, 200);
    assert.deepEqual(await a.notified(1), { state: 'Do Not Disturb', note: 'focus' });
    // Redis forgets the AoR's publications by itself some time after the longest ends (grace 1 s here)
    const connection = await openRedis(redis.url);
    try {
      const ttl = await connection.client.pttl(`${prefix}pres:${BOB}`);
      assert.ok(ttl > 0 && ttl <= 61_000, `the key lives as long as the publication plus grace (${ttl} ms)`);
    } finally {
      await connection.close();
    }

    // node B dies: nothing removes its publications, which stay until they expire
    await b.close();
    clock.advance(30_000);
    await settle(a);
    assert.equal(a.notifies.length, 2);
    assert.deepEqual((await a.presence.inspect(BOB)).publications.map((x) => x.state), ['Do Not Disturb'], 'still there halfway');
    assert.equal((await a.publish({ ifMatch: p.etag!, expires: 600 })).status, 200, 'and its client may refresh it through node A');

    // refreshed for 600 s from T0 + 30 s: the first expiry (T0 + 60 s) finds it alive, and sends nothing
    clock.advance(30_000);
    await settle(a);
    assert.equal(a.notifies.length, 2);
    clock.advance(600_000);
    assert.deepEqual(await a.notified(2), { state: 'Available', note: '' }, 'expired: the watcher sees bob as registered and nothing published');
    assert.deepEqual((await a.presence.inspect(BOB)).publications, []);
    });
  });

  it('with no registration the watcher sees Offline whatever was published on any node; a registration change on any node counts', async () => {
    await inCluster(async ({ a, b, registered }) => {
    await b.publish({ state: 'Busy' });
    await a.subscribe(watchBob);
    assert.equal((await a.notified(0)).state, 'Busy');
    // the registrar of the cluster tells every node's registrations emitter (cluster-core's shareEvents)
    registered.clear();
    a.registrations.emit('changed', BOB);
    assert.equal((await a.notified(1)).state, 'Offline');
    });
  });

  it('contact lists and blocks work unchanged: a list on node A shows a publication made on node B; a blocked watcher sees Offline', async () => {
    const lists: ContactLists = {
      membersOf: async (owner) => (owner === `alice@${DOMAIN}` ? [{ member: BOB, displayName: 'Bob', since: new Date(T0), remote: false }] : []),
      listsWith: async (member) => (member === BOB ? [`alice@${DOMAIN}`] : []),
    };
    await inCluster(async ({ a, b }) => {
    const list = await a.subscribe({
      from: 'alice', to: `alice+contacts@${DOMAIN}`, event: 'presence', expires: 3600, callId: 'list',
      accept: 'multipart/related, application/rlmi+xml, application/pidf+xml', headers: ['Supported: eventlist'],
    });
    assert.equal(list.status, 200);
    await a.subscribe({ ...watchBob, from: 'mallory', callId: 'mallory' });
    await until(() => a.notifies.length === 2, 'the first NOTIFYs');
    await quiet(a.presence, a.events);
    a.answerAll();

    await b.publish({ state: 'Be Right Back', note: 'coffee' });
    await until(() => a.notifies.length > 2, 'the list NOTIFY');
    await settle(a, b);
    const sent = a.notifies.slice(2).map((n) => n.request as SipRequest);
    assert.equal(sent.length, 1, 'the list changed; mallory, blocked, sees Offline as before: no NOTIFY for him');
    assert.equal(sent[0]!.headers.get('require'), 'eventlist');
    assert.match(sent[0]!.body.toString(), /<note>coffee<\/note>/);
    const mallorys = a.notifies.find((n) => n.request.headers.get('call-id') === 'mallory');
    assert.deepEqual(parsePidf(mallorys!.request.body, `sip:${BOB}`), { state: 'Offline', note: '' }, 'mallory\'s first NOTIFY');
    assert.equal((await a.presence.inspect(BOB)).watchers.some((w) => w.watcher === `mallory@${DOMAIN}` && w.blocked), true);
    }, { contacts: lists, isBlocked: (watcher) => watcher === `mallory@${DOMAIN}` });
  });

  it('after Redis restarts (its publications lost) the bus comes back and the watchers see the state again; a refresh gets 412', async () => {
    const own = await startRedis();
    try {
      await inCluster(async ({ a, b }) => {
        await a.subscribe(watchBob);
        await a.notified(0);
        const p = await b.publish({ state: 'Busy' });
        assert.equal((await a.notified(1)).state, 'Busy');

        await own.restart();
        // node A's bus subscribes again and computes every watcher's document again: nothing is published now
        assert.deepEqual(await a.notified(2), { state: 'Available', note: '' });
        // the client's next refresh finds no publication: 412, and it publishes anew (RFC 3903 §6 step 4)
        const refresh = await eventually('node B to reach Redis again', async () => {
          const r = await b.publish({ ifMatch: p.etag! });
          return r.status === 503 ? undefined : r;
        });
        assert.equal(refresh.status, 412);
        assert.equal((await b.publish({ state: 'Busy' })).status, 200);
        assert.equal((await a.notified(3)).state, 'Busy');
      }, {}, own);
    } finally {
      await own.stop();
    }
  });

  it('answers 503 with Retry-After while Redis cannot be reached', async () => {
    const own = await startRedis();
    try {
      await inCluster(async ({ a }) => {
        await own.halt();
        const r = await a.publish({ state: 'Busy' });
        assert.equal(r.status, 503);
        assert.equal(r.retryAfter, '5');
        assert.match(r.warning ?? '', /presence state shared by the servers cannot be reached now/);
      }, {}, own);
    } finally {
      await own.stop();
    }
  });
});

// The store on one Redis and on a Redis Cluster (a prefix with a hash tag there, as Parley's own).
const STORES = [
  { name: 'one Redis', url: () => redis.url, prefix: (n: number) => `pr${n}:` },
  { name: 'a Redis Cluster', url: () => redisCluster.url, prefix: (n: number) => `{pr${n}}:` },
];

for (const engine of STORES) describe(`the Redis store of publications on ${engine.name}`, () => {
    it('refuses what Parley did not write (CLUSTER_STATE_CORRUPT) and reports a presence.changed message that names no AoR', async () => {
      const prefix = engine.prefix(++prefixes);
      const connection = await openRedis(engine.url());
      const errors: Error[] = [];
      const bus = await ClusterBus.open(connection, { node: 'node-a', prefix });
      const other = await ClusterBus.open(connection, { node: 'node-b', prefix });
      const store = new RedisPublications(connection, bus, { node: 'node-a', prefix, onError: (e) => errors.push(e) });
      const heard: string[] = [];
      const stop = await store.listen({ changed: (aor) => heard.push(aor), missed: () => undefined });
      try {
        await connection.client.hset(`${prefix}pres:${BOB}`, 'e1', '{"etag":"e1"}');
        await assert.rejects(store.of(BOB, T0), { code: 'CLUSTER_STATE_CORRUPT', message: /not one Parley wrote \(under \{?pr\d+\}?:pres:\)/ });
        await connection.client.hset(`${prefix}pres:${BOB}`, 'e1', JSON.stringify({ etag: 'e1', aor: BOB, presence: { state: 'Sleepy', note: '' }, updatedAt: T0, expiresAt: T0 + 1000 }));
        await assert.rejects(store.get(BOB, 'e1', T0), { code: 'CLUSTER_STATE_CORRUPT' }, 'a state Parley does not know');

        // one publishing connection, one subscriber: delivered in this order
        await store.announce(`dave@${DOMAIN}`);
        await other.publish('presence.changed', { nobody: true });
        await other.publish('presence.changed', { aor: `carol@${DOMAIN}` });
        await until(() => heard.length === 1, 'the valid message');
        assert.deepEqual(heard, [`carol@${DOMAIN}`], 'its own announcement is not heard back');
        assert.equal(errors.length, 1);
        assert.equal((errors[0] as { code?: string }).code, 'CLUSTER_BUS_MESSAGE_INVALID');
        assert.match(errors[0]!.message, /presence\.changed message from node node-b names no AoR/);
      } finally {
        await stop();
        await bus.close();
        await other.close();
        await connection.close();
      }
    });

    it('keeps a publication until its expiresAt for every reader, and frees its entity-tag after', async () => {
      const prefix = engine.prefix(++prefixes);
      const connection = await openRedis(engine.url());
      const bus = await ClusterBus.open(connection, { node: 'node-a', prefix });
      const store = new RedisPublications(connection, bus, { node: 'node-a', prefix });
      try {
        const p = { etag: 'e1', aor: BOB, presence: { state: 'Busy' as const, note: 'x' }, updatedAt: T0, expiresAt: T0 + 60_000 };
        assert.equal(await store.add(p, T0), true);
        assert.equal(await store.add({ ...p, presence: { state: 'Away', note: '' } }, T0), false, 'a live entity-tag is taken');
        assert.deepEqual(await store.get(BOB, 'e1', T0 + 59_999), p);
        assert.equal(await store.get(BOB, 'e1', T0 + 60_000), undefined);
        assert.deepEqual(await store.of(BOB, T0 + 60_000), []);
        assert.equal(await store.replace(BOB, 'e1', { ...p, etag: 'e2' }, T0 + 60_000), 'gone', 'an expired publication cannot be refreshed');
        assert.equal(await store.add({ ...p, expiresAt: T0 + 120_000 }, T0 + 60_000), true, 'its entity-tag is free again');
        assert.equal(await store.replace(BOB, 'e1', { ...p, etag: 'e1' }, T0 + 60_000), 'taken');
        assert.equal(await store.replace(BOB, 'e1', undefined, T0 + 60_000), 'replaced');
        assert.equal(await connection.client.exists(`${prefix}pres:${BOB}`), 0, 'no publication left: no key left');
      } finally {
        await bus.close();
        await connection.close();
      }
    });
});
