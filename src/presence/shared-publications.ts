// Publications shared by the nodes of a cluster (issue 16): a user's devices publish (RFC 3903)
// through whichever node their connection reaches, and a watcher on any node gets the document
// from all of them. Presence defines here what it needs of the shared store (SharedPublications);
// the cluster implements it (src/cluster/presence.ts, Redis and the cluster bus).
//
// Entity-tags are global in the cluster: a refresh, a modification or a removal with SIP-If-Match
// finds its publication whichever node it reaches (a client that failed over keeps its
// publication). Two nodes racing on one entity-tag: one wins, the other answers 412 (§6 step 4),
// as RFC 3903 lets an ESC do with a tag it no longer knows, and its client publishes anew.
//
// Expiry: each publication carries its expiresAt, and every read filters by it; the shared store
// also forgets it some time later by itself. Nobody announces an expiry (the node that took the
// PUBLISH may be gone): each node that computed a document from a publication schedules a new
// computation for when that publication ends, so its watchers hear of the expiry from their own
// node. Nodes with no watchers of the AoR do nothing.

import { randomBytes } from 'node:crypto';
import type { CancelTimer, Timers } from '../events/index.ts';
import type { PresenceState } from './pidf.ts';
import { DEFAULT_PUBLISH_EXPIRY, planPublish } from './publications.ts';
import type { ExpirySettings, PublicationDetails, Publications, PublishOutcome, PublishRequest } from './publications.ts';
import { sharedLoads } from './shared-loads.ts';

/** One device's publication as every node sees it. */
export interface SharedPublication {
  etag: string;
  aor: string;
  presence: PresenceState;
  /** epoch milliseconds, of the node that took the PUBLISH */
  updatedAt: number;
  expiresAt: number;
}

/** What a node hears from the others. */
export interface SharedPublicationsListener {
  /** another node changed what watchers of `aor` may see */
  changed(aor: string): void;
  /** changes may have been missed (the link to the others was lost and is back): look at everything again */
  missed(): void;
}

/**
 * The publications of every node. `now` is the caller's clock; a publication whose expiresAt is
 * not after it is gone. The methods reject when the store cannot be reached.
 */
export interface SharedPublications {
  /** Stores a new publication; false when a live one of the AoR has its entity-tag (draw another). */
  add(publication: SharedPublication, now: number): Promise<boolean>;
  /** The live publication of `aor` named `etag`. */
  get(aor: string, etag: string, now: number): Promise<SharedPublication | undefined>;
  /**
   * At once, if the publication of `aor` named `etag` is still live: removes it and stores `next`
   * (a new entity-tag) in its place, or nothing when `next` is undefined. `gone`: another node
   * replaced or removed it, or it expired; `taken`: `next`'s entity-tag is in use (draw another).
   */
  replace(aor: string, etag: string, next: SharedPublication | undefined, now: number): Promise<'replaced' | 'gone' | 'taken'>;
  /** The live publications of `aor`, from every node. */
  of(aor: string, now: number): Promise<SharedPublication[]>;
  /** Tells the other nodes that what watchers of `aor` see may have changed. */
  announce(aor: string): Promise<void>;
  /** Starts hearing the other nodes' changes; resolves once in place, to the function that stops. */
  listen(listener: SharedPublicationsListener): Promise<() => Promise<void>>;
}

export interface SharedPublicationStoreOptions {
  shared: SharedPublications;
  settings?: ExpirySettings;
  timers: Timers;
  now: () => number;
  /** what watchers of `aor` on this node see may have changed (a change here or elsewhere, an expiry) */
  onChange: (aor: string) => void;
  /** what `shared.listen` reports as missed */
  onMissed: () => void;
  /** a failure with nobody to answer (announcing a change, listening) */
  onError: (err: unknown, doing: string) => void;
  newEtag?: () => string;
}

/** An entity-tag drawn again this many times at most when taken (72 random bits: never, in practice). */
const ETAG_DRAWS = 5;

/** The compositor over SharedPublications: RFC 3903 as PublicationStore does it, on the cluster's store. */
export class SharedPublicationStore implements Publications {
  readonly #opts: SharedPublicationStoreOptions;
  readonly #shared: SharedPublications;
  readonly #settings: ExpirySettings;
  /** AoR → the next computation due when one of its publications ends */
  readonly #expiries = new Map<string, { at: number; cancel: CancelTimer }>();
  /** the watchers of one AoR read at once (a NOTIFY fan-out) share one read */
  readonly #read: (aor: string) => Promise<SharedPublication[]>;
  /** the stop of the listening, once in place */
  readonly #listening: Promise<(() => Promise<void>) | undefined>;
  #closed = false;

  constructor(opts: SharedPublicationStoreOptions) {
    this.#opts = opts;
    this.#shared = opts.shared;
    this.#settings = opts.settings ?? DEFAULT_PUBLISH_EXPIRY;
    this.#read = sharedLoads((aor: string) => this.#shared.of(aor, this.#opts.now()));
    this.#listening = this.#shared.listen({ changed: (aor) => this.#opts.onChange(aor), missed: () => this.#opts.onMissed() }).then(
      (stop) => {
        if (this.#closed) void stop().catch((err: unknown) => opts.onError(err, 'no longer hearing the publications of other nodes'));
        return stop;
      },
      (err: unknown) => {
        opts.onError(err, 'listening to the publications of other nodes');
        return undefined;
      },
    );
  }

  /** Resolves once this node hears the other nodes' changes (or could not start to). */
  async listening(): Promise<void> {
    await this.#listening;
  }

  /** RFC 3903 §6, steps 4 to 8 (publications.ts), with the cluster's store; `unavailable` when it cannot be reached. */
  async publish(req: PublishRequest): Promise<PublishOutcome> {
    try {
      return await this.#publish(req);
    } catch (err) {
      this.#opts.onError(err, `storing a publication of ${req.aor}`);
      return { kind: 'unavailable', reason: `the presence state shared by the servers cannot be reached now (${(err as Error).message})` };
    }
  }

  async of(aor: string): Promise<PresenceState[]> {
    return (await this.#live(aor)).map((p) => p.presence);
  }

  async details(aor: string): Promise<PublicationDetails[]> {
    return (await this.#live(aor)).map((p) => ({ ...p.presence, updatedAt: p.updatedAt, expiresAt: p.expiresAt }));
  }

  /** Stops hearing the other nodes; the publications stay for their clients to refresh through another node. */
  close(): void {
    this.#closed = true;
    for (const e of this.#expiries.values()) e.cancel();
    this.#expiries.clear();
    void this.#listening.then((stop) => stop?.()).catch((err: unknown) => this.#opts.onError(err, 'no longer hearing the publications of other nodes'));
  }

  async #publish(req: PublishRequest): Promise<PublishOutcome> {
    const { aor } = req;
    const now = this.#opts.now();
    // Step 4, across the cluster: the entity-tag may have been given by another node.
    let existing: SharedPublication | undefined;
    if (req.ifMatch !== undefined) {
      existing = await this.#shared.get(aor, req.ifMatch.trim(), now);
      if (existing === undefined) return { kind: 'unknown-etag' };
    }
    const plan = planPublish(req, existing?.presence, this.#settings);
    if (plan.kind === 'refused') return plan.outcome;
    if (plan.kind === 'remove') {
      // another node got there first (a retransmission through another node, two devices' clients sharing a tag)
      if ((await this.#shared.replace(aor, existing!.etag, undefined, now)) === 'gone') return { kind: 'unknown-etag' };
      await this.#changed(aor);
      return { kind: 'removed' };
    }
    for (let draw = 0; draw < ETAG_DRAWS; draw++) {
      // Step 8: a new entity-tag for every successful refresh or modification (§4.1: the old one is gone).
      const next: SharedPublication = {
        etag: this.#opts.newEtag?.() ?? randomBytes(9).toString('base64url'),
        aor,
        presence: plan.presence,
        updatedAt: plan.change === 'refresh' && existing !== undefined ? existing.updatedAt : now,
        expiresAt: now + plan.expires * 1000,
      };
      const result = existing === undefined ? ((await this.#shared.add(next, now)) ? 'replaced' : 'taken') : await this.#shared.replace(aor, existing.etag, next, now);
      if (result === 'gone') return { kind: 'unknown-etag' };
      if (result === 'taken') continue;
      if (plan.changed) await this.#changed(aor);
      return { kind: 'published', etag: next.etag, expires: plan.expires, change: plan.change };
    }
    throw new Error(`no free entity-tag for ${aor} after ${ETAG_DRAWS} draws; is the entity-tag generator random?`);
  }

  /** This node's watchers now; the other nodes' once they hear. A lost announcement is logged: the others learn at the next change or expiry. */
  async #changed(aor: string): Promise<void> {
    this.#opts.onChange(aor);
    try {
      await this.#shared.announce(aor);
    } catch (err) {
      this.#opts.onError(err, `telling the other nodes that the presence of ${aor} changed`);
    }
  }

  /** The live publications, the most recently changed first; the end of the first to expire is watched for. */
  async #live(aor: string): Promise<SharedPublication[]> {
    const live = await this.#read(aor);
    const now = this.#opts.now();
    let ends: number | undefined;
    for (const p of live) if (p.expiresAt > now && (ends === undefined || p.expiresAt < ends)) ends = p.expiresAt;
    if (ends !== undefined) this.#expiryAt(aor, ends, now);
    return live.filter((p) => p.expiresAt > now).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  /** §4.2: the state is gone at expiry; this node's watchers hear it then (a later end is scheduled when the next read finds it). */
  #expiryAt(aor: string, at: number, now: number): void {
    if (this.#closed) return;
    const due = this.#expiries.get(aor);
    if (due !== undefined && due.at <= at) return;
    due?.cancel();
    const cancel = this.#opts.timers.set(Math.max(0, at - now), () => {
      this.#expiries.delete(aor);
      this.#opts.onChange(aor);
    });
    this.#expiries.set(aor, { at, cancel });
  }
}
