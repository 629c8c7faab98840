// The cluster bus between two nodes on one redis-server of the test's own: typed events both ways,
// a node's own messages marked, subscriptions ended, what no Parley node sent, and a Redis restart
// (both nodes subscribe again by themselves and say so).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClusterBus, ClusterError, openRedis, type BusDelivery, type RedisConnection } from '../../src/cluster/index.ts';
import { eventually } from '../harness/eventually.ts';
import { startRedis, startRedisCluster } from '../harness/redis.ts';

interface Events extends Record<string, unknown> {
  'settings.changed': { scope: string; version: number };
  'cache.drop': { table: string };
}

/** What a subscription got, and a way to wait for the n-th message. */
function inbox<P>() {
  const got: Array<{ payload: P; delivery: BusDelivery }> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    got,
    handler: (payload: P, delivery: BusDelivery) => {
      got.push({ payload, delivery });
      for (const w of waiters.filter((w) => got.length >= w.n)) w.resolve();
    },
    /** resolves once `n` messages came */
    count: (n: number) => (got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}

let prefixes = 0;
const errors: Error[] = [];

/** The same behaviour on one Redis and on a Redis Cluster (PUBLISH reaches every node's subscribers). */
const ENGINES = [
  { name: 'one Redis', start: () => startRedis(), prefix: (n: number) => `bus${n}:`, cluster: false },
  // a prefix with a hash tag, as Parley's own (KEY_PREFIX)
  { name: 'a Redis Cluster', start: () => startRedisCluster(), prefix: (n: number) => `{bus${n}}:`, cluster: true },
];

for (const engine of ENGINES) describe(`cluster bus on ${engine.name}`, () => {
  let redis: { url: string; stop(): Promise<void> };
  let connA: RedisConnection;
  let connB: RedisConnection;

  before(async () => {
    redis = await engine.start();
    connA = await openRedis(redis.url);
    connB = await openRedis(redis.url);
  });
  after(async () => {
    await connA?.close();
    await connB?.close();
    await redis?.stop();
  });

  async function twoBuses() {
    const prefix = engine.prefix(++prefixes);
    const a = await ClusterBus.open<Events>(connA, { node: 'node-a', prefix, onError: (e) => errors.push(e) });
    const b = await ClusterBus.open<Events>(connB, { node: 'node-b', prefix, onError: (e) => errors.push(e) });
    return { a, b, prefix, close: async () => { await a.close(); await b.close(); } };
  }

    it('carries typed events between two nodes, each marked with its sender; a node gets its own, marked own', async () => {
      const { a, b, close } = await twoBuses();
      try {
        const atA = inbox<Events['settings.changed']>();
        const atB = inbox<Events['settings.changed']>();
        await a.subscribe('settings.changed', atA.handler);
        await b.subscribe('settings.changed', atB.handler);
        const receivers = await a.publish('settings.changed', { scope: 'global', version: 1 });
        // a Redis Cluster counts the subscribers of the node that took the PUBLISH only
        if (!engine.cluster) assert.equal(receivers, 2, 'both subscribers got it');
        await b.publish('settings.changed', { scope: 'site:x', version: 2 });
        await Promise.all([atA.count(2), atB.count(2)]);
        assert.deepEqual(atB.got, [
          { payload: { scope: 'global', version: 1 }, delivery: { topic: 'settings.changed', from: 'node-a', own: false } },
          { payload: { scope: 'site:x', version: 2 }, delivery: { topic: 'settings.changed', from: 'node-b', own: true } },
        ]);
        assert.deepEqual(atA.got.map((m) => m.delivery.own), [true, false]);
      } finally {
        await close();
      }
    });

    it('keeps topics apart, and stops delivering to a subscription that ended', async () => {
      const { a, b, close } = await twoBuses();
      try {
        const settings = inbox<Events['settings.changed']>();
        const other = inbox<Events['settings.changed']>();
        const drops = inbox<Events['cache.drop']>();
        const end = await b.subscribe('settings.changed', settings.handler);
        await b.subscribe('settings.changed', other.handler);
        await b.subscribe('cache.drop', drops.handler);
        await a.publish('cache.drop', { table: 'users' });
        await a.publish('settings.changed', { scope: 'global', version: 1 });
        await Promise.all([settings.count(1), other.count(1), drops.count(1)]);
        await end();
        await a.publish('settings.changed', { scope: 'global', version: 2 });
        await other.count(2);
        assert.deepEqual(settings.got.map((m) => m.payload.version), [1], 'the ended subscription got nothing more');
        assert.deepEqual(drops.got.map((m) => m.payload), [{ table: 'users' }], 'cache.drop saw only its own topic');
      } finally {
        await close();
      }
    });

    it('reports what no Parley node sent, and a handler that throws, and delivers on', async () => {
      const { a, b, prefix, close } = await twoBuses();
      try {
        const got = inbox<Events['cache.drop']>();
        const before = errors.length;
        await b.subscribe('cache.drop', () => {
          throw new Error('handler bug');
        });
        await b.subscribe('cache.drop', got.handler);
        await connA.client.publish(`${prefix}bus:cache.drop`, 'not json');
        await connA.client.publish(`${prefix}bus:cache.drop`, JSON.stringify({ from: 'x', payload: 1 }));
        await a.publish('cache.drop', { table: 'users' });
        await got.count(1);
        // in a Redis Cluster, messages taken by different nodes may arrive in another order
        await eventually('the three errors', async () => (errors.length - before >= 3 ? true : undefined));
        const seen = errors.slice(before);
        assert.deepEqual(seen.map((e) => (e instanceof ClusterError ? e.code : e.message)).sort(), ['CLUSTER_BUS_MESSAGE_INVALID', 'CLUSTER_BUS_MESSAGE_INVALID', 'handler bug']);
        assert.match(seen.find((e) => e.message.includes('not json'))!.message, /a message on \{?bus\d+\}?:bus:cache\.drop is not a Parley bus message \("not json"\)/);
        assert.deepEqual(got.got.map((m) => m.payload), [{ table: 'users' }]);
      } finally {
        await close();
      }
    });

    it('refuses a payload that is not JSON with CLUSTER_BUS_PAYLOAD_INVALID, and a bad node id', async () => {
      const { a, close } = await twoBuses();
      try {
        await assert.rejects(a.publish('cache.drop', { table: 1n } as unknown as { table: string }), { code: 'CLUSTER_BUS_PAYLOAD_INVALID' });
        await assert.rejects(ClusterBus.open(connA, { node: 'a:b' }), { code: 'CLUSTER_NODE_ID_INVALID' });
      } finally {
        await close();
      }
    });

});

describe('cluster bus', () => {
  it('on a Redis Cluster, subscribes through another node once the one carrying its subscription is lost, says so, and delivers on', async () => {
    const own = await startRedisCluster();
    const pubA = await openRedis(own.url, { commandRetries: 1 });
    const pubB = await openRedis(own.url, { commandRetries: 1 });
    const a = await ClusterBus.open<Events>(pubA, { node: 'node-a', onError: () => undefined });
    const b = await ClusterBus.open<Events>(pubB, { node: 'node-b', onError: () => undefined });
    try {
      const got = inbox<Events['settings.changed']>();
      await b.subscribe('settings.changed', got.handler);
      let resubscribed = 0;
      b.onResubscribed(() => resubscribed++);
      await a.publish('settings.changed', { scope: 'global', version: 1 });
      await got.count(1);

      // the client picks the node it subscribes through: the one with a subscribed connection
      let carrier: number | undefined;
      for (const port of own.ports) {
        const master = await openRedis(`redis://127.0.0.1:${port}`);
        if (/ sub=[1-9]/.test(String(await master.client.call('CLIENT', 'LIST')))) carrier = port;
        await master.close();
      }
      assert.ok(carrier !== undefined, 'one master carries the subscription');
      await own.kill(carrier);
      await eventually('node-b to subscribe again', async () => (resubscribed > 0 ? true : undefined));
      // until the clients learn the node is gone, a PUBLISH may still go to it
      await eventually('a message to arrive again', async () => {
        await a.publish('settings.changed', { scope: 'global', version: 2 }).catch(() => undefined);
        return got.got.length > 1 ? true : undefined;
      });
      assert.deepEqual(got.got[1]?.payload, { scope: 'global', version: 2 });
    } finally {
      await a.close();
      await b.close();
      await pubA.close();
      await pubB.close();
      await own.stop();
    }
  });

  it('subscribes again after Redis restarts, says so, and delivers what is published then', async () => {
    const own = await startRedis();
    const pubA = await openRedis(own.url, { commandRetries: 1 });
    const pubB = await openRedis(own.url, { commandRetries: 1 });
    const a = await ClusterBus.open<Events>(pubA, { node: 'node-a', onError: () => undefined });
    const b = await ClusterBus.open<Events>(pubB, { node: 'node-b', onError: () => undefined });
    try {
      const got = inbox<Events['settings.changed']>();
      await b.subscribe('settings.changed', got.handler);
      let resubscribed = 0;
      b.onResubscribed(() => resubscribed++);
      await a.publish('settings.changed', { scope: 'global', version: 1 });
      await got.count(1);

      await own.restart();
      await eventually('node-b to subscribe again', async () => (resubscribed > 0 ? true : undefined));
      // node-a's publishing connection may still be reconnecting: publish until it goes through
      await eventually('node-a to publish again', async () => {
        try {
          return (await a.publish('settings.changed', { scope: 'global', version: 2 })) === 1 ? true : undefined;
        } catch (err) {
          if (err instanceof ClusterError && err.code === 'CLUSTER_REDIS_UNAVAILABLE') return undefined;
          throw err;
        }
      });
      await got.count(2);
      assert.deepEqual(got.got.map((m) => [m.payload.version, m.delivery.from]), [[1, 'node-a'], [2, 'node-a']]);
      assert.equal(resubscribed, 1);
    } finally {
      await a.close();
      await b.close();
      await pubA.close();
      await pubB.close();
      await own.stop();
    }
  });
});
