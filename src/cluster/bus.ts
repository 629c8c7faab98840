// The cluster bus: small typed events between nodes over Redis pub/sub (a setting changed, a cache
// to drop, presence to fan out). Each message is JSON, `{"v":1,"from":"<node>","payload":…}` on
// channel `<prefix>bus:<topic>`; a node receives its own messages too, marked `own`, so a handler
// can skip what its node already did.
//
// Pub/sub delivers at most once: a node that is disconnected misses what is published meanwhile.
// The bus subscribes again by itself once the connection is back and then calls the
// `onResubscribed` listeners, which should assume they missed something (drop a whole cache,
// reread a state) rather than wait for the next message.

import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { checkNodeId, ClusterError } from './errors.ts';
import { commandFailure, KEY_PREFIX, type RedisConnection } from './redis.ts';

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

/** how often a bus on a Redis Cluster sends itself a probe */
const PROBE_INTERVAL_MS = 1_000;
/** a probe unheard this long: the subscription was lost (a few probes, not one slow answer) */
const PROBE_MISSED_MS = 3_000;

/** A bus's probe of its own subscription, on a Redis Cluster (see the constructor). */
interface BusProbe {
  readonly channel: string;
  readonly timer: NodeJS.Timeout;
  /** when a probe was last heard */
  heardAt: number;
  /** probes went unheard: the next one heard tells the onResubscribed listeners */
  missing: boolean;
  /** a new subscriber connection is being opened */
  replacing: boolean;
}

/**
 * `Events` maps each topic to its payload's type, e.g.
 * `ClusterBus<{ 'settings.changed': { scope: string } }>`.
 */
export class ClusterBus<Events extends Record<string, unknown> = Record<string, unknown>> {
  readonly #publisher: RedisConnection;
  /** replaced on a Redis Cluster when its subscription is lost for good (see #sendProbe) */
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
  /** on a Redis Cluster: this bus's own probe channel, when its probe was last heard, whether it is missing */
  readonly #probe: BusProbe | null = null;

  /**
   * Opens the bus's own subscriber connection (a subscribed connection can do nothing else) beside
   * `redis`, which publishes. Closing the bus closes that connection only.
   */
  static async open<E extends Record<string, unknown> = Record<string, unknown>>(redis: RedisConnection, options: ClusterBusOptions): Promise<ClusterBus<E>> {
    checkNodeId(options.node);
    const subscriber = await redis.duplicate('bus');
    return new ClusterBus<E>(redis, subscriber, options);
  }

  private constructor(publisher: RedisConnection, subscriber: RedisConnection, options: ClusterBusOptions) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#node = options.node;
    this.#prefix = options.prefix ?? KEY_PREFIX;
    this.#onError = options.onError ?? (() => undefined);
    this.#listen(subscriber.client);
    // A Redis Cluster client subscribes through one node of its choice and, when that node is lost,
    // tries another by itself, saying nothing, and may end up subscribed nowhere (ioredis 5.x):
    // what is published then is lost unseen. So the bus sends itself a probe every second on a
    // channel of its own. Probes unheard for a while: the bus opens a new subscriber connection and
    // subscribes there; probes heard again after a gap: it tells the onResubscribed listeners, as
    // after a lost connection to one Redis.
    if (subscriber.client instanceof Cluster) {
      const channel = `${this.#prefix}bus-probe:${this.#node}:${randomUUID()}`;
      const timer = setInterval(() => this.#sendProbe(), PROBE_INTERVAL_MS);
      timer.unref();
      this.#probe = { channel, timer, heardAt: Date.now(), missing: false, replacing: false };
      subscriber.client.subscribe(channel).catch((err: unknown) => this.#onError(commandFailure(err, this.#subscriber, 'subscribing to the bus probe')));
    }
  }

  #listen(client: Redis | Cluster): void {
    // ioredis would subscribe again by itself, but without saying when it is done: done here
    if (client instanceof Redis) client.options.autoResubscribe = false;
    client.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#deliver(channel.toString(), message));
    // the connection was ready before this listener: each 'ready' from now on follows a loss
    client.on('ready', () => void this.#resubscribe());
  }

  #sendProbe(): void {
    const probe = this.#probe;
    if (probe === null || this.#closed) return;
    const silence = Date.now() - probe.heardAt;
    if (silence > PROBE_MISSED_MS) probe.missing = true;
    if (silence > PROBE_MISSED_MS && !probe.replacing) void this.#replaceSubscriber(probe);
    // a PUBLISH that fails (the cluster is changing) is a probe unheard, nothing more
    this.#publisher.client.publish(probe.channel, '').catch(() => undefined);
  }

  /** A new subscriber connection in place of one whose subscription was lost; the old one is dropped. */
  async #replaceSubscriber(probe: BusProbe): Promise<void> {
    probe.replacing = true;
    try {
      const fresh = await this.#publisher.duplicate('bus');
      if (this.#closed) {
        fresh.client.disconnect();
        return;
      }
      const old = this.#subscriber;
      this.#subscriber = fresh;
      this.#subscribing.clear();
      this.#listen(fresh.client);
      old.client.disconnect();
      // not awaited: the client may wait without end on a node that is gone (the next round replaces it)
      fresh.client.subscribe(...this.#handlers.keys(), probe.channel).catch(() => undefined);
      // a new chance: the probes should be heard again within PROBE_MISSED_MS
      probe.heardAt = Date.now();
    } catch (err) {
      this.#onError(commandFailure(err, this.#subscriber, 'opening a new subscriber connection for the cluster bus'));
    } finally {
      probe.replacing = false;
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
      return await this.#publisher.client.publish(this.#channel(topic), text);
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
    if (this.#probe !== null) clearInterval(this.#probe.timer);
    await this.#subscriber.close();
  }

  #channel(topic: string): string {
    return `${this.#prefix}bus:${topic}`;
  }

  async #resubscribe(): Promise<void> {
    const channels = [...this.#handlers.keys(), ...(this.#probe === null ? [] : [this.#probe.channel])];
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
    const probe = this.#probe;
    if (probe !== null && channel === probe.channel) {
      probe.heardAt = Date.now();
      if (probe.missing) {
        probe.missing = false;
        void this.#resubscribe();
      }
      return;
    }
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
