// The cluster's node registry and shared events on a redis-server of the test's own: nodes find
// each other (at once when asked for one they do not know yet), a node that stops announcing is
// gone for the others and exactly one of them is told to clean up after it, a clean stop
// withdraws at once; registration, mailbox and settings events reach the other node and are not
// sent back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClusterBus, NodeRegistry, openRedis, shareEvents, type ClusterEvents, type RedisConnection } from '../../src/cluster/index.ts';
import { createRegistrationEvents } from '../../src/registrar/index.ts';
import { eventually } from '../harness/eventually.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';

let redis: TestRedis;
let conn: RedisConnection;
let prefixes = 0;

before(async () => {
  redis = await startRedis();
  conn = await openRedis(redis.url);
});
after(async () => {
  await conn?.close();
  await redis?.stop();
});

const announce = (node: string) => ({ node, sip: `10.0.0.${node.length}:5060`, webSocketUrls: [`ws://${node}.example:8080/sip`] });

describe('cluster node registry', () => {
  it('lets nodes find each other: one started later is found at once when asked for', async () => {
    const prefix = `reg${++prefixes}:`;
    const a = await NodeRegistry.start(conn, { self: announce('node-a'), prefix, everyMs: 60_000 });
    const b = await NodeRegistry.start(conn, { self: announce('node-bb'), prefix, everyMs: 60_000 });
    try {
      assert.equal(a.isAlive('node-bb'), false, 'not read yet: a announced before b started');
      // requests that arrive while the lookup runs share its answer, none is told the node is down
      assert.deepEqual(await Promise.all([a.find('node-bb'), a.find('node-bb'), a.find('node-bb')]), ['10.0.0.7:5060', '10.0.0.7:5060', '10.0.0.7:5060']);
      assert.deepEqual(a.nodes(), ['node-a', 'node-bb']);
      assert.deepEqual(b.nodes(), ['node-a', 'node-bb']);
      assert.deepEqual(a.webSocketUrls(), ['ws://node-a.example:8080/sip', 'ws://node-bb.example:8080/sip']);
      assert.deepEqual(b.webSocketUrls(), ['ws://node-bb.example:8080/sip', 'ws://node-a.example:8080/sip']);
      assert.equal(await a.find('node-zz'), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('counts a node that stops announcing as gone once its announcement expires, and tells one node only', async () => {
    const prefix = `reg${++prefixes}:`;
    const gone: string[] = [];
    const left: string[] = [];
    const a = await NodeRegistry.start(conn, { self: announce('node-a'), prefix, ttlMs: 60_000, everyMs: 60_000 });
    // node-x announces with a short TTL, then "dies": it stops without withdrawing (no close())
    const x = await NodeRegistry.start(conn, { self: announce('node-x'), prefix, ttlMs: 300, everyMs: 60_000 });
    const watchers = await Promise.all(['node-b', 'node-c'].map((node) => NodeRegistry.start(conn, { self: announce(node), prefix, ttlMs: 60_000, everyMs: 60_000, onGone: (n) => gone.push(`${node} saw ${n}`), onLeft: (n) => left.push(`${node}: ${n}`) })));
    try {
      for (const w of watchers) assert.equal(w.isAlive('node-x'), true);
      await eventually('node-x to be gone', async () => {
        await Promise.all(watchers.map((w) => w.refresh()));
        return watchers.every((w) => !w.isAlive('node-x')) ? true : undefined;
      });
      assert.equal(gone.length, 1, `exactly one node cleans up after node-x: ${gone.join(', ')}`);
      assert.match(gone[0] ?? '', /saw node-x$/);
      assert.deepEqual(left.sort(), ['node-b: node-x', 'node-c: node-x']);
    } finally {
      // x's timer only: its key is gone already
      await x.close();
      for (const r of [a, ...watchers]) await r.close();
    }
  });

  it('withdraws a node that stops cleanly at once', async () => {
    const prefix = `reg${++prefixes}:`;
    const a = await NodeRegistry.start(conn, { self: announce('node-a'), prefix, everyMs: 60_000 });
    const b = await NodeRegistry.start(conn, { self: announce('node-b'), prefix, everyMs: 60_000 });
    await a.refresh();
    assert.equal(a.isAlive('node-b'), true);
    await b.close();
    await a.refresh();
    assert.equal(a.isAlive('node-b'), false);
    assert.deepEqual(await conn.client.smembers(`${prefix}nodes`), ['node-a']);
    await a.close();
  });
});

describe('cluster events', () => {
  async function twoNodes() {
    const prefix = `ev${++prefixes}:`;
    const seen = { a: [] as string[], b: [] as string[] };
    const nodes = await Promise.all((['a', 'b'] as const).map(async (name) => {
      const bus = await ClusterBus.open<ClusterEvents>(conn, { node: `node-${name}`, prefix });
      const registrations = createRegistrationEvents();
      registrations.on('changed', (aor) => seen[name].push(`registration ${aor}`));
      const shared = await shareEvents(bus, {
        registrations,
        mailboxChanged: (address) => seen[name].push(`mailbox ${address}`),
        settingsChanged: () => seen[name].push('settings'),
        watchedAors: () => [],
        onError: (err) => seen[name].push(`error ${err.message}`),
      });
      return { bus, registrations, shared };
    }));
    const close = async () => {
      for (const n of nodes) {
        await n.shared.close();
        await n.bus.close();
      }
    };
    return { a: nodes[0]!, b: nodes[1]!, seen, close };
  }

  it('carries registration changes, mailbox changes and settings changes to the other node, once', async () => {
    const { a, b, seen, close } = await twoNodes();
    try {
      a.registrations.emit('changed', 'alice@parley.test');
      a.shared.mailboxChanged('bob@parley.test');
      b.shared.settingsChanged();
      await eventually('the events at both nodes', async () => (seen.a.length >= 3 && seen.b.length >= 3 ? true : undefined), 5_000);
      // a moment for anything sent back (a loop) to arrive: none may
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(seen.a.sort(), ['mailbox bob@parley.test', 'registration alice@parley.test', 'settings']);
      assert.deepEqual(seen.b.sort(), ['mailbox bob@parley.test', 'registration alice@parley.test', 'settings']);
    } finally {
      await close();
    }
  });
});
