// Subscriptions (RFC 6665): one dialog per subscriber, event package and resource, with an
// explicit state machine:
//
//   active ──refresh──▶ active
//   active ──expiry / unsubscribe / fetch / replaced / user removed──▶ terminating   (the final NOTIFY is on its way)
//   active | terminating ──final NOTIFY answered, 481, timeout, transport error, flow closed──▶ terminated
//
// Any other transition is a bug and throws. Timers are passed in.

import type { FlowRef } from '../registrar/index.ts';
import { addTo, LiveSubscriptions, removeFrom } from './limits.ts';
import type { Admission, SubscriptionLimits } from './limits.ts';
import type { CancelTimer, Timers } from './timers.ts';

export type SubscriptionStateName = 'active' | 'terminating' | 'terminated';

/** RFC 6665 §8.2.3 reason codes Parley uses. */
export type TerminationReason = 'timeout' | 'deactivated' | 'probation' | 'rejected' | 'noresource';

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
  /**
   * The watcher's organisation when it is a partner's (issue 15), `partner.example`: the NOTIFYs
   * go over the federation link, and when its connection closed a new one is opened (the
   * subscription does not end with the connection, which the link pools and may close when idle).
   */
  partner?: string;
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
  /** the watcher's partner organisation (SubscriptionInit.partner); undefined for the organisation's own users */
  readonly partner: string | undefined;
  flow: FlowRef;
  expiresAt: number;
  #state: SubscriptionStateName = 'active';
  #reason: TerminationReason | undefined;
  /** seconds, with `probation` (RFC 6665 §4.1.3: wait at least that long before subscribing again) */
  #retryAfter: number | undefined;
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
    this.partner = init.partner;
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
  terminate(reason: TerminationReason, retryAfter?: number): void {
    this.#require('terminate', 'active');
    this.#state = 'terminating';
    this.#reason = reason;
    this.#retryAfter = retryAfter;
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
    const retry = this.#retryAfter === undefined ? '' : `;retry-after=${this.#retryAfter}`;
    return `terminated;reason=${this.#reason ?? 'deactivated'}${retry}`;
  }

  #require(transition: string, ...states: SubscriptionStateName[]): void {
    if (!states.includes(this.#state)) throw new Error(`${this.package} subscription ${this.watcher} → ${this.resource}: cannot ${transition} when ${this.#state}`);
  }
}

/**
 * The subscriptions, by dialog and by flow, each with its expiry timer; the active ones also by
 * resource and watcher, counted against the limits (limits.ts). A subscription stays here until
 * it is terminated (its final NOTIFY answered, or it could not be sent).
 */
export class SubscriptionStore {
  readonly #byId = new Map<string, Subscription>();
  /** by the flow its NOTIFYs take: when that connection closes, no NOTIFY can reach them */
  readonly #byFlow = new Map<string, Set<Subscription>>();
  readonly #live: LiveSubscriptions;
  readonly #timers = new Map<string, CancelTimer>();
  readonly #deps: { timers: Timers; now: () => number; onExpire: (sub: Subscription) => void };

  constructor(deps: { timers: Timers; now: () => number; onExpire: (sub: Subscription) => void; limits?: SubscriptionLimits }) {
    this.#deps = deps;
    this.#live = new LiveSubscriptions(deps.limits);
  }

  /** Whether a new subscription of `watcher` to `resource` fits the limits (see limits.ts). */
  admit(watcher: string, packageName: string, resource: string): Admission {
    return this.#live.admit(watcher, packageName, resource);
  }

  add(sub: Subscription): void {
    this.#byId.set(sub.id, sub);
    addTo(this.#byFlow, sub.flow.id, sub);
    if (sub.state === 'active') this.#live.enter(sub);
    this.schedule(sub);
  }

  get(id: string): Subscription | undefined {
    return this.#byId.get(id);
  }

  /** the subscriptions that still get NOTIFYs for a resource of a package */
  watching(packageName: string, resource: string): Subscription[] {
    return [...this.#live.ofResource(packageName, resource)].filter((s) => s.state === 'active');
  }

  /** every subscription of a package that still gets NOTIFYs */
  ofPackage(packageName: string): Subscription[] {
    return [...this.#byId.values()].filter((s) => s.package === packageName && s.state === 'active');
  }

  /** the subscriptions whose NOTIFYs take the flow `flowId`, active or terminating */
  onFlow(flowId: string): Subscription[] {
    return [...(this.#byFlow.get(flowId) ?? [])];
  }

  /** the active subscriptions, counted: by watcher, by resource, by both */
  get live(): LiveSubscriptions {
    return this.#live;
  }

  /** RFC 6665 §4.2.1.2: a SUBSCRIBE in the dialog refreshes it (see Subscription.refresh). */
  refresh(sub: Subscription, expiresAt: number, remoteCSeq: number, remoteTarget: string | undefined, flow: FlowRef): void {
    const before = sub.flow.id;
    sub.refresh(expiresAt, remoteCSeq, remoteTarget, flow);
    if (before !== flow.id && this.#byId.get(sub.id) === sub) {
      removeFrom(this.#byFlow, before, sub);
      addTo(this.#byFlow, flow.id, sub);
    }
    this.#live.touch(sub);
  }

  /** A partner's subscription whose NOTIFYs now take another connection of the federation link. */
  moveTo(sub: Subscription, flow: FlowRef): void {
    if (sub.flow.id === flow.id) return;
    const before = sub.flow.id;
    sub.flow = flow;
    if (this.#byId.get(sub.id) === sub) {
      removeFrom(this.#byFlow, before, sub);
      addTo(this.#byFlow, flow.id, sub);
    }
  }

  /** active → terminating (Subscription.terminate): it counts no more against the limits. */
  terminate(sub: Subscription, reason: TerminationReason, retryAfter?: number): void {
    sub.terminate(reason, retryAfter);
    this.#live.leave(sub);
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

  /** The subscription is over: forget it. Idempotent. */
  remove(sub: Subscription): void {
    if (this.#byId.get(sub.id) !== sub) return;
    this.#timers.get(sub.id)?.();
    this.#timers.delete(sub.id);
    this.#byId.delete(sub.id);
    removeFrom(this.#byFlow, sub.flow.id, sub);
    this.#live.leave(sub);
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
    this.#byFlow.clear();
    this.#live.clear();
  }
}
