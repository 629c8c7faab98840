// Presence (RFC 3856) as an event package of the event service (src/events), plus PUBLISH
// (RFC 3903): publications and the document watchers get, tied to the registrar (a user with no
// registration is Offline) through `ctx.registrations`; blocked watchers see Offline (blocks.ts);
// each user's contact list is a resource list (RFC 4662, lists.ts) its owner may subscribe to.
// In a cluster (`shared`), the publications are every node's (shared-publications.ts); the
// subscriptions stay with the node whose connection carries them.
//
//   const presence = new PresenceService({ blocks: databaseBlockList(sql), contacts: databaseContactLists(sql) });
//   const events = new EventService({ packages: [presence, …] });
//   const handlers = [..., ...presence.handlers, ...events.handlers];   // PUBLISH; SUBSCRIBE, NOTIFY
//   events.start(ctx);                                                 // starts presence too

import type { Authorization, CancelTimer, DocumentViews, EventDocument, EventNotifications, EventPackage, ExpirySettings, Subscription, Timers } from '../events/index.ts';
import { acceptsType, DEFAULT_SUBSCRIBE_EXPIRY, NODE_TIMERS, repeat } from '../events/index.ts';
import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import { authenticatePartner, fromPartner, sendToPartner } from '../router/partner.ts';
import { reply } from '../router/reply.ts';
import type { SipRequest } from '../sip/index.ts';
import type { BlockList } from './blocks.ts';
import type { ContactLists } from './contacts.ts';
import { acceptsPidf, PRESENCE_EVENT } from './headers.ts';
import { buildListDocument, EVENTLIST, hasOptionTag, listOwner, listResource, MULTIPART_RELATED, RLMI_TYPE } from './lists.ts';
import type { ListDocument, ListMember } from './lists.ts';
import { RemoteWatcher } from './remote.ts';
import { buildPidf, OFFLINE, PIDF_TYPE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';
import { aggregate, DEFAULT_PUBLISH_EXPIRY, PublicationStore } from './publications.ts';
import type { PublicationDetails, Publications } from './publications.ts';
import { SharedPublicationStore } from './shared-publications.ts';
import type { SharedPublications } from './shared-publications.ts';
import { publishHandler } from './publish.ts';

/** How often the server looks for blocks changed by another process (`parley admin --data-dir`). */
export const DEFAULT_BLOCK_POLL_MS = 1000;

export interface PresenceOptions {
  /** PUBLISH durations (RFC 3903 §4.1); config `presence.publishExpiry` */
  publishExpiry?: ExpirySettings;
  /** SUBSCRIBE durations for presence (RFC 3856 §6.4); config `presence.subscribeExpiry` */
  subscribeExpiry?: ExpirySettings;
  timers?: Timers;
  /**
   * The blocked watchers (issue 6), read for every NOTIFY (databaseBlockList keeps them in memory);
   * its change log is polled every `blockPollMs` so that changes made elsewhere reach the watchers'
   * subscriptions.
   */
  blocks?: BlockList;
  blockPollMs?: number;
  /**
   * The users' contact lists: with them, `sip:<user>+contacts@<domain>` is a resource list
   * (RFC 4662) its owner may subscribe to. Without them, there are no lists.
   */
  contacts?: ContactLists;
  /**
   * The seam for blocking when there is no `blocks`: true when `presentity` has blocked
   * `watcher`, who then sees Offline. Default: nobody is blocked.
   */
  isBlocked?: (watcher: string, presentity: string) => boolean | Promise<boolean>;
  /**
   * The publications of every node of a cluster (issue 16, src/cluster/presence.ts): with it,
   * PUBLISH stores there, watchers here see every node's publications, and changes made on other
   * nodes reach them. Without it, the publications are this process's (PublicationStore).
   */
  shared?: SharedPublications;
}

/** What `Get-CsUserPresence` shows: the live state of one user (publications: of every node of a cluster; watchers: of this node). */
export interface PresenceInspection extends PresenceState {
  aor: string;
  registrations: Array<{ contact: string; transport: string; userAgent: string | null; expiresAt: number }>;
  /** one per publishing device, the most recently changed first */
  publications: PublicationDetails[];
  /** active subscriptions to the user's presence, also through a contact list; a blocked watcher sees Offline */
  watchers: Array<{ watcher: string; blocked: boolean; expiresAt: number; viaList: boolean }>;
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
  publications: Publications;
  onRegistration: (aor: string) => void;
  /** the last block change seen; set once the first read of the log answers */
  blockSeq: number | undefined;
  /** the block changes being read (each read waits for the one before) */
  blockPoll: Promise<void>;
  cancelPoll: CancelTimer;
  /** the subscriptions to partners' users on contact lists (issue 15); absent without lists */
  remote: RemoteWatcher | undefined;
}

export class PresenceService implements EventPackage {
  readonly name = PRESENCE_EVENT;
  /** partners' users may watch local users, and local users partners' users (issue 15) */
  readonly federated = true;
  readonly contentType = PIDF_TYPE;
  /** PUBLISH; SUBSCRIBE is the event service's */
  readonly handlers: readonly MethodHandler[];
  readonly publishExpiry: ExpirySettings;
  /** RFC 3856 §6.4: "the default … SHOULD be 3600 seconds" */
  readonly expiry: ExpirySettings;
  readonly #timers: Timers;
  readonly #isBlocked: NonNullable<PresenceOptions['isBlocked']>;
  readonly #blocks: BlockList | undefined;
  readonly #blockPollMs: number;
  readonly #contacts: ContactLists | undefined;
  readonly #shared: SharedPublications | undefined;
  #running: Running | undefined;
  /** work started by a change and not awaited by its caller (list lookups, back-end subscriptions) */
  readonly #background = new Set<Promise<void>>();

  constructor(opts: PresenceOptions = {}) {
    this.publishExpiry = opts.publishExpiry ?? DEFAULT_PUBLISH_EXPIRY;
    this.expiry = opts.subscribeExpiry ?? DEFAULT_SUBSCRIBE_EXPIRY;
    this.#timers = opts.timers ?? NODE_TIMERS;
    const blocks = opts.blocks;
    this.#blocks = blocks;
    this.#blockPollMs = opts.blockPollMs ?? DEFAULT_BLOCK_POLL_MS;
    this.#contacts = opts.contacts;
    this.#shared = opts.shared;
    this.#isBlocked = blocks !== undefined ? (watcher, presentity) => blocks.isBlocked(presentity, watcher) : (opts.isBlocked ?? (() => false));
    this.handlers = [publishHandler(this)];
  }

  /** Called by the event service's start(ctx). */
  start(ctx: SipContext, events: EventNotifications): void {
    if (this.#running) throw new Error('presence service already started');
    const shared = this.#shared;
    const publications: Publications = shared === undefined
      ? new PublicationStore({ settings: this.publishExpiry, timers: this.#timers, now: ctx.now, onChange: (aor) => this.changed(aor) })
      : new SharedPublicationStore({
        shared,
        settings: this.publishExpiry,
        timers: this.#timers,
        now: ctx.now,
        onChange: (aor) => this.changed(aor),
        // the link to the other nodes was lost: every watcher's document is computed again
        onMissed: () => events.changedAll(this.name),
        onError: (err, doing) => ctx.logger.error({ err }, 'presence: %s failed', doing),
      });
    const onRegistration = (aor: string): void => this.changed(aor);
    ctx.registrations.on('changed', onRegistration);
    // blocks changed by another process (`parley admin --data-dir`) are found by polling their log
    const cancelPoll = this.#blocks === undefined ? () => {} : repeat(this.#timers, this.#blockPollMs, () => this.blocksChanged(), (err) => {
      ctx.logger.error({ err }, 'reading the changes of presence blocks failed');
    });
    const contacts = this.#contacts;
    const remote = contacts === undefined ? undefined : new RemoteWatcher({
      timers: this.#timers,
      logger: ctx.logger.child({ component: 'presence-lists' }),
      product: ctx.product,
      // ctx.federation is read at each use: the link is wired after the event service starts
      sentBy: () => ctx.federation?.sentBy,
      send: (request, domain) => sendToPartner(ctx, request, domain),
      refusal: (owner, domain) => (ctx.federation === undefined ? { code: 'FEDERATION_DISABLED', warning: `${ctx.domain} has no federation link configured` } : ctx.federation.outboundRefusal(owner, domain)),
      watched: (owner) => events.watching(this.name, listResource(owner)).length > 0,
      remoteMembers: async (owner) => (await contacts.membersOf(owner)).filter((c) => c.remote).map((c) => c.member),
      changed: (owner) => events.changed(this.name, listResource(owner)),
    });
    const running: Running = { ctx, events, publications, onRegistration, blockSeq: undefined, blockPoll: Promise.resolve(), cancelPoll, remote };
    this.#running = running;
    if (publications instanceof SharedPublicationStore) this.#inBackground(publications.listening());
    // where the poll of the block changes starts: the log as it is now
    const blocks = this.#blocks;
    if (blocks !== undefined) {
      running.blockPoll = blocks.lastChange().then(
        (seq) => void (running.blockSeq ??= seq),
        (err: unknown) => ctx.logger.error({ err }, 'reading the changes of presence blocks failed'),
      );
    }
  }

  /** RFC 3856 §6.7: PIDF is the format every presence watcher must accept. */
  accepts(accept: readonly string[]): boolean {
    return acceptsPidf(accept);
  }

  /** Users, and the contact list of each user (RFC 4662) when lists are on. */
  async hasResource(ctx: SipContext, resource: string): Promise<boolean> {
    const owner = this.#contacts === undefined ? undefined : listOwner(resource);
    return ctx.userExists(owner ?? resource);
  }

  /**
   * RFC 3856 §6.6 authorization: users of the organisation may watch each other (the event
   * service has already refused other domains and unknown users); blocking shows Offline instead.
   * A partner's user (issue 15) whom the federation gate admitted — federation allowed for their
   * domain, the watched user's external access policy enabled — is a watcher like a local user
   * who is not on the watched user's contact list: the policy has no rule for contacts, so both
   * see the same document, and a block shows them Offline alike. The gate is the opt-in; a block
   * is the user's own way to hide from one person, local or not.
   * A contact list is its owner's alone, and needs a subscriber that reads lists (RFC 4662 §4.1).
   */
  authorize(_ctx: SipContext, watcher: string, resource: string, request: SipRequest): Authorization {
    const owner = this.#contacts === undefined ? undefined : listOwner(resource);
    if (owner === undefined) return 'ok';
    if (watcher !== owner) return { status: 403, warning: `the contact list ${resource} is ${owner}'s alone` };
    // RFC 4662 §4.1: an RLS that gets a SUBSCRIBE for a list without "Supported: eventlist"
    // answers 421 (Extension Required) with "Require: eventlist".
    if (!hasOptionTag(request.headers.getAll('supported'), EVENTLIST)) {
      return { status: 421, headers: [['Require', EVENTLIST]], warning: `${resource} is a resource list (RFC 4662): subscribe with Supported: ${EVENTLIST}` };
    }
    const accept = request.headers.getAll('accept');
    if (!(acceptsType(accept, MULTIPART_RELATED) && acceptsType(accept, RLMI_TYPE) && acceptsPidf(accept))) {
      const types = `${MULTIPART_RELATED}, ${RLMI_TYPE}, ${PIDF_TYPE}`;
      return { status: 406, headers: [['Accept', types]], warning: `a resource list is sent as ${types}` };
    }
    return 'ok';
  }

  /** The PIDF document of the presentity as this watcher may see it; for a list, every member's. */
  async body(sub: Subscription): Promise<string | ListDocument & { headers: Array<[string, string]> }> {
    const owner = this.#contacts === undefined ? undefined : listOwner(sub.resource);
    if (owner === undefined || this.#contacts === undefined) return buildPidf(`sip:${sub.resource}`, await this.visibleTo(sub.watcher, sub.resource));
    const remote = this.#require().remote;
    // a new list subscription starts the watching of its partners' users, an ending one stops it
    if (remote !== undefined) this.#inBackground(remote.sync(owner));
    const members = await Promise.all(
      (await this.#contacts.membersOf(owner)).map(async (c): Promise<ListMember> => {
        const uri = `sip:${c.member}`;
        if (!c.remote || remote === undefined) return { uri, name: c.displayName, pidf: buildPidf(uri, await this.visibleTo(owner, c.member)) };
        // RFC 4662 §5.2: no state yet (pending) or none to be had (terminated): an instance without a part
        const view = await remote.view(owner, c.member);
        return { uri, name: c.displayName, pidf: view.presence === undefined ? null : buildPidf(uri, view.presence), instance: view.instance, ...(view.reason === undefined ? {} : { reason: view.reason }) };
      }),
    );
    // RFC 4662 §5.2: the version is 0 in the first NOTIFY and grows by one with each.
    const document = buildListDocument({ listUri: `sip:${sub.resource}`, domain: this.#require().ctx.domain, version: sub.notifiesSent, seed: sub.id, members });
    // RFC 4662 §4.5: NOTIFYs of a list subscription carry "Require: eventlist".
    return { ...document, headers: [['Require', EVENTLIST]] };
  }

  /**
   * The documents of a presentity for all its watchers at once (a fan-out, EventPackage.views): its
   * state is read once and the PIDF built once per view — what everyone sees, and Offline for the
   * watchers it has blocked (exactly what a really offline user's watchers get). Contact lists
   * differ per subscription (RFC 4662 version): body() builds theirs.
   */
  views(resource: string): Promise<DocumentViews> | undefined {
    if (this.#contacts !== undefined && listOwner(resource) !== undefined) return undefined;
    return this.#views(resource);
  }

  async #views(resource: string): Promise<DocumentViews> {
    const entity = `sip:${resource}`;
    const [state, blocked] = await Promise.all([this.stateOf(resource), this.#blocks?.blockedBy?.(resource)]);
    const visible: EventDocument = { contentType: PIDF_TYPE, body: buildPidf(entity, state) };
    const offline: EventDocument = state.state === OFFLINE.state && state.note === OFFLINE.note ? visible : { contentType: PIDF_TYPE, body: buildPidf(entity, OFFLINE) };
    if (blocked !== undefined) return (sub) => (blocked.has(sub.watcher) ? offline : visible);
    return async (sub) => ((await this.#isBlocked(sub.watcher, resource)) ? offline : visible);
  }

  get publications(): Publications {
    return this.#require().publications;
  }

  /** The presentity's aggregated state: Offline without a registration (issue 6). */
  async stateOf(aor: string): Promise<PresenceState> {
    const { ctx, publications } = this.#require();
    const bindings = await ctx.location.lookup(aor, ctx.now());
    return aggregate(bindings.length > 0, await publications.of(aor));
  }

  /** A summary of a user's presence (counts); `Get-CsUserPresence` shows inspect(). */
  async snapshot(aor: string): Promise<PresenceSnapshot> {
    const { ctx, events, publications } = this.#require();
    const registrations = (await ctx.location.lookup(aor, ctx.now())).length;
    const devices = await publications.of(aor);
    return { aor, ...aggregate(registrations > 0, devices), registrations, publications: devices.length, watchers: events.watching(this.name, aor).map((s) => s.watcher) };
  }

  /** What `watcher` may see of `presentity`: blocked watchers see Offline. */
  async visibleTo(watcher: string, presentity: string): Promise<PresenceState> {
    if (await this.#isBlocked(watcher, presentity)) return OFFLINE;
    return this.stateOf(presentity);
  }

  /** The live state of a user for an administrator (`Get-CsUserPresence`). */
  async inspect(aor: string): Promise<PresenceInspection> {
    const { ctx, events, publications } = this.#require();
    const bindings = await ctx.location.lookup(aor, ctx.now());
    const devices = await publications.details(aor);
    const subs = [
      ...events.watching(this.name, aor),
      ...((await this.#contacts?.listsWith(aor)) ?? []).flatMap((owner) => events.watching(this.name, listResource(owner))),
    ];
    const watchers = await Promise.all(
      subs.map(async (s) => ({ watcher: s.watcher, blocked: await this.#isBlocked(s.watcher, aor), expiresAt: s.expiresAt, viaList: s.resource !== aor })),
    );
    return {
      aor,
      ...aggregate(bindings.length > 0, devices),
      registrations: bindings.map((b) => ({ contact: b.contact, transport: b.flow.protocol, userAgent: b.userAgent, expiresAt: b.expiresAt })),
      publications: devices,
      watchers,
    };
  }

  /**
   * The presentity's publications or registrations changed: every watcher gets a NOTIFY, and so
   * does every subscription to a contact list the presentity is on.
   */
  changed(aor: string): void {
    const running = this.#running;
    if (running === undefined) return;
    running.events.changed(this.name, aor);
    const contacts = this.#contacts;
    if (contacts === undefined) return;
    this.#inBackground(
      contacts.listsWith(aor).then((owners) => {
        for (const owner of owners) running.events.changed(this.name, listResource(owner));
      }),
    );
  }

  /** `owner`'s contact list changed: its subscriptions get the new list, the partners' users on it are watched or no more. */
  contactsChanged(owner: string): void {
    this.#contacts?.forget?.();
    const running = this.#running;
    if (running === undefined) return;
    if (running.remote !== undefined) this.#inBackground(running.remote.sync(owner));
    running.events.changed(this.name, listResource(owner));
  }

  /**
   * A NOTIFY of a subscription the list server made to a partner's user (remote.ts): only from a
   * partner's connection, only within the exact dialog (Call-ID and our tag), only from the member
   * that dialog watches, whose domain the connection's certificate was verified for.
   */
  async takeNotify(ctx: SipContext, incoming: Incoming): Promise<boolean> {
    const remote = this.#running?.remote;
    if (remote === undefined || !fromPartner(incoming)) return false;
    const sub = remote.find(incoming.request);
    if (sub === undefined) return false;
    const sender = await authenticatePartner(ctx, incoming, sub.owner);
    if (sender === undefined) return true;
    if (sender.toLowerCase() !== sub.member) {
      reply(ctx, incoming, 403, { warning: `this dialog watches ${sub.member}, not ${sender}` });
      return true;
    }
    const { status, warning } = sub.notify(incoming.request);
    reply(ctx, incoming, status, warning === undefined ? {} : { warning });
    return true;
  }

  /**
   * Blocks were added or removed (by this process, or by another one, found by the poll): the
   * watchers of each owner whose document changed get a NOTIFY — the newly blocked one sees
   * Offline, the unblocked one the real state — and nobody else hears of it.
   */
  blocksChanged(): Promise<void> {
    const running = this.#running;
    const blocks = this.#blocks;
    if (running === undefined || blocks === undefined) return Promise.resolve();
    // one read at a time: two would find the same changes
    running.blockPoll = running.blockPoll.then(async () => {
      if (this.#running !== running) return;
      // the first read of the log failed: start from now on
      running.blockSeq ??= await blocks.lastChange();
      const changes = await blocks.changesSince(running.blockSeq);
      if (changes.length === 0 || this.#running !== running) return;
      running.blockSeq = changes[changes.length - 1]?.seq ?? running.blockSeq;
      blocks.forget?.();
      for (const owner of new Set(changes.map((c) => c.owner))) this.changed(owner);
    }).catch((err: unknown) => running.ctx.logger.error({ err }, 'reading the changes of presence blocks failed'));
    return running.blockPoll;
  }

  /** Resolves when the work that changes started in the background is done (tests; a clean stop). */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.all(this.#background);
    await this.#running?.blockPoll;
  }

  close(): void {
    const running = this.#running;
    if (!running) return;
    running.cancelPoll();
    running.remote?.close();
    running.ctx.registrations.off('changed', running.onRegistration);
    running.publications.close();
    this.#running = undefined;
  }

  /** Work nobody awaits: kept until done, its failure logged. */
  #inBackground(work: Promise<void>): void {
    const logger = this.#running?.ctx.logger;
    const tracked: Promise<void> = work
      .catch((err: unknown) => logger?.error({ err }, 'presence: updating the watchers failed'))
      .finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  #require(): Running {
    if (!this.#running) throw new Error('presence service not started: call start() of the event service');
    return this.#running;
  }
}
