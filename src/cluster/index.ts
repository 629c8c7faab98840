// Cluster mode's shared, short-lived state in Redis: the connection, the location service every
// node sees, and the bus between nodes. Durable state is PostgreSQL's (src/storage).
export type { ClusterErrorCode } from './errors.ts';
export { checkNodeId, ClusterError } from './errors.ts';
export type { RedisAddress, RedisConnection, RedisConnectionOptions, RedisEndpoint } from './redis.ts';
export { describeAddress, openRedis, parseRedisAddress } from './redis.ts';
export type { RedisLocationOptions } from './location.ts';
export { RedisLocationService } from './location.ts';
export type { BusDelivery, BusHandler, ClusterBusOptions } from './bus.ts';
export { ClusterBus } from './bus.ts';
