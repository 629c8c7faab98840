// The presence service: publications, subscriptions and the notifier of one Parley process,
// tied to the registrar (a user with no registration is Offline) through `ctx.registrations`.
//
//   const presence = new PresenceService();
//   const handlers = [..., ...presence.handlers];      // PUBLISH and SUBSCRIBE
//   ... build ctx ...
//   presence.start(ctx);                               // once ctx.transactions is set
//   closers.push(() => presence.close());

import type { MethodHandler, SipContext } from '../router/context.ts';
import { Notifier } from './notifier.ts';
import { OFFLINE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';
import { aggregate, DEFAULT_PUBLISH_EXPIRY, PublicationStore } from './publications.ts';
import type { ExpirySettings } from './publications.ts';
import { publishHandler } from './publish.ts';
import { subscribeHandler } from './subscribe.ts';
import { DEFAULT_SUBSCRIBE_EXPIRY, SubscriptionStore } from './subscriptions.ts';
import type { Subscription } from './subscriptions.ts';
import { NODE_TIMERS } from './timers.ts';
import type { Timers } from './timers.ts';

export interface PresenceOptions {
  publishExpiry?: ExpirySettings;
  subscribeExpiry?: ExpirySettings;
  timers?: Timers;
  /**
   * The seam for blocking (issue 6): true when `presentity` has blocked `watcher`, who then sees
   * Offline. Default: nobody is blocked.
   */
  isBlocked?: (watcher: string, presentity: string) => boolean | Promise<boolean>;
}

export interface PresenceSnapshot extends PresenceState {
  aor: string;
  /** live bindings: 0 means Offline whatever was published */
  registrations: number;
  /** live publications, one per publishing device */
  publications: number;
  /** addresses of the active watchers */
  watchers: string[];
}

interface Running {
  ctx: SipContext;
  publications: PublicationStore;
  subscriptions: SubscriptionStore;
  notifier: Notifier;
  onRegistration: (aor: string) => void;
}

export class PresenceService {
  readonly handlers: readonly MethodHandler[];
  readonly publishExpiry: ExpirySettings;
  readonly subscribeExpiry: ExpirySettings;
  readonly #timers: Timers;
  readonly #isBlocked: NonNullable<PresenceOptions['isBlocked']>;
  #running: Running | undefined;

  constructor(opts: PresenceOptions = {}) {
    this.publishExpiry = opts.publishExpiry ?? DEFAULT_PUBLISH_EXPIRY;
    this.subscribeExpiry = opts.subscribeExpiry ?? DEFAULT_SUBSCRIBE_EXPIRY;
    this.#timers = opts.timers ?? NODE_TIMERS;
    this.#isBlocked = opts.isBlocked ?? (() => false);
    this.handlers = [publishHandler(this), subscribeHandler(this)];
  }

  /** Connects to the server's context: NOTIFYs go out through its transactions and flows. */
  start(ctx: SipContext): void {
    if (this.#running) throw new Error('presence service already started');
    const publications = new PublicationStore({
      settings: this.publishExpiry,
      timers: this.#timers,
      now: ctx.now,
      onChange: (aor) => this.changed(aor),
    });
    const subscriptions = new SubscriptionStore({
      timers: this.#timers,
      now: ctx.now,
      // RFC 6665 §4.2.2: at expiry, a NOTIFY with "Subscription-State: terminated;reason=timeout".
      onExpire: (sub) => this.terminate(sub, 'timeout'),
    });
    const notifier = new Notifier({
      product: ctx.product,
      logger: ctx.logger.child({ component: 'presence' }),
      transactions: ctx.transactions,
      resolveFlow: (ref) => ctx.resolveFlow(ref),
      now: ctx.now,
      stateFor: (sub) => this.visibleTo(sub.watcher, sub.presentity),
      onEnded: (sub) => subscriptions.remove(sub),
    });
    const onRegistration = (aor: string): void => this.changed(aor);
    ctx.registrations.on('changed', onRegistration);
    this.#running = { ctx, publications, subscriptions, notifier, onRegistration };
  }

  get publications(): PublicationStore {
    return this.#require().publications;
  }

  get subscriptions(): SubscriptionStore {
    return this.#require().subscriptions;
  }

  get notifier(): Notifier {
    return this.#require().notifier;
  }

  /** The presentity's aggregated state: Offline without a registration (issue 6). */
  async stateOf(aor: string): Promise<PresenceState> {
    const { ctx, publications } = this.#require();
    const bindings = await ctx.location.lookup(aor, ctx.now());
    return aggregate(bindings.length > 0, publications.of(aor));
  }

  /** What an administrator sees of a user (the seam for `Get-CsUserPresence`). */
  async snapshot(aor: string): Promise<PresenceSnapshot> {
    const { ctx, publications, subscriptions } = this.#require();
    const registrations = (await ctx.location.lookup(aor, ctx.now())).length;
    const devices = publications.of(aor);
    return { aor, ...aggregate(registrations > 0, devices), registrations, publications: devices.length, watchers: subscriptions.watching(aor).map((s) => s.watcher) };
  }

  /** What `watcher` may see of `presentity`: blocked watchers see Offline. */
  async visibleTo(watcher: string, presentity: string): Promise<PresenceState> {
    if (await this.#isBlocked(watcher, presentity)) return OFFLINE;
    return this.stateOf(presentity);
  }

  /** The presentity's publications or registrations changed: every watcher gets a NOTIFY. */
  changed(aor: string): void {
    const running = this.#running;
    if (!running) return;
    for (const sub of running.subscriptions.watching(aor)) running.notifier.notify(sub, true);
  }

  /** Ends a subscription with a final NOTIFY (expiry, unsubscribe, fetch). */
  terminate(sub: Subscription, reason: 'timeout' | 'deactivated' | 'noresource'): void {
    if (sub.state !== 'active') return;
    sub.terminate(reason);
    this.notifier.notify(sub);
  }

  close(): void {
    const running = this.#running;
    if (!running) return;
    running.ctx.registrations.off('changed', running.onRegistration);
    running.publications.close();
    running.subscriptions.close();
    this.#running = undefined;
  }

  #require(): Running {
    if (!this.#running) throw new Error('presence service not started: call start(ctx)');
    return this.#running;
  }
}
