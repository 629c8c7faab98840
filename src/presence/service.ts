// Presence (RFC 3856) as an event package of the event service (src/events), plus PUBLISH
// (RFC 3903): publications and the document watchers get, tied to the registrar (a user with no
// registration is Offline) through `ctx.registrations`.
//
//   const presence = new PresenceService();
//   const events = new EventService({ packages: [presence, …] });
//   const handlers = [..., ...presence.handlers, ...events.handlers];   // PUBLISH; SUBSCRIBE
//   events.start(ctx);                                                 // starts presence too

import type { Authorization, EventNotifications, EventPackage, ExpirySettings, Subscription, Timers } from '../events/index.ts';
import { DEFAULT_SUBSCRIBE_EXPIRY, NODE_TIMERS } from '../events/index.ts';
import type { MethodHandler, SipContext } from '../router/context.ts';
import { acceptsPidf, PRESENCE_EVENT } from './headers.ts';
import { buildPidf, OFFLINE, PIDF_TYPE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';
import { aggregate, DEFAULT_PUBLISH_EXPIRY, PublicationStore } from './publications.ts';
import { publishHandler } from './publish.ts';

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
  events: EventNotifications;
  publications: PublicationStore;
  onRegistration: (aor: string) => void;
}

export class PresenceService implements EventPackage {
  readonly name = PRESENCE_EVENT;
  readonly contentType = PIDF_TYPE;
  /** PUBLISH; SUBSCRIBE is the event service's */
  readonly handlers: readonly MethodHandler[];
  readonly publishExpiry: ExpirySettings;
  /** RFC 3856 §6.4: "the default … SHOULD be 3600 seconds" */
  readonly expiry: ExpirySettings;
  readonly #timers: Timers;
  readonly #isBlocked: NonNullable<PresenceOptions['isBlocked']>;
  #running: Running | undefined;

  constructor(opts: PresenceOptions = {}) {
    this.publishExpiry = opts.publishExpiry ?? DEFAULT_PUBLISH_EXPIRY;
    this.expiry = opts.subscribeExpiry ?? DEFAULT_SUBSCRIBE_EXPIRY;
    this.#timers = opts.timers ?? NODE_TIMERS;
    this.#isBlocked = opts.isBlocked ?? (() => false);
    this.handlers = [publishHandler(this)];
  }

  /** Called by the event service's start(ctx). */
  start(ctx: SipContext, events: EventNotifications): void {
    if (this.#running) throw new Error('presence service already started');
    const publications = new PublicationStore({
      settings: this.publishExpiry,
      timers: this.#timers,
      now: ctx.now,
      onChange: (aor) => this.changed(aor),
    });
    const onRegistration = (aor: string): void => this.changed(aor);
    ctx.registrations.on('changed', onRegistration);
    this.#running = { ctx, events, publications, onRegistration };
  }

  /** RFC 3856 §6.7: PIDF is the format every presence watcher must accept. */
  accepts(accept: readonly string[]): boolean {
    return acceptsPidf(accept);
  }

  /**
   * RFC 3856 §6.6 authorization: users of the organisation may watch each other (the event
   * service has already refused other domains and unknown users); blocking shows Offline instead.
   */
  authorize(): Authorization {
    return 'ok';
  }

  /** The PIDF document of the presentity as this watcher may see it. */
  async body(sub: Subscription): Promise<string> {
    return buildPidf(`sip:${sub.resource}`, await this.visibleTo(sub.watcher, sub.resource));
  }

  get publications(): PublicationStore {
    return this.#require().publications;
  }

  /** The presentity's aggregated state: Offline without a registration (issue 6). */
  async stateOf(aor: string): Promise<PresenceState> {
    const { ctx, publications } = this.#require();
    const bindings = await ctx.location.lookup(aor, ctx.now());
    return aggregate(bindings.length > 0, publications.of(aor));
  }

  /** What an administrator sees of a user (the seam for `Get-CsUserPresence`). */
  async snapshot(aor: string): Promise<PresenceSnapshot> {
    const { ctx, events, publications } = this.#require();
    const registrations = (await ctx.location.lookup(aor, ctx.now())).length;
    const devices = publications.of(aor);
    return { aor, ...aggregate(registrations > 0, devices), registrations, publications: devices.length, watchers: events.watching(this.name, aor).map((s) => s.watcher) };
  }

  /** What `watcher` may see of `presentity`: blocked watchers see Offline. */
  async visibleTo(watcher: string, presentity: string): Promise<PresenceState> {
    if (await this.#isBlocked(watcher, presentity)) return OFFLINE;
    return this.stateOf(presentity);
  }

  /** The presentity's publications or registrations changed: every watcher gets a NOTIFY. */
  changed(aor: string): void {
    this.#running?.events.changed(this.name, aor);
  }

  close(): void {
    const running = this.#running;
    if (!running) return;
    running.ctx.registrations.off('changed', running.onRegistration);
    running.publications.close();
    this.#running = undefined;
  }

  #require(): Running {
    if (!this.#running) throw new Error('presence service not started: call start() of the event service');
    return this.#running;
  }
}
