// The event-notification service (RFC 6665) of one Parley process: one SUBSCRIBE handler for every
// package, the subscriptions and the notifier. Packages bring their documents (package.ts).
//
//   const events = new EventService({ packages: [presence, messageSummary, provisioning] });
//   const handlers = [..., ...events.handlers];        // SUBSCRIBE
//   const ctx = { ..., events };                        // others call ctx.events.changed(…)
//   events.start(ctx);                                  // once ctx.transactions is set
//   closers.push(() => events.close());

import type { MethodHandler, SipContext } from '../router/context.ts';
import { Notifier } from './notifier.ts';
import { DEFAULT_SUBSCRIBE_EXPIRY } from './package.ts';
import type { EventNotifications, EventPackage, ExpirySettings } from './package.ts';
import { subscribeHandler } from './subscribe.ts';
import { SubscriptionStore } from './subscriptions.ts';
import type { Subscription, TerminationReason } from './subscriptions.ts';
import { NODE_TIMERS } from './timers.ts';
import type { Timers } from './timers.ts';

export interface EventServiceOptions {
  packages: readonly EventPackage[];
  /** durations for packages that set none; default DEFAULT_SUBSCRIBE_EXPIRY */
  expiry?: ExpirySettings;
  timers?: Timers;
}

interface Running {
  ctx: SipContext;
  subscriptions: SubscriptionStore;
  notifier: Notifier;
}

export class EventService implements EventNotifications {
  readonly handlers: readonly MethodHandler[];
  /** RFC 6665 §8.2.2 Allow-Events: `presence, message-summary, …` */
  readonly allowEvents: string;
  readonly #packages: ReadonlyMap<string, EventPackage>;
  readonly #expiry: ExpirySettings;
  readonly #timers: Timers;
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
    this.#expiry = opts.expiry ?? DEFAULT_SUBSCRIBE_EXPIRY;
    this.#timers = opts.timers ?? NODE_TIMERS;
    this.handlers = [subscribeHandler(this)];
  }

  /** Connects to the server's context (NOTIFYs go out through its transactions), then starts the packages. */
  start(ctx: SipContext): void {
    if (this.#running) throw new Error('event service already started');
    const subscriptions = new SubscriptionStore({
      timers: this.#timers,
      now: ctx.now,
      // RFC 6665 §4.2.2: at expiry, a NOTIFY with "Subscription-State: terminated;reason=timeout".
      onExpire: (sub) => this.terminate(sub, 'timeout'),
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
    });
    this.#running = { ctx, subscriptions, notifier };
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
    this.#package(packageName);
    const running = this.#running;
    if (!running) return;
    for (const sub of running.subscriptions.watching(packageName, addressOf(resource))) running.notifier.notify(sub, true);
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

  /** Ends a subscription with a final NOTIFY (expiry, unsubscribe, fetch). */
  terminate(sub: Subscription, reason: TerminationReason): void {
    if (sub.state !== 'active') return;
    sub.terminate(reason);
    this.notifier.notify(sub);
  }

  close(): void {
    const running = this.#running;
    if (!running) return;
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

/** `sip:Bob@parley.local` → `bob@parley.local`: how subscriptions name their resource. */
function addressOf(resource: string): string {
  return resource.trim().replace(/^sips?:/i, '').toLowerCase();
}
