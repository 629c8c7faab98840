// The location service's behaviour, on each implementation: the single process's memory and a
// cluster's Redis (a redis-server of the test's own, see test/harness/redis.ts). What only the
// Redis service does (nodes, expiry by Redis, reconnection) is in cluster-location.test.ts. The
// Redis service runs on one Redis and on a Redis Cluster (test/harness/redis.ts: three masters),
// under a prefix with a hash tag there, as Parley's own.
import { after, before } from 'node:test';
import { openRedis, RedisLocationService, type RedisConnection } from '../../src/cluster/index.ts';
import { MemoryLocationService } from '../../src/registrar/location.ts';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../harness/redis.ts';
import { locationBehaviour, NODE } from './registrar-location-suite.ts';

let redis: TestRedis | undefined;
let connection: RedisConnection | undefined;
let redisCluster: TestRedisCluster | undefined;
let clusterConnection: RedisConnection | undefined;
before(async () => {
  [redis, redisCluster] = await Promise.all([startRedis(), startRedisCluster()]);
  connection = await openRedis(redis.url);
  clusterConnection = await openRedis(redisCluster.url);
});
after(async () => {
  await connection?.close();
  await clusterConnection?.close();
  await redis?.stop();
  await redisCluster?.stop();
});

locationBehaviour({ name: 'memory', open: async () => new MemoryLocationService() });

let instances = 0;
// each test its own key prefix: the same Redis, nothing shared
locationBehaviour({ name: 'redis', open: async () => new RedisLocationService(connection!, { node: NODE, prefix: `test${++instances}:` }) });
// each prefix's slot on one of the three masters: the client must route each script to it
locationBehaviour({ name: 'redis cluster', open: async () => new RedisLocationService(clusterConnection!, { node: NODE, prefix: `{test${++instances}}:` }) });
