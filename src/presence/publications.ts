// The event state compositor for `presence` (RFC 3903): each PUBLISH creates, refreshes, modifies
// or removes one publication, named by its entity-tag. Several devices of one user publish at
// once, one publication each; aggregate() folds them into the presentity's state. Pure state:
// the clock and the timers are passed in.

import { randomBytes } from 'node:crypto';
import { availabilityRank, OFFLINE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';
import type { CancelTimer, ExpirySettings, Timers } from '../events/index.ts';

export type { ExpirySettings };

/** RFC 3903 §4: "the default expiration interval … SHOULD be 3600 seconds" for presence. */
export const DEFAULT_PUBLISH_EXPIRY: ExpirySettings = Object.freeze({ min: 60, max: 7200, default: 3600 });

export interface PublishRequest {
  /** the presentity, `bob@parley.local` */
  aor: string;
  /** SIP-If-Match, when present */
  ifMatch?: string;
  /** Expires in seconds, when present */
  expires?: number;
  /** the parsed body, when the request has one */
  document?: PresenceState;
}

export type PublishOutcome =
  | { kind: 'published'; etag: string; expires: number; change: 'initial' | 'refresh' | 'modify' }
  | { kind: 'removed' }
  /** 423 (RFC 3903 §6 step 5) */
  | { kind: 'too-brief'; minExpires: number }
  /** 412 Conditional Request Failed (§6 step 4) */
  | { kind: 'unknown-etag' }
  /** 400: an initial publication needs a body (§6 step 6), a removal needs SIP-If-Match */
  | { kind: 'invalid'; reason: string }
  /** 503: the store the nodes of a cluster share cannot be reached now (never in one process) */
  | { kind: 'unavailable'; reason: string };

/** One device's publication as an administrator sees it. */
export interface PublicationDetails extends PresenceState {
  /** epoch milliseconds */
  updatedAt: number;
  expiresAt: number;
}

/**
 * The compositor's publications as the presence service uses them: kept in this process
 * (PublicationStore, answering at once) or shared by the nodes of a cluster
 * (SharedPublicationStore, answering once the shared store has).
 */
export interface Publications {
  publish(req: PublishRequest): PublishOutcome | Promise<PublishOutcome>;
  /** the live publications of an AOR, the most recently changed first */
  of(aor: string): PresenceState[] | Promise<PresenceState[]>;
  /** the same with their times (for administrators) */
  details(aor: string): PublicationDetails[] | Promise<PublicationDetails[]>;
  close(): void;
}

/** The life of one publication: active until removed or expired; nothing happens after. */
type PublicationState = 'active' | 'gone';

interface Publication {
  state: PublicationState;
  etag: string;
  aor: string;
  presence: PresenceState;
  expiresAt: number;
  updatedAt: number;
  cancel: CancelTimer;
}

export interface PublicationStoreOptions {
  settings?: ExpirySettings;
  timers: Timers;
  now: () => number;
  /** told after every change of an AOR's publications (publish, modify, remove, expiry) */
  onChange: (aor: string) => void;
  newEtag?: () => string;
}

export class PublicationStore implements Publications {
  readonly #byEtag = new Map<string, Publication>();
  readonly #byAor = new Map<string, Set<Publication>>();
  readonly #opts: PublicationStoreOptions;
  readonly #settings: ExpirySettings;

  constructor(opts: PublicationStoreOptions) {
    this.#opts = opts;
    this.#settings = opts.settings ?? DEFAULT_PUBLISH_EXPIRY;
  }

  /** RFC 3903 §6, steps 4 to 8, for a request already authorised and with a valid body. */
  publish(req: PublishRequest): PublishOutcome {
    // Step 4: "If the request has a SIP-If-Match header field, the ESC checks whether the header
    // field contains a single entity-tag … If no match is found, the ESC MUST reject the
    // publication with a response of 412 (Conditional Request Failed)."
    let existing: Publication | undefined;
    if (req.ifMatch !== undefined) {
      existing = this.#byEtag.get(req.ifMatch.trim());
      if (existing === undefined || existing.aor !== req.aor || existing.state !== 'active') return { kind: 'unknown-etag' };
    }
    const plan = planPublish(req, existing?.presence, this.#settings);
    if (plan.kind === 'refused') return plan.outcome;
    if (plan.kind === 'remove') {
      this.#remove(existing!);
      return { kind: 'removed' };
    }
    // Step 8: a new entity-tag for every successful refresh or modification (§4.1: the old one is gone).
    if (existing !== undefined) this.#forget(existing);
    const publication = this.#store(req.aor, plan.presence, plan.expires, plan.change === 'refresh' ? existing?.updatedAt : undefined);
    if (plan.changed) this.#opts.onChange(req.aor);
    return { kind: 'published', etag: publication.etag, expires: plan.expires, change: plan.change };
  }

  /** The live publications of an AOR, the most recently changed first. */
  of(aor: string): PresenceState[] {
    const set = this.#byAor.get(aor);
    if (set === undefined) return [];
    return [...set].sort((a, b) => b.updatedAt - a.updatedAt).map((p) => p.presence);
  }

  /** The live publications of an AOR with their times, the most recently changed first (for administrators). */
  details(aor: string): PublicationDetails[] {
    const set = this.#byAor.get(aor);
    if (set === undefined) return [];
    return [...set].sort((a, b) => b.updatedAt - a.updatedAt).map((p) => ({ ...p.presence, updatedAt: p.updatedAt, expiresAt: p.expiresAt }));
  }

  get size(): number {
    return this.#byEtag.size;
  }

  close(): void {
    for (const p of this.#byEtag.values()) p.cancel();
    this.#byEtag.clear();
    this.#byAor.clear();
  }

  #store(aor: string, presence: PresenceState, expires: number, updatedAt?: number): Publication {
    const now = this.#opts.now();
    const publication: Publication = {
      state: 'active',
      etag: this.#newEtag(),
      aor,
      presence,
      expiresAt: now + expires * 1000,
      updatedAt: updatedAt ?? now,
      cancel: () => {},
    };
    // §4.2: "the ESC … MUST remove the event state once it expires".
    publication.cancel = this.#opts.timers.set(expires * 1000, () => this.#expire(publication));
    this.#byEtag.set(publication.etag, publication);
    let set = this.#byAor.get(aor);
    if (set === undefined) this.#byAor.set(aor, (set = new Set()));
    set.add(publication);
    return publication;
  }

  #newEtag(): string {
    for (;;) {
      const etag = this.#opts.newEtag?.() ?? randomBytes(9).toString('base64url');
      if (!this.#byEtag.has(etag)) return etag;
    }
  }

  #expire(publication: Publication): void {
    if (publication.state !== 'active') return;
    this.#remove(publication);
  }

  #remove(publication: Publication): void {
    this.#forget(publication);
    this.#opts.onChange(publication.aor);
  }

  /** active → gone: the only transition, and it happens once. */
  #forget(publication: Publication): void {
    if (publication.state !== 'active') throw new Error(`publication ${publication.etag} is already gone`);
    publication.state = 'gone';
    publication.cancel();
    this.#byEtag.delete(publication.etag);
    const set = this.#byAor.get(publication.aor);
    set?.delete(publication);
    if (set?.size === 0) this.#byAor.delete(publication.aor);
  }
}

/** What RFC 3903 §6 steps 5 to 8 make of a request, once step 4 found the publication SIP-If-Match names (or there is none). */
export type PublishPlan =
  | { kind: 'refused'; outcome: PublishOutcome }
  | { kind: 'remove' }
  /** store `presence` for `expires` seconds under a new entity-tag; a refresh keeps the old updatedAt; `changed`: what watchers see may have */
  | { kind: 'store'; presence: PresenceState; expires: number; change: 'initial' | 'refresh' | 'modify'; changed: boolean };

/**
 * Steps 5 to 8 of RFC 3903 §6, the same wherever the publications are kept (this process, or
 * shared by the nodes of a cluster: shared-publications.ts). `existing`: the document of the
 * publication SIP-If-Match named, found live.
 */
export function planPublish(req: PublishRequest, existing: PresenceState | undefined, settings: ExpirySettings): PublishPlan {
  // Step 5: the expiration value; 0 removes the publication (§4.5).
  const requested = req.expires ?? settings.default;
  if (requested === 0) {
    if (existing === undefined) return { kind: 'refused', outcome: { kind: 'invalid', reason: 'Expires: 0 removes a publication named by SIP-If-Match; there is none' } };
    return { kind: 'remove' };
  }
  if (requested < settings.min) return { kind: 'refused', outcome: { kind: 'too-brief', minExpires: settings.min } };
  const expires = Math.min(requested, settings.max);
  if (existing === undefined) {
    // Step 6: "If the request has no SIP-If-Match header field, … the request MUST contain a body".
    if (req.document === undefined) return { kind: 'refused', outcome: { kind: 'invalid', reason: 'an initial PUBLISH needs a PIDF body (RFC 3903 §6 step 6)' } };
    return { kind: 'store', presence: req.document, expires, change: 'initial', changed: true };
  }
  if (req.document === undefined) return { kind: 'store', presence: existing, expires, change: 'refresh', changed: false };
  const changed = req.document.state !== existing.state || req.document.note !== existing.note;
  return { kind: 'store', presence: req.document, expires, change: 'modify', changed };
}

/**
 * The presentity's state from its registration and its devices' publications:
 * - not registered → Offline, whatever was published (a stale publication says nothing);
 * - registered, nothing published → Available;
 * - otherwise the most available publication wins (Available > Busy > Do Not Disturb >
 *   Be Right Back > Away > Offline), with its note; among equals the most recently changed.
 */
export function aggregate(registered: boolean, publications: readonly PresenceState[]): PresenceState {
  if (!registered) return OFFLINE;
  let best: PresenceState | undefined;
  for (const p of publications) if (best === undefined || availabilityRank(p.state) < availabilityRank(best.state)) best = p;
  return best ?? { state: 'Available', note: '' };
}
