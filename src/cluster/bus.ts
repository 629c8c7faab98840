// The cluster bus: small typed events between nodes over Redis pub/sub (a setting changed, a cache
// to drop, presence to fan out). Each message is JSON, `{"v":1,"from":"<node>","payload":…}` on
// channel `<prefix>bus:<topic>`; a node receives its own messages too, marked `own`, so a handler
// can skip what its node already did.
//
// Pub/sub delivers at most once: a node that is disconnected misses what is published meanwhile.
// The bus subscribes again by itself once the connection is back and then calls the
// `onResubscribed` listeners, which should assume they missed something (drop a whole cache,
// reread a state) rather than wait for the next message. On a Redis Cluster the bus subscribes
// through a plain connection to one node (PUBLISH reaches every node) and, that node lost, through
// another, calling the same listeners.

import type { Redis } from 'ioredis';
import { checkNodeId, ClusterError } from './errors.ts';
import { commandFailure, isRedisCluster, KEY_PREFIX, type RedisConnection } from './redis.ts';

/** What a handler learns besides the payload. */
export interface BusDelivery {
  readonly topic: string;
  /** the node that published it */
  readonly from: string;
  /** published by this node */
  readonly own: boolean;
}

export type BusHandler<P> = (payload: P, delivery: BusDelivery) => void;

export interface ClusterBusOptions {
  /** this node's id, carried in every message */
  readonly node: string;
  /** channel prefix (default `{parley}:`, KEY_PREFIX: a hash tag, so that in a Redis Cluster all of them share one slot) */
  readonly prefix?: string;
  /**
   * told of what goes wrong without a caller to throw to: a message no Parley node sent
   * (CLUSTER_BUS_MESSAGE_INVALID), a handler that threw, a resubscription that failed
   */
  readonly onError?: (err: Error) => void;
}

/** PUBLISH from the node that owns KEYS[1]'s slot (see publish) */
const PUBLISH_SCRIPT = "return redis.call('PUBLISH', ARGV[1], ARGV[2])";

/** a bus on a Redis Cluster that found no node to subscribe through tries again after this long */
const NODE_RETRY_MS = 500;

/**
 * `Events` maps each topic to its payload's type, e.g.
 * `ClusterBus<{ 'settings.changed': { scope: string } }>`.
 */
export class ClusterBus<Events extends Record<string, unknown> = Record<string, unknown>> {
  readonly #publisher: RedisConnection;
  /** on a Redis Cluster, a connection to one node, replaced when that node is lost (see #moveSubscriber) */
  #subscriber: RedisConnection;
  readonly #node: string;
  readonly #prefix: string;
  readonly #onError: (err: Error) => void;
  /** channel → its handlers */
  readonly #handlers = new Map<string, Set<BusHandler<never>>>();
  /** channel → its SUBSCRIBE, answered or not: a second handler waits for the first's */
  readonly #subscribing = new Map<string, Promise<void>>();
  readonly #resubscribed = new Set<() => void>();
  #closed = false;

  /**
   * Opens the bus's own subscriber connection (a subscribed connection can do nothing else) beside
   * `redis`, which publishes. Closing the bus closes that connection only.
   */
  static async open<E extends Record<string, unknown> = Record<string, unknown>>(redis: RedisConnection, options: ClusterBusOptions): Promise<ClusterBus<E>> {
    checkNodeId(options.node);
    // On a Redis Cluster, a plain connection to one node rather than through the Cluster client:
    // PUBLISH reaches every node's subscribers, and the Cluster client would move its subscription
    // to another node by itself, saying nothing, when that node is lost (ioredis 5.x) - what is
    // published meanwhile would be lost unseen, and onResubscribed never called.
    const subscriber = redis.address.kind === 'cluster' ? await redis.openNode('bus') : await redis.duplicate('bus');
    return new ClusterBus<E>(redis, subscriber, options);
  }

  private constructor(publisher: RedisConnection, subscriber: RedisConnection, options: ClusterBusOptions) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#node = options.node;
    this.#prefix = options.prefix ?? KEY_PREFIX;
    this.#onError = options.onError ?? (() => undefined);
    this.#listen(subscriber);
  }

  #listen(subscriber: RedisConnection): void {
    const client = subscriber.client as Redis;
    // ioredis would subscribe again by itself, but without saying when it is done: done here
    client.options.autoResubscribe = false;
    client.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#deliver(channel.toString(), message));
    // the connection was ready before this listener: each 'ready' from now on follows a loss
    client.on('ready', () => void this.#resubscribe());
    // only a connection to one node of a Redis Cluster gives up (openNode); one to a single Redis
    // or a Sentinel-watched master reconnects without end and ends only when closed
    client.on('end', () => {
      if (!this.#closed && this.#subscriber === subscriber) void this.#moveSubscriber(subscriber);
    });
  }

  /** On a Redis Cluster: subscribes through another node once the connection to `lost`'s node has ended. */
  async #moveSubscriber(lost: RedisConnection): Promise<void> {
    const node = lost.address.kind === 'server' ? `${lost.address.host}:${lost.address.port}` : '';
    let told = false;
    while (!this.#closed) {
      let fresh: RedisConnection;
      try {
        fresh = await this.#publisher.openNode('bus', new Set([node]));
      } catch (err) {
        // once per move, not every round: the operator learns the bus is deaf until a node answers
        if (!told) this.#onError(commandFailure(err, this.#publisher, 'subscribing to the cluster bus through another node of the Redis Cluster'));
        told = true;
        await new Promise((resolve) => setTimeout(resolve, NODE_RETRY_MS).unref());
        continue;
      }
      if (this.#closed) {
        fresh.client.disconnect();
        return;
      }
      this.#subscriber = fresh;
      this.#subscribing.clear();
      this.#listen(fresh);
      await this.#resubscribe();
      return;
    }
  }

  get node(): string {
    return this.#node;
  }

  /**
   * Sends `payload` to every node subscribed to `topic` (this one included); resolves to how many
   * connections got it (in a Redis Cluster: how many on the node that took the PUBLISH, which
   * passes it on to the others; their subscribers are not counted).
   */
  async publish<T extends keyof Events & string>(topic: T, payload: Events[T]): Promise<number> {
    let text: string;
    try {
      text = JSON.stringify({ v: 1, from: this.#node, payload });
    } catch (cause) {
      throw new ClusterError('CLUSTER_BUS_PAYLOAD_INVALID', `the payload for ${topic} cannot be sent as JSON (${(cause as Error).message})`, { cause });
    }
    try {
      const client = this.#publisher.client;
      if (!isRedisCluster(client)) return await client.publish(this.#channel(topic), text);
      // A Redis Cluster client sends a PUBLISH (it names no key) to any node, a different one each
      // time, and messages taken by different nodes may reach a subscriber in another order. A
      // script naming a key of the prefix's slot runs on that slot's master, always the same one:
      // one node's messages arrive in the order it sent them. That master lost (and no replica in
      // its place yet), any node still passes the message on: out of order rather than not at all.
      try {
        return (await client.eval(PUBLISH_SCRIPT, 1, `${this.#prefix}bus`, this.#channel(topic), text)) as number;
      } catch {
        return await client.publish(this.#channel(topic), text);
      }
    } catch (err) {
      throw commandFailure(err, this.#publisher, `publishing ${topic} on the cluster bus`);
    }
  }

  /**
   * Calls `handler` with every message on `topic` from now on (the subscription is in place when
   * the promise resolves). Resolves to the function that ends this subscription.
   */
  async subscribe<T extends keyof Events & string>(topic: T, handler: BusHandler<Events[T]>): Promise<() => Promise<void>> {
    const channel = this.#channel(topic);
    let handlers = this.#handlers.get(channel);
    if (!handlers) {
      this.#handlers.set(channel, (handlers = new Set()));
      this.#subscribing.set(channel, this.#subscriber.client.subscribe(channel).then(() => undefined));
    }
    try {
      await this.#subscribing.get(channel);
    } catch (err) {
      if (this.#handlers.get(channel) === handlers && handlers.size === 0) {
        this.#handlers.delete(channel);
        this.#subscribing.delete(channel);
      }
      throw commandFailure(err, this.#subscriber, `subscribing to ${topic} on the cluster bus`);
    }
    handlers.add(handler as BusHandler<never>);
    return async () => {
      const set = this.#handlers.get(channel);
      if (!set?.delete(handler as BusHandler<never>) || set.size > 0) return;
      this.#handlers.delete(channel);
      this.#subscribing.delete(channel);
      if (this.#closed) return;
      await this.#subscriber.client.unsubscribe(channel).catch((err: unknown) => this.#onError(commandFailure(err, this.#subscriber, `unsubscribing from ${topic}`)));
    };
  }

  /** `listener` runs each time the bus has subscribed again after a lost connection; returns the way to stop that. */
  onResubscribed(listener: () => void): () => void {
    this.#resubscribed.add(listener);
    return () => this.#resubscribed.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
    this.#subscribing.clear();
    this.#resubscribed.clear();
    await this.#subscriber.close();
  }

  #channel(topic: string): string {
    return `${this.#prefix}bus:${topic}`;
  }

  async #resubscribe(): Promise<void> {
    const channels = [...this.#handlers.keys()];
    try {
      if (channels.length > 0) await this.#subscriber.client.subscribe(...channels);
    } catch (err) {
      // the connection went again: the next 'ready' tries again
      this.#onError(commandFailure(err, this.#subscriber, 'subscribing again to the cluster bus'));
      return;
    }
    for (const listener of this.#resubscribed) {
      try {
        listener();
      } catch (err) {
        this.#onError(err as Error);
      }
    }
  }

  #deliver(channel: string, message: Buffer): void {
    const handlers = this.#handlers.get(channel);
    if (!handlers || handlers.size === 0) return;
    const topic = channel.slice(`${this.#prefix}bus:`.length);
    let envelope: { v?: unknown; from?: unknown; payload?: unknown };
    try {
      envelope = JSON.parse(message.toString('utf8')) as typeof envelope;
    } catch {
      envelope = {};
    }
    if (envelope === null || typeof envelope !== 'object' || envelope.v !== 1 || typeof envelope.from !== 'string' || !('payload' in envelope)) {
      this.#onError(new ClusterError('CLUSTER_BUS_MESSAGE_INVALID', `a message on ${channel} is not a Parley bus message (${JSON.stringify(message.toString('utf8').slice(0, 80))}); does another program publish on Parley's channels?`));
      return;
    }
    const delivery: BusDelivery = { topic, from: envelope.from, own: envelope.from === this.#node };
    for (const handler of [...handlers]) {
      try {
        handler(envelope.payload as never, delivery);
      } catch (err) {
        this.#onError(err as Error);
      }
    }
  }
}
