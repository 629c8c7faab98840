// Cluster errors: a stable code and a message an operator can act on. Addresses in messages never
// carry a password (see describeAddress in redis.ts).
import { ParleyError } from '../errors.ts';

/** Every code a ClusterError may carry. */
export type ClusterErrorCode =
  /** the Redis address in the configuration cannot be understood (the message names the part) */
  | 'CLUSTER_REDIS_ADDRESS_INVALID'
  /** no connection to Redis at start-up: not running, wrong address, a firewall, TLS refused */
  | 'CLUSTER_REDIS_UNREACHABLE'
  /** Redis refused the user name or password (or asks for one that was not given) */
  | 'CLUSTER_REDIS_AUTH_FAILED'
  /** Redis was reached but did not work as asked: a database number out of range, a Sentinel that does not know the master */
  | 'CLUSTER_REDIS_REFUSED'
  /** a command could not be carried out because Redis is not reachable now (the client keeps reconnecting) */
  | 'CLUSTER_REDIS_UNAVAILABLE'
  /** a node id is empty, or has a character it may not (a space, a colon: it is part of Redis keys) */
  | 'CLUSTER_NODE_ID_INVALID'
  /** what Redis holds under Parley's keys is not what Parley wrote (another program uses the same keys?) */
  | 'CLUSTER_STATE_CORRUPT'
  /** a message on the cluster bus is not one a Parley node sent (not JSON, or not the bus's envelope) */
  | 'CLUSTER_BUS_MESSAGE_INVALID'
  /** a bus payload cannot be sent as JSON (a cycle, a BigInt) */
  | 'CLUSTER_BUS_PAYLOAD_INVALID';

export class ClusterError extends ParleyError {
  declare readonly code: ClusterErrorCode;

  constructor(code: ClusterErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** A node id names a node in Redis keys and bus messages: letters, digits and `._-`, 1 to 64. */
export function checkNodeId(node: string): void {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(node)) {
    throw new ClusterError('CLUSTER_NODE_ID_INVALID', `a node id must be 1 to 64 letters, digits, dots, dashes or underscores (it is part of Redis keys), not ${JSON.stringify(node)}`);
  }
}
