// Partners' users on contact lists (issue 15): the list server watches them on the lists' behalf.
// While an owner has a subscription to their contact list (RFC 4662), Parley keeps one back-end
// subscription (remote-subscription.ts) per partner's user on that list, From the owner: the
// partner applies its user's blocks and policy to the owner as to any watcher. Their NOTIFYs
// update what the owner's list shows; the list's NOTIFY carries the member as `pending` until the
// partner's first NOTIFY (RFC 4662 §5.2), then their state.
//
// sync(owner) makes the back-end subscriptions match what is wanted: the owner's list is watched,
// the member is on it, the federation decision lets the owner reach the member's domain. It runs
// when a list document is built (so also for the first NOTIFY of a new list subscription and the
// final one of an ending subscription), when the list changes, and every SWEEP_MS (a list
// subscription whose connection died, a decision changed by an administrator).

import type { CancelTimer } from '../events/index.ts';
import { repeat } from '../events/index.ts';
import type { SipRequest } from '../sip/index.ts';
import type { OutboundDecision, Refusal } from './policy.ts';
import { headerTag, RemoteSubscription } from './remote-subscription.ts';
import type { RemoteSubscriptionDeps, RemoteView } from './remote-subscription.ts';

/** How often every owner with back-end subscriptions is looked at again. */
export const SWEEP_MS = 30_000;

/** What each back-end subscription is given (sentBy is read when needed: the link is wired after presence starts), and: */
export interface RemoteWatcherDeps extends Pick<RemoteSubscriptionDeps, 'timers' | 'logger' | 'product' | 'sentBy' | 'send'> {
  /** why `owner` may not reach `domain` (the federation decision), null when they may */
  refusal: OutboundDecision;
  /** whether `owner` has an active subscription to their contact list */
  watched(owner: string): boolean;
  /** the partners' users on `owner`'s list */
  remoteMembers(owner: string): Promise<readonly string[]>;
  /** what `owner`'s list shows changed: NOTIFY its subscriptions */
  changed(owner: string): void;
  sweepMs?: number;
}

export class RemoteWatcher {
  readonly #deps: RemoteWatcherDeps;
  /** by owner, then by member */
  readonly #subs = new Map<string, Map<string, RemoteSubscription>>();
  readonly #cancelSweep: CancelTimer;
  /** each owner's sync in progress: the next waits for it, so an older answer never undoes a newer one */
  readonly #syncing = new Map<string, Promise<void>>();
  #closed = false;

  constructor(deps: RemoteWatcherDeps) {
    this.#deps = deps;
    this.#cancelSweep = repeat(deps.timers, deps.sweepMs ?? SWEEP_MS, async () => {
      await Promise.all([...this.#subs.keys()].map((owner) => this.sync(owner)));
    }, (err) => deps.logger.error({ err }, 'looking at the subscriptions to partners\' users failed'));
  }

  /**
   * Starts and ends `owner`'s back-end subscriptions so that they match what is wanted now.
   * Resolves when done; never rejects (a failure is logged, the sweep tries again).
   */
  sync(owner: string): Promise<void> {
    const previous = this.#syncing.get(owner) ?? Promise.resolve();
    const next = previous.then(() => this.#sync(owner)).catch((err: unknown) => {
      this.#deps.logger.error({ err, owner }, 'looking at the subscriptions to partners\' users of %s failed', owner);
    });
    this.#syncing.set(owner, next);
    void next.then(() => {
      if (this.#syncing.get(owner) === next) this.#syncing.delete(owner);
    });
    return next;
  }

  async #sync(owner: string): Promise<void> {
    const members = this.#deps.watched(owner) ? await this.#deps.remoteMembers(owner) : [];
    const decisions = await Promise.all(members.map(async (m) => ((await this.#refusal(owner, m)) === null ? [m] : [])));
    // what is watched may have changed while the members were read: ask again, now that nothing awaits
    if (this.#closed) return;
    const wanted = new Set(this.#deps.watched(owner) ? decisions.flat() : []);
    const mine = this.#subs.get(owner);
    for (const [member, sub] of mine ?? []) if (!wanted.has(member)) sub.end();
    for (const member of wanted) {
      const existing = this.#subs.get(owner)?.get(member);
      if (existing !== undefined && existing.state !== 'ending' && existing.state !== 'ended') continue;
      // an ending one is replaced: its unsubscribe goes on, the new dialog is another
      const sub: RemoteSubscription = new RemoteSubscription(owner, member, {
        timers: this.#deps.timers,
        logger: this.#deps.logger,
        product: this.#deps.product,
        sentBy: () => this.#deps.sentBy(),
        send: (request, domain) => this.#deps.send(request, domain),
        onChange: () => this.#deps.changed(owner),
        onEnded: () => this.#forget(sub),
      });
      let byMember = this.#subs.get(owner);
      if (byMember === undefined) {
        byMember = new Map();
        this.#subs.set(owner, byMember);
      }
      byMember.set(member, sub);
      this.#deps.logger.info({ owner, member }, 'watching %s for the contact list of %s', member, owner);
      sub.start();
    }
  }

  /**
   * What `owner`'s list shows of partner's user `member`: the back-end subscription's view;
   * `terminated;reason=rejected` when the federation decision refuses the domain; else pending.
   */
  async view(owner: string, member: string): Promise<RemoteView> {
    const sub = this.#subs.get(owner)?.get(member);
    if (sub !== undefined && sub.state !== 'ending' && sub.state !== 'ended') return sub.view;
    if ((await this.#refusal(owner, member)) !== null) return { instance: 'terminated', reason: 'rejected' };
    return { instance: 'pending' };
  }

  /**
   * The back-end subscription a NOTIFY belongs to: same Call-ID, our tag as its To tag. The caller
   * then checks the sender (the member, verified by the link) and calls its notify().
   */
  find(request: SipRequest): RemoteSubscription | undefined {
    const callId = request.headers.get('call-id');
    const toTag = headerTag(request.headers.get('to'));
    if (callId === undefined || toTag === '') return undefined;
    // a linear look: one server watches a few thousand partners' users at most
    for (const byMember of this.#subs.values()) for (const sub of byMember.values()) if (sub.matches(callId, toTag)) return sub;
    return undefined;
  }

  /** The back-end subscriptions, for tests and inspection. */
  subscriptionsOf(owner: string): RemoteSubscription[] {
    return [...(this.#subs.get(owner)?.values() ?? [])];
  }

  /** Unsubscribes everything (best effort: the server is stopping). */
  close(): void {
    this.#closed = true;
    this.#cancelSweep();
    for (const byMember of this.#subs.values()) for (const sub of byMember.values()) sub.end();
  }

  #forget(sub: RemoteSubscription): void {
    const byMember = this.#subs.get(sub.owner);
    if (byMember?.get(sub.member) !== sub) return;
    byMember.delete(sub.member);
    if (byMember.size === 0) this.#subs.delete(sub.owner);
  }

  async #refusal(owner: string, member: string): Promise<Refusal | null> {
    const domain = member.slice(member.lastIndexOf('@') + 1);
    try {
      return await this.#deps.refusal(owner, domain);
    } catch (err) {
      return { code: 'DECISION_FAILED', warning: err instanceof Error ? err.message : String(err) };
    }
  }
}
