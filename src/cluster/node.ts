// One node joining its cluster at start-up (`parley serve` with a cluster block): the shared
// secrets from PostgreSQL, the Redis connection, the location service and the bus. The parts that
// need the node's listeners (the registry's announcement, the hop pool's connections) start later,
// once the ports are known (start.ts).

import type { Logger } from 'pino';
import { migrate, type Sql } from '../storage/index.ts';
import { ClusterBus } from './bus.ts';
import type { ClusterEvents } from './events.ts';
import { RedisLocationService } from './location.ts';
import { openRedis, type RedisConnection } from './redis.ts';
import { CLUSTER_MIGRATIONS, clusterSecret } from './secrets.ts';

export interface ClusterMember {
  readonly node: string;
  readonly redis: RedisConnection;
  readonly location: RedisLocationService;
  readonly bus: ClusterBus<ClusterEvents>;
  /** the digest nonce key, the same on every node (a challenge of one node answered at another) */
  readonly nonceKey: Buffer;
  /** the key of hop tokens, the same on every node */
  readonly hopKey: Buffer;
  /** the key of the dialog proxy's flow tokens (router/dialog-proxy.ts): a token one node put in a Record-Route is read by every node */
  readonly dialogKey: Buffer;
  /** closes the bus and the Redis connection */
  close(): Promise<void>;
}

export async function joinCluster(options: { nodeId: string; redis: string | object; sql: Sql; logger: Logger }): Promise<ClusterMember> {
  const { nodeId: node, sql, logger } = options;
  await migrate(sql, [CLUSTER_MIGRATIONS]);
  const nonceKey = await clusterSecret(sql, 'nonce.key');
  const hopKey = await clusterSecret(sql, 'hop.key');
  const dialogKey = await clusterSecret(sql, 'dialog.key');
  const redis = await openRedis(options.redis, { connectionName: `parley:${node}`, logger: logger.child({ component: 'redis' }) });
  let bus: ClusterBus<ClusterEvents>;
  try {
    bus = await ClusterBus.open<ClusterEvents>(redis, { node, onError: (err) => logger.warn({ err }, 'cluster bus: %s', err.message) });
  } catch (err) {
    await redis.close();
    throw err;
  }
  return {
    node,
    redis,
    location: new RedisLocationService(redis, { node }),
    bus,
    nonceKey,
    hopKey,
    dialogKey,
    async close() {
      await bus.close();
      await redis.close();
    },
  };
}
