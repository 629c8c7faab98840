// Presence for the client SDK: publishing the user's own state (RFC 3903 PUBLISH of a PIDF
// document, RFC 3863/4480) and watching others' (RFC 3856 SUBSCRIBE to one presentity, or one
// RFC 4662 SUBSCRIBE to the user's contact list). No Node module is imported here: the browser
// bundle carries this file too. The documents are built and read by src/presence/pidf.ts (pure),
// the list bodies by rlmi.ts.
//
// Publication states: idle → published (an entity-tag held, refreshed before expiry) → idle
// (removed, or the connection gone). Operations run one at a time, in order.

import { buildPidf, PIDF_TYPE, parsePidf, PRESENCE_STATES } from '../presence/pidf.ts';
import type { PresenceState, PresenceStateName } from '../presence/pidf.ts';
import { EVENTLIST, MULTIPART_RELATED, RLMI_TYPE } from '../presence/list-names.ts';
import { parseUri } from '../sip/pure.ts';
import { TypedEmitter } from './emitter.ts';
import { ClientError } from './errors.ts';
import { expiresHeader } from './event-headers.ts';
import { intervalTooBriefRetry, RefreshTimer, SerialQueue } from './refresh.ts';
import { warningTextOf } from './warning.ts';
import { parseListNotify } from './rlmi.ts';
import type { ClientSubscription, SubscribeOptions, SubscriptionNotify, SubscriptionTermination } from './subscription.ts';
import type { RequestOptions, ResponseInfo } from './types.ts';

export { PRESENCE_STATES } from '../presence/pidf.ts';
export type { PresenceStateName } from '../presence/pidf.ts';
export { listResource } from '../presence/list-names.ts';

export const PRESENCE_EVENT = 'presence';
/** Accept of a list subscription (RFC 4662 §4.1: the multipart wrapper, RLMI and the members' format) */
export const LIST_ACCEPT: readonly string[] = [MULTIPART_RELATED, RLMI_TYPE, PIDF_TYPE];
/** What a publication asks for, seconds; the server's default (src/presence/publications.ts) */
export const DEFAULT_PUBLISH_EXPIRES = 3600;
/** How long close()/unregister() waits for the PUBLISH that removes the publication */
export const REMOVE_WAIT_MS = 2000;

export interface PublishPresence {
  state: PresenceStateName;
  /** free text shown beside the state ('' or absent: none) */
  note?: string;
}

export interface PublishResult {
  status: number;
  reason: string;
  /** the entity-tag of the publication (RFC 3903 §4.1: SIP-ETag of the 2xx) */
  etag: string;
  /** seconds granted */
  expires: number;
}

/** A watched presentity's state, as `change` events and snapshot() give it. */
export interface PresenceInfo {
  /** `bob@parley.local`: the URI without scheme and parameters */
  address: string;
  displayName?: string;
  state: PresenceStateName;
  /** absent when the presentity set none */
  note?: string;
}

export interface PresenceListEvents {
  /** a member's state, note or display name changed (or is first known) */
  change: [PresenceInfo];
  /** a member left the list (RFC 4662 full state without it, or all its instances terminated) */
  removed: [{ address: string }];
  /** a NOTIFY body that does not parse (ClientError INVALID_BODY); the subscription lives on */
  error: [ClientError];
  /** the subscription ended (see ClientSubscription's `terminated`) */
  terminated: [SubscriptionTermination];
}

/** `sip:bob@parley.local;x=y` → `bob@parley.local` (what the SDK names an address everywhere). */
export function addressOfUri(uri: string): string {
  try {
    const parsed = parseUri(uri.trim().replace(/^<|>$/g, ''));
    return parsed.user === null ? parsed.host : `${parsed.user}@${parsed.host}`;
  } catch {
    return uri.replace(/^(sips?|pres):/i, '').replace(/[;?].*$/, '');
  }
}

/** A state name as a person types it (`busy`, `dnd`, `be-right-back`, `Do Not Disturb`), or undefined. */
export function presenceStateNamed(text: string): PresenceStateName | undefined {
  const key = text.toLowerCase().replace(/[\s_-]+/g, '');
  const aliases: Record<string, PresenceStateName> = { dnd: 'Do Not Disturb', brb: 'Be Right Back', online: 'Available', free: 'Available', invisible: 'Offline', appearoffline: 'Offline' };
  return PRESENCE_STATES.find((s) => s.toLowerCase().replace(/\s+/g, '') === key) ?? aliases[key];
}

/**
 * A live view of the presence of a contact list (one RFC 4662 subscription) or of one presentity
 * (one RFC 3856 subscription): `change` per update, snapshot() for the whole. Made by
 * SipUserAgent.watchPresenceList() / watchPresence(), which resolve once the SUBSCRIBE is accepted;
 * the first NOTIFY may come before or after that: read snapshot(), then listen.
 */
export class PresenceList extends TypedEmitter<PresenceListEvents> {
  readonly uri: string;
  readonly subscription: ClientSubscription;
  readonly #members = new Map<string, PresenceInfo>();
  /** the RLMI version last applied in the current dialog (§5.2: it grows by one per NOTIFY) */
  #version: number | null = null;
  #callId: string | null = null;
  #known = false;

  constructor(uri: string, subscription: ClientSubscription) {
    super();
    this.uri = uri;
    this.subscription = subscription;
    subscription.on('notify', (notify) => this.#onNotify(notify));
    subscription.on('terminated', (t) => this.emit('terminated', t));
  }

  /** Whether a NOTIFY with state has arrived: before, an empty snapshot() means "not known yet", not "no members". */
  get known(): boolean {
    return this.#known;
  }

  /** Every member's last known state, by address. A copy: it does not change later. */
  snapshot(): Map<string, PresenceInfo> {
    return new Map([...this.#members].map(([k, v]) => [k, { ...v }]));
  }

  /** Unsubscribes (RFC 6665 §4.1.2.3). Never rejects. */
  close(): Promise<void> {
    return this.subscription.close();
  }

  #onNotify(notify: SubscriptionNotify): void {
    if (notify.body.trim() === '') return; // pending, or a final NOTIFY without state
    const media = (notify.contentType.split(';')[0] ?? '').trim().toLowerCase();
    try {
      if (media === MULTIPART_RELATED) this.#applyList(notify);
      else if (media === PIDF_TYPE || media === '') this.#applyOne(parsePidf(notify.body, this.uri), this.uri);
      else throw new ClientError('INVALID_BODY', `presence NOTIFY has Content-Type ${notify.contentType}, not ${MULTIPART_RELATED} or ${PIDF_TYPE}`);
    } catch (error) {
      this.emit('error', error instanceof ClientError ? error : new ClientError('INVALID_BODY', 'presence NOTIFY body does not parse', { cause: error }));
      return;
    }
    this.#known = true;
  }

  #applyList(notify: SubscriptionNotify): void {
    const update = parseListNotify(notify.contentType, notify.body);
    // A resubscription is a new dialog whose versions start again (§5.2); within one dialog a
    // partial NOTIFY older than what we have is stale and skipped. Full state is always applied.
    const callId = notify.request.headers.get('call-id') ?? '';
    if (callId !== this.#callId) [this.#callId, this.#version] = [callId, null];
    if (!update.fullState && this.#version !== null && update.version <= this.#version) return;
    this.#version = update.version;
    const seen = new Set<string>();
    for (const resource of update.resources) {
      const address = addressOfUri(resource.uri);
      seen.add(address);
      if (resource.ended) {
        this.#remove(address);
        continue;
      }
      // a member without state yet (pending, no document) shows Offline until it has some
      this.#applyOne(resource.presence ?? { state: 'Offline', note: '' }, resource.uri, resource.displayName);
    }
    if (update.fullState) for (const address of [...this.#members.keys()]) if (!seen.has(address)) this.#remove(address);
  }

  #applyOne(presence: PresenceState, uri: string, displayName?: string): void {
    const address = addressOfUri(uri);
    const before = this.#members.get(address);
    const info: PresenceInfo = { address, state: presence.state };
    const name = displayName ?? before?.displayName;
    if (name !== undefined) info.displayName = name;
    if (presence.note !== '') info.note = presence.note;
    if (before !== undefined && before.state === info.state && before.note === info.note && before.displayName === info.displayName) return;
    this.#members.set(address, info);
    this.emit('change', { ...info });
  }

  #remove(address: string): void {
    if (!this.#members.delete(address)) return;
    this.emit('removed', { address });
  }
}

/** The SUBSCRIBE options of a presence watch: a list (RFC 4662 §4.1) or one presentity (RFC 3856 §6.7). */
export function presenceSubscribeOptions(target: string, list: boolean, options: Omit<SubscribeOptions, 'accept' | 'target'> = {}): SubscribeOptions {
  if (!list) return { ...options, target, accept: PIDF_TYPE };
  return { ...options, target, accept: LIST_ACCEPT, headers: { ...options.headers, supported: EVENTLIST } };
}

export interface PublisherDeps {
  /** the user agent's request(): digest challenges answered there */
  request: (method: string, uri: string, options: RequestOptions) => Promise<ResponseInfo>;
  /** the user's AOR, `sip:alice@parley.local`: Request-URI and PIDF entity (RFC 3903 §4, RFC 3863 §4.1.2) */
  aor: string;
  /** a refresh failed for good (the publication is gone) */
  error: (error: ClientError) => void;
}

/** The user's own presence publication (RFC 3903 §4): initial, modify, refresh, remove. */
export class PresencePublisher {
  readonly #deps: PublisherDeps;
  #etag: string | null = null;
  #document: PresenceState | null = null;
  /** a publication was live when the connection went */
  #lapsed = false;
  #requested = DEFAULT_PUBLISH_EXPIRES;
  readonly #refreshTimer = new RefreshTimer();
  readonly #queue = new SerialQueue();

  constructor(deps: PublisherDeps) {
    this.#deps = deps;
  }

  /** The state last published, while the publication lives (not known while the connection is gone). */
  get current(): PresenceState | null {
    return this.#etag === null || this.#lapsed ? null : this.#document;
  }

  /** Publishes (or replaces, §4.4 with SIP-If-Match) the state; rejects with PUBLISH_FAILED on a non-2xx. */
  publish(presence: PublishPresence, expires = DEFAULT_PUBLISH_EXPIRES): Promise<PublishResult> {
    if (!(PRESENCE_STATES as readonly string[]).includes(presence.state)) {
      return Promise.reject(new ClientError('INVALID_ARGUMENT', `presence state ${JSON.stringify(presence.state)} is not one of ${PRESENCE_STATES.join(', ')}`));
    }
    this.#requested = expires;
    this.#lapsed = false;
    const document: PresenceState = { state: presence.state, note: presence.note ?? '' };
    return this.#serial(() => this.#publish(document));
  }

  /** Removes the publication (§4.5: Expires 0 with SIP-If-Match). Never rejects; no-op when none. */
  remove(): Promise<void> {
    this.#cancelRefresh();
    this.#lapsed = false;
    return this.#serial(async () => {
      const etag = this.#etag;
      this.#etag = null;
      if (etag === null) return;
      try {
        await this.#exchange(0, etag, null);
      } catch {
        // it expires on the server by itself
      }
    }).catch(() => undefined);
  }

  /**
   * The connection is gone. The publication does not go with it: the server (every node of a
   * cluster) keeps it until it expires. So its entity-tag is kept, and restore() modifies that
   * publication (SIP-If-Match, §4.4) rather than making a second one that could outrank the user's
   * next state for up to an hour; a 412 (it expired meanwhile) publishes anew.
   */
  stop(): void {
    this.#cancelRefresh();
    this.#lapsed = this.#etag !== null;
  }

  /** After a reconnection: publishes again what was live when stop() came; null when nothing was. */
  restore(): Promise<PublishResult> | null {
    const document = this.#document;
    if (!this.#lapsed || document === null) return null;
    this.#lapsed = false;
    return this.#serial(() => this.#publish(document));
  }

  async #publish(document: PresenceState): Promise<PublishResult> {
    this.#cancelRefresh();
    let expires = this.#requested;
    for (let attempt = 0; ; attempt++) {
      const response = await this.#exchange(expires, this.#etag, document);
      if (response.status === 412 && this.#etag !== null) {
        // §4.4/§6 step 4: the entity-tag is unknown (expired, server restarted): publish anew.
        this.#etag = null;
        continue;
      }
      const longer = intervalTooBriefRetry(response, expires, attempt);
      if (longer !== undefined) {
        expires = longer;
        this.#requested = longer;
        continue;
      }
      if (response.status < 200 || response.status >= 300) throw publishFailure(response);
      return this.#accepted(response, expires, document);
    }
  }

  /** §4.3: a refresh carries SIP-If-Match and no body. */
  async #refresh(): Promise<void> {
    const etag = this.#etag;
    const document = this.#document;
    if (etag === null || document === null) return;
    const response = await this.#exchange(this.#requested, etag, null);
    if (response.status === 412) {
      this.#etag = null;
      await this.#publish(document);
      return;
    }
    if (response.status < 200 || response.status >= 300) throw publishFailure(response);
    this.#accepted(response, this.#requested, document);
  }

  #accepted(response: ResponseInfo, requested: number, document: PresenceState): PublishResult {
    // §6 step 8: the 2xx carries SIP-ETag and Expires.
    const etag = response.headers.get('sip-etag');
    if (etag === undefined) throw new ClientError('PUBLISH_FAILED', `PUBLISH answered ${response.status} without SIP-ETag (RFC 3903 §6)`, { status: response.status, reason: response.reason });
    const expires = expiresHeader(response.headers.get('expires')) ?? requested;
    this.#etag = etag;
    this.#document = document;
    this.#scheduleRefresh(expires);
    return { status: response.status, reason: response.reason, etag, expires };
  }

  #exchange(expires: number, etag: string | null, document: PresenceState | null): Promise<ResponseInfo> {
    const headers: Record<string, string> = { event: PRESENCE_EVENT, expires: String(expires) };
    if (etag !== null) headers['sip-if-match'] = etag;
    const options: RequestOptions = { headers };
    if (document !== null) {
      options.body = buildPidf(this.#deps.aor, document);
      options.contentType = PIDF_TYPE;
    }
    return this.#deps.request('PUBLISH', this.#deps.aor, options);
  }

  #scheduleRefresh(expires: number): void {
    this.#cancelRefresh();
    if (expires <= 0) return;
    this.#refreshTimer.schedule(expires, () => {
      this.#serial(() => this.#refresh()).catch((error: unknown) => {
        this.#etag = null;
        this.#deps.error(error instanceof ClientError ? error : new ClientError('PUBLISH_FAILED', 'PUBLISH refresh failed', { cause: error }));
      });
    });
  }

  #cancelRefresh(): void {
    this.#refreshTimer.cancel();
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    return this.#queue.run(operation);
  }
}

function publishFailure(response: ResponseInfo): ClientError {
  const auth = response.status === 401 || response.status === 407;
  const warning = warningTextOf(response);
  return new ClientError(auth ? 'AUTH_FAILED' : 'PUBLISH_FAILED', `PUBLISH failed: ${response.status} ${response.reason}${warning === '' ? '' : `: ${warning}`}`, {
    status: response.status,
    reason: response.reason,
  });
}
