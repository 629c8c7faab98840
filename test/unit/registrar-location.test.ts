// The location service's behaviour, on each implementation: the single process's memory and a
// cluster's Redis (a redis-server of the test's own, see test/harness/redis.ts). What only the
// Redis service does (nodes, expiry by Redis, reconnection) is in cluster-location.test.ts.
import { after, before } from 'node:test';
import { openRedis, RedisLocationService, type RedisConnection } from '../../src/cluster/index.ts';
import { MemoryLocationService } from '../../src/registrar/location.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { locationBehaviour, NODE } from './registrar-location-suite.ts';

let redis: TestRedis | undefined;
let connection: RedisConnection | undefined;
before(async () => {
  redis = await startRedis();
  connection = await openRedis(redis.url);
});
after(async () => {
  await connection?.close();
  await redis?.stop();
});

locationBehaviour({ name: 'memory', open: async () => new MemoryLocationService() });

let instances = 0;
// each test its own key prefix: the same Redis, nothing shared
locationBehaviour({ name: 'redis', open: async () => new RedisLocationService(connection!, { node: NODE, prefix: `test${++instances}:` }) });
