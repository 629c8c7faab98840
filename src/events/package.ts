// What an event package (RFC 6665 §7) brings to the framework: its name, the type of its
// documents, who may subscribe to what, and the document a subscriber gets now. The framework does
// the rest: SUBSCRIBE, dialogs, expiry, NOTIFY, refresh, unsubscribe and fetch.

import type { Incoming, SipContext } from '../router/context.ts';
import type { SipRequest } from '../sip/index.ts';
import type { EventDocument } from './notifier.ts';
import type { Subscription } from './subscriptions.ts';

export interface ExpirySettings {
  /** seconds; shorter requests get 423 Interval Too Brief with Min-Expires */
  min: number;
  /** seconds; longer requests are shortened to it */
  max: number;
  /** seconds, when the request has no Expires */
  default: number;
}

/**
 * RFC 6665 §4.2.1.1: the notifier may shorten a duration and refuse one that is too short (423).
 * One hour by default, as RFC 3856 §6.4 advises for presence.
 */
export const DEFAULT_SUBSCRIBE_EXPIRY: ExpirySettings = Object.freeze({ min: 60, max: 7200, default: 3600 });

/**
 * The package's decision on a new subscription: `'ok'`, or the refusal to answer (403, 404…), with
 * the header fields it needs (421 needs Require, RFC 3261 §21.4.16; 406 Accept).
 */
export type Authorization = 'ok' | { status: number; warning: string; headers?: ReadonlyArray<readonly [string, string]> };

/** The document each subscriber of one resource sees now (EventPackage.views). */
export type DocumentViews = (sub: Subscription) => EventDocument | Promise<EventDocument>;

/** What the framework offers the packages (and the rest of the server, as `ctx.events`). */
export interface EventNotifications {
  /**
   * The document of `resource` (`bob@parley.local` or `sip:bob@parley.local`) in `packageName`
   * may have changed: every active subscriber whose document did change gets a NOTIFY.
   */
  changed(packageName: string, resource: string): void;
  /** As changed(), for every resource of the package (a change that can touch anyone, such as settings). */
  changedAll(packageName: string): void;
  /** The active subscriptions of a resource in a package. */
  watching(packageName: string, resource: string): Subscription[];
}

export interface EventPackage {
  /** the Event header token, lower-case (RFC 6665 §8.2.1): `presence` */
  readonly name: string;
  /** Content-Type of the NOTIFY bodies */
  readonly contentType: string;
  /**
   * Offered across organisations (issue 15): partners' watchers may subscribe, and local users'
   * subscriptions to partners' users pass through. Default: local only (message-summary and
   * provisioning describe this organisation's own mailboxes and settings).
   */
  readonly federated?: boolean;
  /** subscription durations; default DEFAULT_SUBSCRIBE_EXPIRY */
  readonly expiry?: ExpirySettings;
  /**
   * Whether a subscriber with these Accept header values can read `contentType` (RFC 6665 §4.2.1:
   * 406 otherwise). Default: acceptsType(accept, contentType).
   */
  accepts?(accept: readonly string[]): boolean;
  /**
   * May `watcher` (authenticated, `alice@parley.local`; in a federated package also a partner's
   * user, `dave@partner.example`, whom the federation gate admitted) subscribe to `resource`, an
   * existing user of the organisation? RFC 6665 §4.2.1: "the notifier … MUST determine whether the
   * authenticated subscriber is authorized to subscribe"; the framework answers a refusal.
   */
  authorize(ctx: SipContext, watcher: string, resource: string, request: SipRequest): Authorization | Promise<Authorization>;
  /**
   * Whether `resource` (`bob@parley.local`, of this domain) exists in this package; 404 otherwise.
   * Default: it is a user of the organisation. A package may serve other resources, such as
   * resource lists (RFC 4662).
   */
  hasResource?(ctx: SipContext, resource: string): boolean | Promise<boolean>;
  /**
   * The document the subscriber sees now (RFC 6665 §4.2.2: "the current state"): a body of the
   * package's `contentType`, or a whole document (another type, more header fields).
   */
  body(sub: Subscription): string | EventDocument | Promise<string | EventDocument>;
  /**
   * The documents of one resource (`bob@parley.local`) for all its subscribers at once, when a
   * change reaches many of them (presence: one PUBLISH, thousands of watchers): what they share is
   * read and built once, and each subscriber gets one of the few distinct views, the same
   * EventDocument object for all who see the same. Undefined (or absent): body() per subscriber.
   */
  views?(resource: string): Promise<DocumentViews> | undefined;
  /**
   * A NOTIFY that no record-routed dialog takes (router/dialog-proxy.ts): the package's own, when
   * it subscribes to others itself (presence watching partners' users for contact lists, issue
   * 15). Returns true when it was the package's and it answered; false leaves it to the next.
   */
  takeNotify?(ctx: SipContext, incoming: Incoming): boolean | Promise<boolean>;
  /** Called once by EventService.start: the package may watch its sources and call `events.changed()`. */
  start?(ctx: SipContext, events: EventNotifications): void;
  close?(): void;
}
