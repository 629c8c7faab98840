// Subscriptions (RFC 6665): one dialog per subscriber, event package and resource, with an
// explicit state machine:
//
//   active ──refresh──▶ active
//   active ──expiry / unsubscribe / fetch──▶ terminating   (the final NOTIFY is on its way)
//   active | terminating ──final NOTIFY answered, 481, timeout, transport error──▶ terminated
//
// Any other transition is a bug and throws. Timers are passed in.

import type { FlowRef } from '../registrar/index.ts';
import type { CancelTimer, Timers } from './timers.ts';

export type SubscriptionStateName = 'active' | 'terminating' | 'terminated';

/** RFC 6665 §8.2.3 reason codes Parley uses. */
export type TerminationReason = 'timeout' | 'deactivated' | 'rejected' | 'noresource';

/** The notifier's side of the dialog (RFC 3261 §12.1.1, as the UAS of the SUBSCRIBE). */
export interface SubscriptionDialog {
  callId: string;
  /** our tag: the To tag of the 2xx to the SUBSCRIBE */
  localTag: string;
  /** the subscriber's From tag */
  remoteTag: string;
  /** NOTIFY From: the SUBSCRIBE's To value with our tag */
  localHeader: string;
  /** NOTIFY To: the SUBSCRIBE's From value, tag included */
  remoteHeader: string;
  /** the subscriber's Contact URI: the Request-URI of every NOTIFY (§12.1.1 remote target) */
  remoteTarget: string;
  /** the Record-Route values in order (§12.1.1 route set of a UAS) */
  routeSet: string[];
  /** last CSeq of the subscriber's requests in this dialog */
  remoteCSeq: number;
}

export interface SubscriptionInit {
  /** the subscriber, `alice@parley.local` */
  watcher: string;
  /** the event package, `presence` */
  package: string;
  /** what is watched, `bob@parley.local` */
  resource: string;
  /** the Event header value the NOTIFYs repeat, `presence` or `presence;id=x` (RFC 6665 §8.2.1) */
  event: string;
  dialog: SubscriptionDialog;
  flow: FlowRef;
  expiresAt: number;
}

export function dialogId(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}

export class Subscription {
  readonly id: string;
  readonly watcher: string;
  readonly package: string;
  readonly resource: string;
  readonly event: string;
  readonly dialog: SubscriptionDialog;
  flow: FlowRef;
  expiresAt: number;
  #state: SubscriptionStateName = 'active';
  #reason: TerminationReason | undefined;
  /** CSeq of our NOTIFYs: starts at 1 and only grows (RFC 3261 §12.2.1.1) */
  #localCSeq = 0;

  constructor(init: SubscriptionInit) {
    this.watcher = init.watcher;
    this.package = init.package;
    this.resource = init.resource;
    this.event = init.event;
    this.dialog = init.dialog;
    this.flow = init.flow;
    this.expiresAt = init.expiresAt;
    this.id = dialogId(init.dialog.callId, init.dialog.localTag, init.dialog.remoteTag);
  }

  get state(): SubscriptionStateName {
    return this.#state;
  }

  get reason(): TerminationReason | undefined {
    return this.#reason;
  }

  nextCSeq(): number {
    return ++this.#localCSeq;
  }

  /** How many NOTIFYs this dialog has carried (each took one CSeq). */
  get notifiesSent(): number {
    return this.#localCSeq;
  }

  /** RFC 6665 §4.2.1.2: a SUBSCRIBE in the dialog refreshes it with a new duration. */
  refresh(expiresAt: number, remoteCSeq: number, remoteTarget: string | undefined, flow: FlowRef): void {
    this.#require('refresh', 'active');
    this.expiresAt = expiresAt;
    this.dialog.remoteCSeq = remoteCSeq;
    if (remoteTarget !== undefined) this.dialog.remoteTarget = remoteTarget;
    this.flow = flow;
  }

  /** active → terminating: the next NOTIFY is the last, with Subscription-State: terminated. */
  terminate(reason: TerminationReason): void {
    this.#require('terminate', 'active');
    this.#state = 'terminating';
    this.#reason = reason;
  }

  /** → terminated: nothing more is sent in this dialog. */
  end(reason: TerminationReason = this.#reason ?? 'deactivated'): void {
    this.#require('end', 'active', 'terminating');
    this.#state = 'terminated';
    this.#reason = reason;
  }

  /** RFC 6665 §8.2.3 Subscription-State: `active;expires=N` or `terminated;reason=R`. */
  subscriptionState(now: number): string {
    if (this.#state === 'active') return `active;expires=${Math.max(0, Math.round((this.expiresAt - now) / 1000))}`;
    return `terminated;reason=${this.#reason ?? 'deactivated'}`;
  }

  #require(transition: string, ...states: SubscriptionStateName[]): void {
    if (!states.includes(this.#state)) throw new Error(`${this.package} subscription ${this.watcher} → ${this.resource}: cannot ${transition} when ${this.#state}`);
  }
}

/** The live subscriptions, by dialog and by package and resource, each with its expiry timer. */
export class SubscriptionStore {
  readonly #byId = new Map<string, Subscription>();
  readonly #byResource = new Map<string, Set<Subscription>>();
  readonly #timers = new Map<string, CancelTimer>();
  readonly #deps: { timers: Timers; now: () => number; onExpire: (sub: Subscription) => void };

  constructor(deps: { timers: Timers; now: () => number; onExpire: (sub: Subscription) => void }) {
    this.#deps = deps;
  }

  add(sub: Subscription): void {
    this.#byId.set(sub.id, sub);
    const key = resourceKey(sub.package, sub.resource);
    let set = this.#byResource.get(key);
    if (set === undefined) this.#byResource.set(key, (set = new Set()));
    set.add(sub);
    this.schedule(sub);
  }

  get(id: string): Subscription | undefined {
    return this.#byId.get(id);
  }

  /** the subscriptions that still get NOTIFYs for a resource of a package */
  watching(packageName: string, resource: string): Subscription[] {
    return [...(this.#byResource.get(resourceKey(packageName, resource)) ?? [])].filter((s) => s.state === 'active');
  }

  /** every subscription of a package that still gets NOTIFYs */
  ofPackage(packageName: string): Subscription[] {
    return [...this.#byId.values()].filter((s) => s.package === packageName && s.state === 'active');
  }

  /** (Re)arms the expiry timer: RFC 6665 §4.2.2 — at expiry the notifier sends terminated;reason=timeout. */
  schedule(sub: Subscription): void {
    this.#timers.get(sub.id)?.();
    const ms = Math.max(0, sub.expiresAt - this.#deps.now());
    this.#timers.set(sub.id, this.#deps.timers.set(ms, () => {
      this.#timers.delete(sub.id);
      if (sub.state === 'active') this.#deps.onExpire(sub);
    }));
  }

  remove(sub: Subscription): void {
    this.#timers.get(sub.id)?.();
    this.#timers.delete(sub.id);
    if (this.#byId.get(sub.id) === sub) this.#byId.delete(sub.id);
    const key = resourceKey(sub.package, sub.resource);
    const set = this.#byResource.get(key);
    set?.delete(sub);
    if (set?.size === 0) this.#byResource.delete(key);
  }

  get size(): number {
    return this.#byId.size;
  }

  all(): Subscription[] {
    return [...this.#byId.values()];
  }

  close(): void {
    for (const cancel of this.#timers.values()) cancel();
    this.#timers.clear();
    this.#byId.clear();
    this.#byResource.clear();
  }
}

function resourceKey(packageName: string, resource: string): string {
  return `${packageName}\n${resource}`;
}
