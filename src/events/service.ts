// The event-notification service (RFC 6665) of one Parley process: one SUBSCRIBE handler for every
// package, the subscriptions and the notifier. Packages bring their documents (package.ts).
//
//   const events = new EventService({ packages: [presence, messageSummary, provisioning] });
//   const handlers = [..., ...events.handlers];        // SUBSCRIBE; NOTIFY (router/dialog-proxy.ts)
//   const ctx = { ..., events };                        // others call ctx.events.changed(…)
//   events.start(ctx);                                  // once ctx.transactions is set
//   closers.push(() => events.close());

import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import { DialogProxy, dialogNotifyHandler } from '../router/dialog-proxy.ts';
import { DEFAULT_SUBSCRIPTION_LIMITS } from './limits.ts';
import type { SubscriptionLimits } from './limits.ts';
import { Notifier } from './notifier.ts';
import { DEFAULT_SUBSCRIBE_EXPIRY } from './package.ts';
import type { EventNotifications, EventPackage, ExpirySettings } from './package.ts';
import { subscribeHandler } from './subscribe.ts';
import { SubscriptionStore } from './subscriptions.ts';
import type { Subscription, TerminationReason } from './subscriptions.ts';
import { NODE_TIMERS, repeat } from './timers.ts';
import type { CancelTimer, Timers } from './timers.ts';

/** How often the service looks for watchers and resources that were removed (`Remove-CsUser`). */
export const DEFAULT_USER_SWEEP_MS = 60_000;

export interface EventServiceOptions {
  packages: readonly EventPackage[];
  /** durations for packages that set none; default DEFAULT_SUBSCRIBE_EXPIRY */
  expiry?: ExpirySettings;
  /** live subscriptions per watcher and resource, per watcher, per resource (config `events`) */
  limits?: SubscriptionLimits;
  /** default DEFAULT_USER_SWEEP_MS */
  userSweepMs?: number;
  /** the key of the dialog proxy's flow tokens, the same on every node of a cluster; absent: a random one (one process) */
  dialogKey?: Uint8Array;
  timers?: Timers;
  /** NOTIFYs of a fan-out per turn of the event loop (Notifier); default FANOUT_SLICE */
  fanoutSlice?: number;
}

interface Running {
  ctx: SipContext;
  subscriptions: SubscriptionStore;
  notifier: Notifier;
  cancelSweep: CancelTimer;
}

export class EventService implements EventNotifications {
  readonly handlers: readonly MethodHandler[];
  /** RFC 6665 §8.2.2 Allow-Events: `presence, message-summary, …` */
  readonly allowEvents: string;
  /** Allow-Events towards partner organisations: the packages that are `federated` */
  readonly federatedEvents: string;
  /** subscriptions of local users to partners' users pass through it (src/router/dialog-proxy.ts) */
  readonly proxy: DialogProxy;
  readonly #packages: ReadonlyMap<string, EventPackage>;
  readonly #expiry: ExpirySettings;
  readonly #limits: SubscriptionLimits;
  readonly #userSweepMs: number;
  readonly #timers: Timers;
  readonly #fanoutSlice: number | undefined;
  #running: Running | undefined;

  constructor(opts: EventServiceOptions) {
    const packages = new Map<string, EventPackage>();
    for (const pkg of opts.packages) {
      if (pkg.name !== pkg.name.toLowerCase() || pkg.name === '') throw new Error(`event package name "${pkg.name}" must be a lower-case token`);
      if (packages.has(pkg.name)) throw new Error(`event package ${pkg.name} is given twice`);
      packages.set(pkg.name, pkg);
    }
    this.#packages = packages;
    this.allowEvents = [...packages.keys()].join(', ');
    this.federatedEvents = [...packages.values()].filter((p) => p.federated === true).map((p) => p.name).join(', ');
    this.#expiry = opts.expiry ?? DEFAULT_SUBSCRIBE_EXPIRY;
    this.#limits = opts.limits ?? DEFAULT_SUBSCRIPTION_LIMITS;
    this.#userSweepMs = opts.userSweepMs ?? DEFAULT_USER_SWEEP_MS;
    this.#timers = opts.timers ?? NODE_TIMERS;
    this.#fanoutSlice = opts.fanoutSlice;
    this.proxy = new DialogProxy(opts.dialogKey);
    // NOTIFY: only the partner's, within a subscription of a local user that Parley record-routed
    // and the NOTIFYs of the packages' own subscriptions (takeNotify)
    this.handlers = [subscribeHandler(this), dialogNotifyHandler(this.proxy, (ctx, incoming) => this.#takeNotify(ctx, incoming))];
  }

  /** Connects to the server's context (NOTIFYs go out through its transactions), then starts the packages. */
  start(ctx: SipContext): void {
    if (this.#running) throw new Error('event service already started');
    const subscriptions = new SubscriptionStore({
      timers: this.#timers,
      now: ctx.now,
      // RFC 6665 §4.2.2: at expiry, a NOTIFY with "Subscription-State: terminated;reason=timeout".
      onExpire: (sub) => this.terminate(sub, 'timeout'),
      limits: this.#limits,
    });
    const notifier = new Notifier({
      product: ctx.product,
      logger: ctx.logger.child({ component: 'events' }),
      transactions: ctx.transactions,
      resolveFlow: (ref) => ctx.resolveFlow(ref),
      now: ctx.now,
      documentFor: async (sub) => {
        const pkg = this.#package(sub.package);
        const body = await pkg.body(sub);
        return typeof body === 'string' ? { contentType: pkg.contentType, body } : body;
      },
      onEnded: (sub) => subscriptions.remove(sub),
      // read when a NOTIFY needs it: the server sets ctx.federation once its listeners run, after start()
      get federation() {
        return ctx.federation;
      },
      onFlowMoved: (sub, flow) => subscriptions.moveTo(sub, flow),
      fanoutSlice: this.#fanoutSlice,
    });
    const cancelSweep = repeat(this.#timers, this.#userSweepMs, () => this.sweepRemovedUsers(), (err) => {
      ctx.logger.error({ err }, 'looking for subscriptions of removed users failed');
    });
    this.#running = { ctx, subscriptions, notifier, cancelSweep };
    for (const pkg of this.#packages.values()) pkg.start?.(ctx, this);
  }

  packageOf(name: string): EventPackage | undefined {
    return this.#packages.get(name.toLowerCase());
  }

  expiryOf(pkg: EventPackage): ExpirySettings {
    return pkg.expiry ?? this.#expiry;
  }

  get subscriptions(): SubscriptionStore {
    return this.#require().subscriptions;
  }

  get notifier(): Notifier {
    return this.#require().notifier;
  }

  /**
   * The resource's document in the package may have changed: each active subscriber gets a NOTIFY
   * when the document it would get differs from the last one it got. `resource` is an address,
   * `bob@parley.local` or `sip:bob@parley.local`. Does nothing before start() or after close();
   * an unknown package is a bug and throws.
   */
  changed(packageName: string, resource: string): void {
    const pkg = this.#package(packageName);
    const running = this.#running;
    if (!running) return;
    const address = addressOf(resource);
    const subs = running.subscriptions.watching(packageName, address);
    if (subs.length === 0) return;
    // one change, many watchers: the package reads its state once and builds each distinct document once
    const views = pkg.views?.(address);
    // a failure reaches each NOTIFY that waits for the views (it is logged there); none may wait
    views?.catch(() => {});
    running.notifier.notifyAll(`${packageName}\n${address}`, subs, views);
  }

  changedAll(packageName: string): void {
    this.#package(packageName);
    const running = this.#running;
    if (!running) return;
    for (const sub of running.subscriptions.ofPackage(packageName)) running.notifier.notify(sub, true);
  }

  watching(packageName: string, resource: string): Subscription[] {
    return this.#running?.subscriptions.watching(packageName, addressOf(resource)) ?? [];
  }

  /** Ends a subscription with a final NOTIFY (expiry, unsubscribe, fetch, replaced, user removed). */
  terminate(sub: Subscription, reason: TerminationReason, retryAfter?: number): void {
    if (sub.state !== 'active') return;
    this.subscriptions.terminate(sub, reason, retryAfter);
    this.notifier.notify(sub);
  }

  /**
   * A connection closed (TCP, TLS, WebSocket): the subscriptions whose NOTIFYs took it end now,
   * rather than at the next change or at expiry, so that they stop counting against the limits.
   * Partners' subscriptions stay: the federation link closes idle connections and opens another
   * one for the next NOTIFY (notifier.ts).
   */
  flowClosed(flowId: string): void {
    const running = this.#running;
    if (!running) return;
    const gone = running.subscriptions.onFlow(flowId).filter((sub) => sub.partner === undefined);
    for (const sub of gone) running.notifier.abandon(sub);
    if (gone.length > 0) running.ctx.logger.info({ flow: flowId, subscriptions: gone.length }, '%d subscriptions ended: their connection closed', gone.length);
  }

  /**
   * Ends the subscriptions of watchers who are no longer users (RFC 6665 §4.1.3 `rejected`: do
   * not subscribe again) and to resources that no longer exist (`noresource`). A user may be
   * removed by another process (`parley admin --data-dir`), so this runs every userSweepMs; it
   * looks at each distinct watcher and resource once.
   */
  async sweepRemovedUsers(): Promise<void> {
    const running = this.#running;
    if (!running) return;
    const { ctx, subscriptions } = running;
    // the lookups await (the directory, the federation decision): what was live when they began is looked at
    for (const watcher of [...subscriptions.live.watchers()]) {
      if (await this.#partnerWatcher(ctx, watcher)) continue;
      if (await ctx.userExists(watcher)) continue;
      if (this.#running !== running) return;
      ctx.logger.info({ watcher }, 'subscriptions of %s ended: no such user any more', watcher);
      for (const sub of [...subscriptions.live.ofWatcher(watcher)]) this.terminate(sub, 'rejected');
    }
    for (const { packageName, resource } of [...subscriptions.live.resources()]) {
      const pkg = this.#package(packageName);
      if (await (pkg.hasResource?.(ctx, resource) ?? ctx.userExists(resource))) continue;
      if (this.#running !== running) return;
      ctx.logger.info({ resource, event: packageName }, '%s subscriptions to %s ended: it exists no more', packageName, resource);
      for (const sub of [...subscriptions.live.ofResource(packageName, resource)]) this.terminate(sub, 'noresource');
    }
  }

  /**
   * A partner's watcher (a user of another organisation): not in the directory, so not swept as a
   * removed user. Their subscriptions end (`rejected`) when the federation decision no longer lets
   * the watched user talk to that organisation: federation turned off, the domain blocked or no
   * longer allowed, the user's external access policy changed, or the user removed.
   */
  async #partnerWatcher(ctx: SipContext, watcher: string): Promise<boolean> {
    const subs = [...(this.#running?.subscriptions.live.ofWatcher(watcher) ?? [])];
    const partner = subs[0]?.partner;
    if (partner === undefined) return false;
    for (const sub of subs) {
      const refusal = await partnerRefusal(ctx, sub.resource, partner);
      if (refusal === null || this.#running === undefined) continue;
      ctx.logger.info({ watcher, resource: sub.resource }, 'subscription of %s to %s ended: %s', watcher, sub.resource, refusal.warning);
      this.terminate(sub, 'rejected');
    }
    return true;
  }

  async #takeNotify(ctx: SipContext, incoming: Incoming): Promise<boolean> {
    for (const pkg of this.#packages.values()) if (pkg.takeNotify !== undefined && (await pkg.takeNotify(ctx, incoming))) return true;
    return false;
  }

  close(): void {
    const running = this.#running;
    if (!running) return;
    running.cancelSweep();
    running.notifier.close();
    for (const pkg of this.#packages.values()) pkg.close?.();
    running.subscriptions.close();
    this.#running = undefined;
  }

  #package(name: string): EventPackage {
    const pkg = this.#packages.get(name);
    if (pkg === undefined) throw new Error(`no event package ${name}; the packages are ${this.allowEvents}`);
    return pkg;
  }

  #require(): Running {
    if (!this.#running) throw new Error('event service not started: call start(ctx)');
    return this.#running;
  }
}

/** Why `resource` may no longer be watched from `partner`, or null; a decision that fails counts as a refusal. */
async function partnerRefusal(ctx: SipContext, resource: string, partner: string): Promise<{ warning: string } | null> {
  if (ctx.federation === undefined) return { warning: 'federation is not configured' };
  try {
    return await ctx.federation.outboundRefusal(resource, partner);
  } catch (err) {
    return { warning: err instanceof Error ? err.message : String(err) };
  }
}

/** `sip:Bob@parley.local` → `bob@parley.local`: how subscriptions name their resource. */
function addressOf(resource: string): string {
  return resource.trim().replace(/^sips?:/i, '').toLowerCase();
}
