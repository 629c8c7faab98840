// Limits on live subscriptions (issue 18, finding 7): without them one user could hold thousands
// of subscriptions to one presentity, and each change of it would send that many NOTIFYs. Each
// subscription that gets NOTIFYs (state `active`) counts three times:
//
//   per watcher and resource   one user's subscriptions to one resource in one package: one per
//                              device; a new one past the limit replaces the least recently
//                              refreshed (the likeliest to be a device that went away)
//   per watcher                one user's subscriptions in total; past it, a new one is refused
//   per resource               one resource's subscriptions in one package, every watcher; past
//                              it, a new one is refused
//
// The counts are the sizes of indices kept up to date as subscriptions enter and leave `active`:
// admitting a SUBSCRIBE is a few Map lookups, never a scan. Pure: no timers, no I/O.

import type { Subscription } from './subscriptions.ts';

/** The limits, under the names of their settings (`events.maxSubscriptionsPerWatcher` …). */
export interface SubscriptionLimits {
  /** one watcher's live subscriptions to one resource in one package (one per device) */
  maxSubscriptionsPerWatcherResource: number;
  /** one watcher's live subscriptions, every package and resource */
  maxSubscriptionsPerWatcher: number;
  /** live subscriptions to one resource in one package, every watcher */
  maxSubscriptionsPerResource: number;
}

/**
 * 16 per watcher and resource: registrar.maxBindings, a device each. 3,000 per watcher: a full
 * contact list (1,000) watched contact by contact from three devices; a client that watches its
 * list as a resource list (RFC 4662) needs one per device. 10,000 per resource: everyone in a
 * large organisation may watch one person directly.
 */
export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = Object.freeze({
  maxSubscriptionsPerWatcherResource: 16,
  maxSubscriptionsPerWatcher: 3000,
  maxSubscriptionsPerResource: 10_000,
});

/**
 * What a new subscription may do: be added; be added in place of `oldest`, which the caller
 * terminates; or be refused with a Warning text naming the limit.
 */
export type Admission = { kind: 'ok' } | { kind: 'replace'; oldest: Subscription; limit: number } | { kind: 'refused'; warning: string };

const OK: Admission = Object.freeze({ kind: 'ok' });

/** The active subscriptions, indexed by resource, by watcher and by both; the counts are the sizes. */
export class LiveSubscriptions {
  readonly limits: SubscriptionLimits;
  readonly #byResource = new Map<string, Set<Subscription>>();
  readonly #byWatcher = new Map<string, Set<Subscription>>();
  /** insertion order is the order of the last refresh: the first is the least recently refreshed */
  readonly #byPair = new Map<string, Set<Subscription>>();
  /** since the start, what /metrics reads: refusals per limit, replacements of the oldest */
  readonly admissions = { refusedPerWatcher: 0, refusedPerResource: 0, replaced: 0 };

  constructor(limits: SubscriptionLimits = DEFAULT_SUBSCRIPTION_LIMITS) {
    this.limits = limits;
  }

  /** May `watcher` subscribe to `resource` in `packageName` now? */
  admit(watcher: string, packageName: string, resource: string): Admission {
    const pair = this.#byPair.get(pairKey(watcher, packageName, resource));
    const perPair = this.limits.maxSubscriptionsPerWatcherResource;
    // A replacement leaves the other two counts as they were: no need to look at them.
    if (pair !== undefined && pair.size >= perPair) {
      this.admissions.replaced++;
      return { kind: 'replace', oldest: first(pair), limit: perPair };
    }
    const perWatcher = this.limits.maxSubscriptionsPerWatcher;
    if ((this.#byWatcher.get(watcher)?.size ?? 0) >= perWatcher) {
      this.admissions.refusedPerWatcher++;
      return { kind: 'refused', warning: `${watcher} holds ${perWatcher} subscriptions, the most one user may (events.maxSubscriptionsPerWatcher); end some first` };
    }
    const perResource = this.limits.maxSubscriptionsPerResource;
    if ((this.#byResource.get(resourceKey(packageName, resource))?.size ?? 0) >= perResource) {
      this.admissions.refusedPerResource++;
      return { kind: 'refused', warning: `${resource} has ${perResource} ${packageName} subscribers, the most one resource may (events.maxSubscriptionsPerResource)` };
    }
    return OK;
  }

  /** The subscription became active. */
  enter(sub: Subscription): void {
    addTo(this.#byResource, resourceKey(sub.package, sub.resource), sub);
    addTo(this.#byWatcher, sub.watcher, sub);
    addTo(this.#byPair, pairKey(sub.watcher, sub.package, sub.resource), sub);
  }

  /** A refresh: the subscription becomes the most recently refreshed of its watcher and resource. */
  touch(sub: Subscription): void {
    const pair = this.#byPair.get(pairKey(sub.watcher, sub.package, sub.resource));
    if (pair?.delete(sub) === true) pair.add(sub);
  }

  /** The subscription left `active` (terminating or ended): it counts no more. Idempotent. */
  leave(sub: Subscription): void {
    removeFrom(this.#byResource, resourceKey(sub.package, sub.resource), sub);
    removeFrom(this.#byWatcher, sub.watcher, sub);
    removeFrom(this.#byPair, pairKey(sub.watcher, sub.package, sub.resource), sub);
  }

  /** the live subscriptions to a resource in a package */
  ofResource(packageName: string, resource: string): ReadonlySet<Subscription> {
    return this.#byResource.get(resourceKey(packageName, resource)) ?? EMPTY;
  }

  ofWatcher(watcher: string): ReadonlySet<Subscription> {
    return this.#byWatcher.get(watcher) ?? EMPTY;
  }

  ofPair(watcher: string, packageName: string, resource: string): ReadonlySet<Subscription> {
    return this.#byPair.get(pairKey(watcher, packageName, resource)) ?? EMPTY;
  }

  /** every watcher with a live subscription */
  watchers(): string[] {
    return [...this.#byWatcher.keys()];
  }

  /** every resource with a live subscription, with its package */
  resources(): Array<{ packageName: string; resource: string }> {
    return [...this.#byResource.values()].map((set) => {
      const sub = first(set);
      return { packageName: sub.package, resource: sub.resource };
    });
  }

  /** live subscriptions per event package (a scan: for /metrics) */
  countByPackage(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const set of this.#byWatcher.values()) for (const sub of set) counts.set(sub.package, (counts.get(sub.package) ?? 0) + 1);
    return counts;
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byWatcher.values()) n += set.size;
    return n;
  }

  clear(): void {
    this.#byResource.clear();
    this.#byWatcher.clear();
    this.#byPair.clear();
  }
}

const EMPTY: ReadonlySet<Subscription> = new Set();

function first(set: ReadonlySet<Subscription>): Subscription {
  for (const sub of set) return sub;
  throw new Error('an index kept an empty set');
}

/** Adds to the set at `key`, made when missing (the indices of limits.ts and the store). */
export function addTo(index: Map<string, Set<Subscription>>, key: string, sub: Subscription): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(sub);
}

/** Removes from the set at `key`, and the set when it becomes empty. */
export function removeFrom(index: Map<string, Set<Subscription>>, key: string, sub: Subscription): void {
  const set = index.get(key);
  if (set === undefined || !set.delete(sub)) return;
  if (set.size === 0) index.delete(key);
}

export function resourceKey(packageName: string, resource: string): string {
  return `${packageName}\n${resource}`;
}

function pairKey(watcher: string, packageName: string, resource: string): string {
  return `${watcher}\n${packageName}\n${resource}`;
}
