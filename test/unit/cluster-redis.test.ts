// The cluster's Redis address and connection: every form the `redis` setting accepts, precise
// refusals that never show a password, and connections to real servers of the test's own (a Unix
// socket, a loopback port, a Sentinel), including the failures an operator meets first.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClusterError, describeAddress, KEY_PREFIX, openRedis, parseRedisAddress, scanKeys } from '../../src/cluster/index.ts';
import { startRedis, startRedisCluster, startSentinel, type TestRedis } from '../harness/redis.ts';

const SECRET = 's3cr:et@/x';
const ENCODED = encodeURIComponent(SECRET);

/** asserts `fn` throws a ClusterError with `code` whose message matches `pattern` and shows no secret */
function refused(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ClusterError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(SECRET) && !err.message.includes(ENCODED) && !err.message.includes('hunter2'), `no password in: ${err.message}`);
    return true;
  });
}

describe('Redis address', () => {
  it('reads redis:// and rediss:// with their defaults, credentials and database', () => {
    assert.deepEqual(parseRedisAddress('redis://cache.example'), { kind: 'server', host: 'cache.example', port: 6379, tls: false, tlsCa: null, db: 0, username: null, password: null });
    assert.deepEqual(parseRedisAddress(`rediss://parley:${ENCODED}@cache.example:6380/3`), { kind: 'server', host: 'cache.example', port: 6380, tls: true, tlsCa: null, db: 3, username: 'parley', password: SECRET });
    assert.deepEqual(parseRedisAddress('redis://:hunter2@[::1]:7000/'), { kind: 'server', host: '::1', port: 7000, tls: false, tlsCa: null, db: 0, username: null, password: 'hunter2' });
  });

  it('reads a Unix socket address, with a database', () => {
    assert.deepEqual(parseRedisAddress('unix:///run/redis/redis.sock'), { kind: 'socket', path: '/run/redis/redis.sock', db: 0, username: null, password: null });
    assert.deepEqual(parseRedisAddress('redis+unix:///run/redis/redis.sock?db=2'), { kind: 'socket', path: '/run/redis/redis.sock', db: 2, username: null, password: null });
  });

  it('reads a Sentinel address with several Sentinels, default port 26379', () => {
    assert.deepEqual(parseRedisAddress(`redis-sentinel://app:${ENCODED}@s1.example:26380,s2.example,[2001:db8::2]:5000/main/1`), {
      kind: 'sentinel',
      sentinels: [{ host: 's1.example', port: 26380 }, { host: 's2.example', port: 26379 }, { host: '2001:db8::2', port: 5000 }],
      name: 'main', db: 1, username: 'app', password: SECRET, sentinelUsername: null, sentinelPassword: null, tls: false, tlsCa: null,
    });
  });

  it('reads a Redis Cluster address with several nodes, default port 6379, and no database', () => {
    assert.deepEqual(parseRedisAddress(`redis-cluster://app:${ENCODED}@n1.example:7000,n2.example,[2001:db8::3]:7002`), {
      kind: 'cluster', nodes: [{ host: 'n1.example', port: 7000 }, { host: 'n2.example', port: 6379 }, { host: '2001:db8::3', port: 7002 }],
      db: 0, username: 'app', password: SECRET, tls: false, tlsCa: null,
    });
    assert.deepEqual(parseRedisAddress('redis-cluster://n1:7000/'), { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }], db: 0, username: null, password: null, tls: false, tlsCa: null });
  });

  it('reads the object forms', () => {
    assert.deepEqual(parseRedisAddress({ host: '10.0.0.5', password: 'hunter2', tls: true, tlsCa: '/etc/ca.pem' }), { kind: 'server', host: '10.0.0.5', port: 6379, tls: true, tlsCa: '/etc/ca.pem', db: 0, username: null, password: 'hunter2' });
    assert.deepEqual(parseRedisAddress({ path: '/run/redis.sock', db: 1 }), { kind: 'socket', path: '/run/redis.sock', db: 1, username: null, password: null });
    assert.deepEqual(parseRedisAddress({ sentinels: [{ host: 's1', port: 26379 }, 's2:26380'], name: 'main', sentinelPassword: 'hunter2' }), {
      kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], name: 'main', db: 0, username: null, password: null,
      sentinelUsername: null, sentinelPassword: 'hunter2', tls: false, tlsCa: null,
    });
    assert.deepEqual(parseRedisAddress({ cluster: ['n1:7000', { host: 'n2' }], password: 'hunter2', tls: true }), {
      kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 6379 }], db: 0, username: null, password: 'hunter2', tls: true, tlsCa: null,
    });
  });

  it('refuses what it cannot use, saying which part and how to write it, without the password', () => {
    refused(() => parseRedisAddress(`http://u:${ENCODED}@h`), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis has the scheme http:, expected one of redis:\/\//);
    refused(() => parseRedisAddress(`redis://u:${ENCODED}@h/x`), 'CLUSTER_REDIS_ADDRESS_INVALID', /names a database that is not a number from 0 up: "x"/);
    refused(() => parseRedisAddress('redis://h:6379/0?tls=1'), 'CLUSTER_REDIS_ADDRESS_INVALID', /takes no query/);
    refused(() => parseRedisAddress(`redis://u:${ENCODED}@h:99999`), 'CLUSTER_REDIS_ADDRESS_INVALID', /is not an address of the forms .* \(redis:\/\/u:\*\*\*@h:99999\)/);
    refused(() => parseRedisAddress('unix://host/run/redis.sock'), 'CLUSTER_REDIS_ADDRESS_INVALID', /names a host \(host\) in a Unix socket address; write unix:\/\/\/path/);
    refused(() => parseRedisAddress('unix:///run/redis.sock?database=1'), 'CLUSTER_REDIS_ADDRESS_INVALID', /unknown query parameter database/);
    refused(() => parseRedisAddress(`redis-sentinel://u:${ENCODED}@s1:26379`), 'CLUSTER_REDIS_ADDRESS_INVALID', /is not a Sentinel address: write redis-sentinel:\/\/host:port/);
    refused(() => parseRedisAddress('redis-sentinel://s1:26379/'), 'CLUSTER_REDIS_ADDRESS_INVALID', /names no master/);
    refused(() => parseRedisAddress('redis-sentinel://s1:0/main'), 'CLUSTER_REDIS_ADDRESS_INVALID', /port out of range/);
    refused(() => parseRedisAddress({ host: 'h', path: '/x', password: 'hunter2' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /exactly one of host .* not host and path/);
    refused(() => parseRedisAddress({ host: 'h', port: '6379' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.port must be a port number/);
    refused(() => parseRedisAddress({ sentinels: [], name: 'm' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.sentinels must be a list/);
    refused(() => parseRedisAddress({ sentinels: ['s1'] }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.name must name the master/);
    refused(() => parseRedisAddress({ host: 'h', pasword: 'hunter2' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /unknown field pasword/);
    refused(() => parseRedisAddress({ host: 'h', tlsCa: '/etc/ca.pem' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.tlsCa goes with tls: true/);
    refused(() => parseRedisAddress(`redis-cluster://u:${ENCODED}@n1:7000/1`), 'CLUSTER_REDIS_ADDRESS_INVALID', /has something after the nodes \(\/1\); a Redis Cluster has only database 0/);
    refused(() => parseRedisAddress(`redis-cluster://u:${ENCODED}@`), 'CLUSTER_REDIS_ADDRESS_INVALID', /names no node; write redis-cluster:\/\/host:port/);
    refused(() => parseRedisAddress('redis-cluster://n1:70000'), 'CLUSTER_REDIS_ADDRESS_INVALID', /port out of range/);
    refused(() => parseRedisAddress({ cluster: [], password: 'hunter2' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.cluster must be a list/);
    refused(() => parseRedisAddress({ cluster: ['n1'], db: 2 }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.db must be 0 \(or left out\) for a Redis Cluster/);
    refused(() => parseRedisAddress({ cluster: ['n1'], name: 'main' }), 'CLUSTER_REDIS_ADDRESS_INVALID', /^redis\.name goes with sentinels only/);
    refused(() => parseRedisAddress({ cluster: ['n1'], sentinels: ['s1'] }), 'CLUSTER_REDIS_ADDRESS_INVALID', /not sentinels and cluster/);
    refused(() => parseRedisAddress(6379, 'cluster.redis'), 'CLUSTER_REDIS_ADDRESS_INVALID', /^cluster\.redis must be a Redis address/);
  });

  it('describes an address without its password', () => {
    assert.equal(describeAddress(parseRedisAddress(`rediss://parley:${ENCODED}@cache.example:6380/3`)), 'rediss://parley:***@cache.example:6380/3');
    assert.equal(describeAddress(parseRedisAddress(`redis-sentinel://:${ENCODED}@s1,s2:1/main`)), 'redis-sentinel://:***@s1:26379,s2:1/main');
    assert.equal(describeAddress(parseRedisAddress('redis://[::1]')), 'redis://[::1]:6379');
    assert.equal(describeAddress(parseRedisAddress(`redis-cluster://app:${ENCODED}@n1:7000,[::1]`)), 'redis-cluster://app:***@n1:7000,[::1]:6379');
    assert.equal(describeAddress(parseRedisAddress({ cluster: ['n1:7000'], tls: true })), 'redis-cluster://n1:7000 (TLS)');
    assert.equal(describeAddress(parseRedisAddress('unix:///run/r.sock?db=4')), 'unix:///run/r.sock?db=4');
  });
});

describe('Redis connection', () => {
  let redis: TestRedis;
  let locked: TestRedis;
  before(async () => {
    redis = await startRedis({ tcp: true, tls: true });
    locked = await startRedis({ password: SECRET });
  });
  after(async () => {
    await redis?.stop();
    await locked?.stop();
  });

  /** asserts `promise` rejects with a ClusterError with `code` whose message matches and shows no secret */
  async function refusedAsync(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof ClusterError, String(err));
      assert.equal(err.code, code);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(SECRET) && !err.message.includes(ENCODED), `no password in: ${err.message}`);
      return true;
    });
  }

  it('connects over a Unix socket and over TCP, to the database asked for', async () => {
    for (const url of [redis.url, `redis://127.0.0.1:${redis.port}/2`]) {
      const c = await openRedis(url);
      try {
        await c.client.set('parley:probe', url);
        assert.equal(await c.client.get('parley:probe'), url);
      } finally {
        await c.close();
      }
    }
    const db2 = await openRedis({ path: redis.socket, db: 2 });
    try {
      assert.equal(await db2.client.get('parley:probe'), `redis://127.0.0.1:${redis.port}/2`, 'database 2 holds what the TCP connection wrote there');
    } finally {
      await db2.close();
    }
  });

  it('connects over TLS, trusting the CA given; refuses a certificate it cannot trust', async () => {
    const tls = redis.tls!;
    const c = await openRedis({ host: 'localhost', port: tls.port, tls: true, tlsCa: tls.ca });
    try {
      assert.equal(await c.client.ping(), 'PONG');
      assert.equal(c.description, `rediss://localhost:${tls.port}`);
    } finally {
      await c.close();
    }
    await refusedAsync(openRedis(`rediss://localhost:${tls.port}`), 'CLUSTER_REDIS_UNREACHABLE', /cannot connect to Redis at rediss:\/\/localhost:\d+ \(.*self[- ]signed.*\); check that Redis runs there and listens on localhost with TLS/);
    await refusedAsync(openRedis({ host: 'localhost', port: tls.port, tls: true, tlsCa: `${tls.ca}.missing` }), 'CLUSTER_REDIS_UNREACHABLE', /cannot read the CA file .*cert\.pem\.missing \(tlsCa\)/);
  });

  it('fails at once, with the address and what to check, when nothing listens', async () => {
    await refusedAsync(openRedis(`unix://${redis.socket}.missing`), 'CLUSTER_REDIS_UNREACHABLE', /cannot connect to Redis at unix:\/\/.*redis\.sock\.missing \(.*ENOENT.*\); check that Redis runs and listens on that socket/);
    // a port just released by the test's own TCP listener: nothing is there
    const closed = await openRedis(`redis://u:${ENCODED}@127.0.0.1:1`).catch((e: unknown) => e);
    assert.ok(closed instanceof ClusterError && closed.code === 'CLUSTER_REDIS_UNREACHABLE', String(closed));
    assert.match(closed.message, /^cannot connect to Redis at redis:\/\/u:\*\*\*@127\.0\.0\.1:1 \(.*ECONNREFUSED.*\); check that Redis runs there/);
    assert.ok(!closed.message.includes(SECRET) && !closed.message.includes(ENCODED));
  });

  it('says when Redis refuses the password, or wants one that was not given', async () => {
    await refusedAsync(openRedis({ path: locked.socket, password: 'wrong' }), 'CLUSTER_REDIS_AUTH_FAILED', /refused the credentials \(WRONGPASS.*\): check the user name and password/);
    await refusedAsync(openRedis(locked.url), 'CLUSTER_REDIS_AUTH_FAILED', /refused the credentials \(NOAUTH.*\): no password was given/);
    const ok = await openRedis({ path: locked.socket, password: SECRET });
    try {
      assert.equal(await ok.client.ping(), 'PONG');
      assert.equal(ok.description, `unix://:***@${locked.socket}`);
    } finally {
      await ok.close();
    }
  });

  it('says when the database number does not exist', async () => {
    await refusedAsync(openRedis(`${redis.url}?db=99`), 'CLUSTER_REDIS_REFUSED', /has no database 99 .*: use a number below its "databases" setting/);
  });

  it('connects to a Redis Cluster and finds Parley\'s keys on the master of their slot; says when nothing listens or the server is no cluster', async () => {
    const cluster = await startRedisCluster();
    try {
      const c = await openRedis(cluster.url);
      try {
        assert.equal(c.description, cluster.url);
        await c.client.set(`${KEY_PREFIX}probe`, 'yes');
        await c.client.set('{elsewhere}:probe', 'no');
        // SCAN on a cluster sees one node's keys: scanKeys asks every master
        assert.deepEqual(await scanKeys(c, `${KEY_PREFIX}*`), [`${KEY_PREFIX}probe`]);
        let held = 0;
        for (const port of cluster.ports) {
          const master = await openRedis(`redis://127.0.0.1:${port}`);
          held += await master.client.dbsize();
          await master.close();
        }
        assert.equal(held, 2, 'each key on one master only');
      } finally {
        await c.close();
      }
    } finally {
      await cluster.stop();
    }
    await refusedAsync(openRedis('redis-cluster://127.0.0.1:1'), 'CLUSTER_REDIS_UNREACHABLE', /^cannot connect to Redis at redis-cluster:\/\/127\.0\.0\.1:1 \(.*\); check that the Redis Cluster runs at those addresses/);
    await refusedAsync(openRedis(`redis-cluster://127.0.0.1:${redis.port}`), 'CLUSTER_REDIS_REFUSED', /is not a Redis Cluster \(.*cluster support disabled\): write its address as redis:\/\/host:port/);
  });

  it('finds the master through a Sentinel, and says when a Sentinel does not know the master', async () => {
    const sentinel = await startSentinel(redis, 'parley-main');
    try {
      const c = await openRedis(`redis-sentinel://127.0.0.1:${sentinel.port}/parley-main`);
      try {
        await c.client.set('parley:through-sentinel', 'yes');
        const direct = await openRedis(redis.url);
        assert.equal(await direct.client.get('parley:through-sentinel'), 'yes', 'the master is the server behind the Sentinel');
        await direct.close();
      } finally {
        await c.close();
      }
      await refusedAsync(openRedis(`redis-sentinel://127.0.0.1:${sentinel.port}/nobody`), 'CLUSTER_REDIS_UNREACHABLE', /check that the Sentinels run at those addresses and monitor a master named nobody/);
    } finally {
      await sentinel.stop();
    }
  });
});
