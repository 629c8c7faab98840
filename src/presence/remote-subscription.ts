// One back-end subscription of the list server (RFC 4662 §3: "the RLS … subscribes to each
// resource on the subscriber's behalf"): Parley, as subscriber (RFC 6665 §4.1), watching the
// presence of a partner's user (issue 15) for the owner of a contact list. From is the owner, so
// the partner applies its user's blocks and policy to the right person. Sockets are not here: the
// SUBSCRIBE goes through `send` (sendToPartner in production), NOTIFYs come in through notify().
//
//   idle ──start──▶ subscribing ──2xx──▶ active ──refresh at 80% of Expires──▶ (active)
//   subscribing ──481, 408, 5xx, unreachable──▶ waiting ──backoff──▶ subscribing (a new dialog)
//   subscribing ──403, 404, other refusals──▶ rejected ──REJECTED_RETRY_MS──▶ subscribing
//   active ──refresh answered 481/408/unreachable, NOTIFY terminated (deactivated, timeout…)──▶ waiting
//   active ──NOTIFY terminated;reason=rejected|noresource──▶ rejected
//   any ──end()──▶ ending (SUBSCRIBE Expires: 0 within the dialog) ──final NOTIFY, answer, or timer──▶ ended
//
// A dialog is matched by its Call-ID and our tag (remote.ts): a NOTIFY of another owner's
// subscription never reaches this one.

import type { Logger } from 'pino';
import type { CancelTimer, Timers } from '../events/index.ts';
import { requestTarget } from '../events/index.ts';
import type { PartnerOutcome } from '../router/partner.ts';
import { createRequest, Headers, parseNameAddr } from '../sip/index.ts';
import type { SipRequest, SipResponse } from '../sip/index.ts';
import { randomBase32 } from '../random-id.ts';
import { PRESENCE_EVENT } from './headers.ts';
import { parsePidf, PIDF_TYPE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';

export type RemoteState = 'idle' | 'subscribing' | 'active' | 'waiting' | 'rejected' | 'ending' | 'ended';

/** What the list shows of the member (RFC 4662 §5.2 instance state, and the PIDF when active). */
export interface RemoteView {
  instance: 'active' | 'pending' | 'terminated';
  /** with `terminated`: rejected, noresource */
  reason?: string;
  /** with `active`: the member's presence as the partner shows it to the owner */
  presence?: PresenceState;
}

/** RFC 3856 §6.4: an hour by default; the notifier may shorten it (its Expires counts). */
export const REMOTE_EXPIRES = 3600;
/** The first wait after a failure; doubles with each failure in a row up to BACKOFF_MAX_MS. */
export const BACKOFF_BASE_MS = 5_000;
export const BACKOFF_MAX_MS = 600_000;
/** RFC 6665 §4.1.3: after `rejected`/`noresource` the subscriber should not retry at once; Parley tries again after an hour. */
export const REJECTED_RETRY_MS = 3_600_000;
/** How long an unsubscribed dialog waits for its final NOTIFY (64·T1, Timer F). */
export const ENDING_WAIT_MS = 32_000;

export interface RemoteSubscriptionDeps {
  timers: Timers;
  logger: Logger;
  /** the User-Agent header */
  product: string;
  /** how this server names itself to partners (ctx.federation.sentBy): the Contact; undefined: no link */
  sentBy(): string | undefined;
  /** sends a request to partner `domain` and resolves with its final answer (sendToPartner) */
  send(request: SipRequest, domain: string): Promise<PartnerOutcome>;
  /** what view() returns changed: the owner's list subscriptions get a NOTIFY */
  onChange(): void;
  /** the subscription reached `ended`: forget it */
  onEnded(): void;
}

interface Dialog {
  callId: string;
  localTag: string;
  /** the notifier's tag: from the 2xx or from the first NOTIFY, whichever comes first */
  remoteTag: string | null;
  /** RFC 3261 §12.1.2: the 2xx's Record-Route, reversed */
  routeSet: string[];
  remoteTarget: string;
  cseq: number;
}

export class RemoteSubscription {
  readonly owner: string;
  readonly member: string;
  readonly domain: string;
  readonly #deps: RemoteSubscriptionDeps;
  #state: RemoteState = 'idle';
  #dialog: Dialog | null = null;
  #view: RemoteView = { instance: 'pending' };
  #failures = 0;
  #timer: CancelTimer = () => {};
  /** the dialog whose SUBSCRIBE is waiting for its answer, null when none */
  #inFlight: Dialog | null = null;

  constructor(owner: string, member: string, deps: RemoteSubscriptionDeps) {
    this.owner = owner;
    this.member = member;
    this.domain = member.slice(member.lastIndexOf('@') + 1);
    this.#deps = deps;
  }

  get state(): RemoteState {
    return this.#state;
  }

  get view(): RemoteView {
    return this.#view;
  }

  /** Whether an in-dialog request with this Call-ID and our tag (its To tag) belongs to this subscription. */
  matches(callId: string, localTag: string): boolean {
    return this.#dialog !== null && this.#dialog.callId === callId && this.#dialog.localTag === localTag;
  }

  start(): void {
    this.#require('start', 'idle');
    this.#subscribe();
  }

  /** Ends the subscription: an unsubscribe (Expires: 0) when a dialog exists, then `ended`. */
  end(): void {
    if (this.#state === 'ending' || this.#state === 'ended') return;
    this.#timer();
    const established = this.#dialog?.remoteTag != null && this.#state === 'active';
    const wasInFlight = this.#inFlight !== null;
    this.#state = 'ending';
    // a SUBSCRIBE still unanswered: its answer decides (an established dialog is then unsubscribed)
    if (wasInFlight) return;
    if (established) this.#unsubscribe();
    else this.#ended();
  }

  /**
   * A NOTIFY of this subscription's dialog (matches() was true), from the member's organisation.
   * Returns the status to answer. RFC 6665 §4.1.3: Subscription-State says active, pending or
   * terminated (with a reason that says whether to subscribe again).
   */
  notify(request: SipRequest): { status: number; warning?: string } {
    const dialog = this.#dialog;
    if (dialog === null || this.#state === 'ended') return { status: 481, warning: 'this subscription has ended' };
    const remoteTag = headerTag(request.headers.get('from'));
    if (dialog.remoteTag === null) dialog.remoteTag = remoteTag;
    else if (remoteTag !== dialog.remoteTag) return { status: 481, warning: 'no subscription here has this dialog' };
    const contact = request.headers.get('contact');
    if (contact !== undefined) {
      try {
        dialog.remoteTarget = parseNameAddr(contact).uri;
      } catch {
        // keep the target we had: a bad Contact does not end the dialog
      }
    }
    const { value, params } = subscriptionState(request.headers.get('subscription-state'));
    if (this.#state === 'ending') {
      if (value === 'terminated') this.#ended();
      return { status: 200 };
    }
    if (value === 'terminated') {
      const reason = params.get('reason') ?? '';
      this.#deps.logger.info({ owner: this.owner, member: this.member, reason }, 'the subscription of %s to %s ended at the partner (%s)', this.owner, this.member, reason || 'no reason');
      this.#timer();
      this.#dialog = null;
      if (reason === 'rejected' || reason === 'noresource' || reason === 'invariant') {
        this.#reject(reason === 'invariant' ? 'rejected' : reason);
      } else {
        // deactivated, timeout, probation, giveup: subscribe again (at once the first time: §4.1.3)
        const retryAfter = Number.parseInt(params.get('retry-after') ?? '', 10);
        this.#lost(Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined, true);
      }
      return { status: 200 };
    }
    if (this.#state === 'rejected' || this.#state === 'waiting') return { status: 481, warning: 'this subscription has ended' };
    let presence = this.#view.presence;
    const type = (request.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (type === PIDF_TYPE && request.body.length > 0) {
      try {
        presence = parsePidf(request.body, `sip:${this.member}`);
      } catch (err) {
        this.#deps.logger.info({ owner: this.owner, member: this.member, err }, 'NOTIFY from %s has a PIDF that does not parse: state kept', this.member);
      }
    }
    this.#show(value === 'active' && presence !== undefined ? { instance: 'active', presence } : { instance: 'pending' });
    return { status: 200 };
  }

  /** RFC 6665 §4.1.2.1 (new dialog) and §4.1.2.2 (refresh within it). */
  #subscribe(): void {
    this.#timer();
    if (this.#dialog === null) this.#dialog = { callId: `${randomBase32(15)}@parley`, localTag: randomBase32(10), remoteTag: null, routeSet: [], remoteTarget: `sip:${this.member}`, cseq: 0 };
    const request = this.#request(REMOTE_EXPIRES);
    if (request === undefined) {
      this.#lost(undefined, false);
      return;
    }
    if (this.#state !== 'active') this.#state = 'subscribing';
    const dialog = this.#dialog;
    this.#inFlight = dialog;
    this.#deps.send(request, this.domain).then(
      (outcome) => this.#answered(dialog, outcome),
      (err: unknown) => {
        this.#deps.logger.error({ err, owner: this.owner, member: this.member }, 'SUBSCRIBE of %s to %s failed', this.owner, this.member);
        this.#answered(dialog, { kind: 'unreachable', status: 503, warning: String(err) });
      },
    );
  }

  #answered(dialog: Dialog, outcome: PartnerOutcome): void {
    if (this.#inFlight === dialog) this.#inFlight = null;
    const ok = outcome.kind === 'answered' && outcome.response.status < 300;
    if (this.#state === 'ending') {
      // end() came while the SUBSCRIBE was out: an accepted one is undone at once
      if (ok && outcome.kind === 'answered') {
        this.#dialog = dialog;
        this.#established(dialog, outcome.response);
        this.#unsubscribe();
      } else {
        this.#ended();
      }
      return;
    }
    // ended, or superseded meanwhile (a NOTIFY ended the dialog and a new one is being made)
    if (this.#state === 'ended' || this.#dialog !== dialog) return;
    if (ok) {
      this.#established(dialog, outcome.response);
      const expires = Number.parseInt(outcome.response.headers.get('expires') ?? '', 10);
      const granted = Number.isFinite(expires) && expires > 0 ? Math.min(expires, REMOTE_EXPIRES) : REMOTE_EXPIRES;
      if (this.#state === 'active') this.#failures = 0; // a refresh went through: the dialog lives
      this.#state = 'active';
      this.#timer = this.#deps.timers.set(granted * 800, () => this.#subscribe());
      return;
    }
    const status = outcome.kind === 'answered' ? outcome.response.status : outcome.status;
    const warning = outcome.kind === 'answered' ? (outcome.response.headers.get('warning') ?? outcome.response.reason) : outcome.warning;
    this.#deps.logger.info({ owner: this.owner, member: this.member, status }, 'SUBSCRIBE of %s to %s answered %d: %s', this.owner, this.member, status, warning);
    this.#dialog = null;
    // the dialog is gone or was never made, or the partner could not be reached: try again later
    if (status === 481 || status === 408 || status === 480 || status >= 500 || status === 423) {
      const retryAfter = outcome.kind === 'answered' ? Number.parseInt(outcome.response.headers.get('retry-after') ?? '', 10) : Number.NaN;
      this.#lost(Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined, false);
      return;
    }
    this.#reject(status === 404 ? 'noresource' : 'rejected');
  }

  #established(dialog: Dialog, response: SipResponse): void {
    if (dialog.remoteTag === null) {
      dialog.remoteTag = headerTag(response.headers.get('to'));
      dialog.routeSet = response.headers.getAll('record-route').flatMap(splitValues).reverse();
      const contact = response.headers.get('contact');
      try {
        if (contact !== undefined) dialog.remoteTarget = parseNameAddr(contact).uri;
      } catch {
        // keep the member's address as the target
      }
    }
  }

  /** The dialog is gone or could not be made: pending, and a new subscription after the backoff. */
  #lost(retryAfterMs: number | undefined, atOnceFirst: boolean): void {
    this.#timer();
    this.#dialog = null;
    this.#failures += 1;
    this.#state = 'waiting';
    this.#show({ instance: 'pending' });
    const backoff = atOnceFirst && this.#failures === 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#failures - 1));
    this.#timer = this.#deps.timers.set(retryAfterMs ?? backoff, () => this.#subscribe());
  }

  #reject(reason: string): void {
    this.#timer();
    this.#dialog = null;
    this.#state = 'rejected';
    this.#show({ instance: 'terminated', reason });
    this.#timer = this.#deps.timers.set(REJECTED_RETRY_MS, () => this.#subscribe());
  }

  /** RFC 6665 §4.1.2.3: unsubscribing is a SUBSCRIBE with Expires: 0; its final NOTIFY ends the dialog. */
  #unsubscribe(): void {
    const request = this.#request(0);
    if (request === undefined) {
      this.#ended();
      return;
    }
    this.#timer = this.#deps.timers.set(ENDING_WAIT_MS, () => this.#ended());
    this.#deps.send(request, this.domain).then(
      (outcome) => {
        if (outcome.kind !== 'answered' || outcome.response.status >= 300) this.#ended();
      },
      () => this.#ended(),
    );
  }

  #ended(): void {
    if (this.#state === 'ended') return;
    this.#timer();
    this.#state = 'ended';
    this.#dialog = null;
    this.#deps.onEnded();
  }

  #show(view: RemoteView): void {
    const before = JSON.stringify(this.#view);
    this.#view = view;
    if (JSON.stringify(view) !== before) this.#deps.onChange();
  }

  /** The SUBSCRIBE of the dialog (RFC 3261 §12.2.1.1); undefined without a federation link. */
  #request(expires: number): SipRequest | undefined {
    const sentBy = this.#deps.sentBy();
    const d = this.#dialog;
    if (sentBy === undefined || d === null) return undefined;
    const headers = new Headers();
    const { uri, routes } = d.remoteTag === null ? { uri: `sip:${this.member}`, routes: [] } : requestTarget(d.remoteTarget, d.routeSet);
    headers.append('max-forwards', '70');
    for (const route of routes) headers.append('route', route);
    headers.append('from', `<sip:${this.owner}>;tag=${d.localTag}`);
    headers.append('to', `<sip:${this.member}>${d.remoteTag === null ? '' : `;tag=${d.remoteTag}`}`);
    headers.append('call-id', d.callId);
    d.cseq += 1;
    headers.append('cseq', `${d.cseq} SUBSCRIBE`);
    headers.append('contact', `<sip:${sentBy};transport=tls>`);
    headers.append('event', PRESENCE_EVENT);
    headers.append('accept', PIDF_TYPE);
    headers.append('expires', String(expires));
    headers.append('user-agent', this.#deps.product);
    return createRequest('SUBSCRIBE', uri, headers);
  }

  #require(action: string, ...states: RemoteState[]): void {
    if (!states.includes(this.#state)) throw new Error(`cannot ${action} a remote subscription in state ${this.#state}`);
  }
}

/** The tag parameter of a From/To value, '' when none or unparsable. */
export function headerTag(value: string | undefined): string {
  try {
    return parseNameAddr(value ?? '').params.get('tag') ?? '';
  } catch {
    return '';
  }
}

/** `active;expires=600` → { value: 'active', params }. */
function subscriptionState(value: string | undefined): { value: string; params: Map<string, string> } {
  const [first = '', ...rest] = (value ?? '').split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().toLowerCase());
    else params.set(p.trim().toLowerCase(), '');
  }
  return { value: first.trim().toLowerCase(), params };
}

/** The values of a header line that may hold several, split at commas outside <…> and quotes. */
function splitValues(line: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"' && line[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && c === '<') depth++;
    else if (!quoted && c === '>') depth--;
    else if (!quoted && depth === 0 && c === ',') {
      out.push(line.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(line.slice(start).trim());
  return out.filter((v) => v !== '');
}
