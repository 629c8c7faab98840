// Cluster mode's shared, short-lived state in Redis: the connection, the location service every
// node sees, and the bus between nodes. Durable state is PostgreSQL's (src/storage).
export type { ClusterErrorCode } from './errors.ts';
export { checkNodeId, ClusterError } from './errors.ts';
export type { RedisAddress, RedisConnection, RedisConnectionOptions, RedisEndpoint } from './redis.ts';
export { describeAddress, KEY_PREFIX, openRedis, parseRedisAddress, scanKeys } from './redis.ts';
export type { RedisLocationOptions } from './location.ts';
export { RedisLocationService } from './location.ts';
export type { BusDelivery, BusHandler, ClusterBusOptions } from './bus.ts';
export { ClusterBus } from './bus.ts';
export type { NodeAnnouncement, NodeRegistryOptions } from './registry.ts';
export { NodeRegistry } from './registry.ts';
export { HOP_TOKEN_LIFETIME_S, hopMac, signHopToken, verifyHopToken } from './hop-token.ts';
export type { HopDial } from './hops.ts';
export { ClusterHopPool } from './hops.ts';
export { CLUSTER_MIGRATIONS, clusterSecret } from './secrets.ts';
export type { ClusterEvents, LocalEvents, SharedEvents } from './events.ts';
export { shareEvents } from './events.ts';
export type { ClusterMember } from './node.ts';
export { joinCluster } from './node.ts';
export type { PresenceBusEvents, RedisPublicationsOptions } from './presence.ts';
export { PRESENCE_CHANGED, RedisPublications } from './presence.ts';
