// The subscriber side of SIP-specific event notification (RFC 6665 §4.1) for one subscription:
// SUBSCRIBE with Event, Expires and Accept; the dialog it creates (learnt from the 2xx or from a
// NOTIFY that overtakes it, §4.1.2.4); refresh before expiry; NOTIFYs answered 200 and emitted;
// the end of the subscription, with one resubscription after `deactivated` or `timeout` (§4.1.3);
// unsubscribe (Expires: 0, §4.1.2.3) on close(). The user agent lends its send function (digest
// challenges answered there) and routes the NOTIFYs of the dialog here.
//
// States: subscribing → active → closing → terminated; terminated is final, and any state may
// go back to subscribing once, for the resubscription.

import type { Headers, SipRequest, SipResponse } from '../sip/pure.ts';
import { learnFromNotify, learnFromResponse, newDialog } from './dialog.ts';
import type { Dialog } from './dialog.ts';
import { TypedEmitter } from './emitter.ts';
import { ClientError } from './errors.ts';
import { eventType, expiresHeader, parseSubscriptionState } from './event-headers.ts';
import type { SubscriptionState } from './event-headers.ts';
import { intervalTooBriefRetry, RefreshTimer, SerialQueue, unref } from './refresh.ts';
import { nameAddr } from './requests.ts';

export type { SubscriptionState } from './event-headers.ts';

export interface SubscribeOptions {
  /** requested duration in seconds (RFC 6665 §4.1.2.1); default 3600 */
  expires?: number;
  /** the Accept header: the body formats understood (§4.1.2.1) */
  accept?: string | readonly string[];
  /** the resource to watch; default the user's own AOR */
  target?: string;
  /** more header fields for every SUBSCRIBE of this subscription */
  headers?: Readonly<Record<string, string>>;
  /** how long to wait before the one resubscription after `deactivated` or `timeout`; default 1000 ms */
  retryDelayMs?: number;
}

export interface SubscribeResult {
  status: number;
  reason: string;
  /** seconds granted by the notifier (§4.1.2.1: the Expires of the 2xx) */
  expires: number;
  headers: Headers;
}

export interface SubscriptionNotify {
  subscriptionState: SubscriptionState;
  /** Content-Type as sent, '' when absent */
  contentType: string;
  /** the body decoded as UTF-8 ('' for a NOTIFY without body) */
  body: string;
  request: SipRequest;
}

export interface SubscriptionTermination {
  /**
   * The notifier's reason (§4.2.2: deactivated, probation, rejected, timeout, giveup, noresource,
   * invariant), or ours: `closed` after close(), `failed` when a SUBSCRIBE was refused or went
   * unanswered, `disconnected` when the connection closed. Undefined when the notifier gave none.
   */
  reason?: string;
  /** seconds the notifier asked us to wait before subscribing again */
  retryAfter?: number;
  /** true when the subscription will subscribe again (once) */
  retrying: boolean;
  error?: ClientError;
}

export interface SubscriptionEvents {
  /** after each 2xx to SUBSCRIBE: the first, every refresh, a resubscription */
  active: [SubscribeResult];
  notify: [SubscriptionNotify];
  terminated: [SubscriptionTermination];
}

export interface SubscribeSend {
  /** sends one SUBSCRIBE (out of dialog when `to` has no tag), answering one digest challenge */
  (request: { uri: string; to: string; callId: string; fromTag: string; cseq: () => number; headers: Record<string, string> }): Promise<SipResponse>;
}

export interface SubscriptionDeps {
  send: SubscribeSend;
  /** no NOTIFY can come for this subscription any more: the user agent forgets it */
  ended(subscription: ClientSubscription): void;
}

export type ClientSubscriptionState = 'subscribing' | 'active' | 'closing' | 'terminated';


const DEFAULT_EXPIRES = 3600;
/** §4.1.3: retry at once for these reasons; we wait retryDelayMs and retry once. */
const RETRY_REASONS: ReadonlySet<string> = new Set(['deactivated', 'timeout']);
/** A subscription that lived this long earns its one resubscription back. */
const RETRY_RESET_MS = 60_000;
/** After our unsubscribe, how long the final NOTIFY is still answered 200 rather than 481. */
const LINGER_MS = 32_000;

export class ClientSubscription extends TypedEmitter<SubscriptionEvents> {
  /** the event package, e.g. `message-summary` */
  readonly event: string;
  readonly target: string;
  /** settles with the answer to the first SUBSCRIBE (rejects with SUBSCRIBE_FAILED, AUTH_FAILED, TIMEOUT…) */
  readonly ready: Promise<SubscribeResult>;
  readonly #options: SubscribeOptions;
  readonly #deps: SubscriptionDeps;
  #state: ClientSubscriptionState = 'subscribing';
  #dialog: Dialog;
  #requested: number;
  #expiresAt = 0;
  #retryUsed = false;
  #finalSeen = false;
  #lastNotify: SubscriptionNotify | undefined;
  readonly #refreshTimer = new RefreshTimer();
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #lingerTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #queue = new SerialQueue();
  /** the connection is lost and the user agent will call resubscribe() once it is back */
  #suspended = false;

  /** Sends the SUBSCRIBE on a microtask, so listeners added right after construction see every event. */
  constructor(event: string, target: string, options: SubscribeOptions, deps: SubscriptionDeps) {
    super();
    if (!/^[A-Za-z0-9.!%*_+`'~-]+$/.test(event)) throw new ClientError('INVALID_ARGUMENT', `event package ${JSON.stringify(event)} is not a token`);
    this.event = event;
    this.target = target;
    this.#options = options;
    this.#deps = deps;
    this.#requested = options.expires ?? DEFAULT_EXPIRES;
    this.#dialog = this.#newDialog();
    const first = this.#serial(() => this.#subscribe());
    first.catch((error: unknown) => this.#lost(error, false));
    this.ready = first;
  }

  get state(): ClientSubscriptionState {
    return this.#state;
  }

  /** the last NOTIFY received, if any */
  get lastNotify(): SubscriptionNotify | undefined {
    return this.#lastNotify;
  }

  /** Whether an incoming NOTIFY belongs to this subscription's dialog (RFC 6665 §4.1.3: Call-ID and tags). */
  matches(callId: string, localTag: string | undefined, remoteTag: string | undefined): boolean {
    const d = this.#dialog;
    if (d.callId !== callId || d.localTag !== localTag) return false;
    return d.remoteTag === null || d.remoteTag === remoteTag;
  }

  /** A NOTIFY of this dialog: answered through `answer` first, then emitted. */
  handleNotify(request: SipRequest, answer: (status: number, reason?: string) => void): void {
    // §4.1.3: the Event header must match the subscription's; §8.2.3: Subscription-State is mandatory.
    if (eventType(request.headers.get('event')) !== this.event.toLowerCase()) {
      answer(489, 'Bad Event');
      return;
    }
    const subscriptionState = parseSubscriptionState(request.headers.get('subscription-state'));
    if (subscriptionState === null) {
      answer(400, 'Missing or Malformed Subscription-State');
      return;
    }
    answer(200);
    if (this.#state === 'closing' || this.#state === 'terminated') {
      // the final NOTIFY after our unsubscribe (§4.1.2.3): answered, nothing more
      if (subscriptionState.state === 'terminated') this.#finalNotify();
      return;
    }
    learnFromNotify(this.#dialog, request);
    const notify: SubscriptionNotify = {
      subscriptionState,
      contentType: request.headers.get('content-type') ?? '',
      body: request.body.toString('utf8'),
      request,
    };
    this.#lastNotify = notify;
    if (subscriptionState.state === 'terminated') {
      const retry = subscriptionState.reason !== undefined && RETRY_REASONS.has(subscriptionState.reason);
      const termination = this.#end({ reason: subscriptionState.reason, retryAfter: subscriptionState.retryAfter }, retry);
      this.emit('notify', notify);
      this.emit('terminated', termination);
      return;
    }
    // §4.1.3: the notifier may shorten the subscription in Subscription-State; refresh in time.
    const expires = subscriptionState.expires;
    if (expires !== undefined && this.#state === 'active' && Date.now() + expires * 1000 < this.#expiresAt) this.#scheduleRefresh(expires);
    this.emit('notify', notify);
  }

  /** Unsubscribes (§4.1.2.3: SUBSCRIBE with Expires: 0 in the dialog) and stops refreshing. Never rejects. */
  close(): Promise<void> {
    if (this.#suspended) {
      // no dialog to end: the notifier lost it with the connection
      this.#suspended = false;
      this.#state = 'terminated';
      this.#deps.ended(this);
      this.emit('terminated', { reason: 'closed', retrying: false });
      return Promise.resolve();
    }
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#state = 'terminated';
      this.#deps.ended(this);
      this.emit('terminated', { reason: 'closed', retrying: false });
      return Promise.resolve();
    }
    return this.#serial(async () => {
      if (this.#state !== 'active') return; // it failed or ended meanwhile
      this.#state = 'closing';
      this.#cancelRefresh();
      try {
        await this.#exchange(this.#dialog, 0);
      } catch {
        // the subscription ends here all the same; the notifier lets it expire
      }
      this.#state = 'terminated';
      if (this.#finalSeen) this.#deps.ended(this);
      else this.#lingerTimer = unref(setTimeout(() => this.#deps.ended(this), LINGER_MS));
      this.emit('terminated', { reason: 'closed', retrying: false });
    });
  }

  /** The connection is gone: ends without a word to the notifier. */
  stop(error: ClientError): void {
    this.#suspended = false;
    this.#cancelRefresh();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    this.#retryTimer = null;
    this.#lingerTimer = null;
    if (this.#state === 'terminated') return;
    this.#state = 'terminated';
    this.emit('terminated', { reason: 'disconnected', retrying: false, error });
  }

  /**
   * The connection is gone but the user agent reconnects: the dialog is lost with it, so this
   * subscription waits, `subscribing`, for resubscribe(). Emits `terminated` with reason
   * `disconnected` and retrying true. False when it was not live (closing or ended): then stop() it.
   */
  suspend(error: ClientError): boolean {
    if (this.#state !== 'active' && this.#state !== 'subscribing') return false;
    this.#cancelRefresh();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#suspended = true;
    this.#state = 'subscribing';
    // answers to the old dialog's SUBSCRIBEs, or NOTIFYs in it, no longer count
    this.#dialog = this.#newDialog();
    this.emit('terminated', { reason: 'disconnected', retrying: true, error });
    return true;
  }

  /** Subscribes again in a new dialog on the new connection (after suspend()); a refusal ends it as `failed`. */
  resubscribe(): Promise<void> {
    if (!this.#suspended) return Promise.resolve();
    this.#suspended = false;
    this.#retryUsed = false;
    return this.#serial(() => this.#subscribe()).then(
      () => undefined,
      (error: unknown) => this.#lost(error, false),
    );
  }

  async #subscribe(): Promise<SubscribeResult> {
    const dialog = this.#dialog;
    let expires = this.#requested;
    for (let attempt = 0; ; attempt++) {
      const response = await this.#exchange(dialog, expires);
      const longer = intervalTooBriefRetry(response, expires, attempt);
      if (longer !== undefined) {
        expires = longer;
        this.#requested = longer;
        continue;
      }
      if (response.status < 200 || response.status >= 300) {
        const auth = response.status === 401 || response.status === 407;
        throw new ClientError(auth ? 'AUTH_FAILED' : 'SUBSCRIBE_FAILED', `SUBSCRIBE ${this.event} failed: ${response.status} ${response.reason}`, { status: response.status, reason: response.reason });
      }
      learnFromResponse(dialog, response);
      // §4.1.2.1: "200-class responses to SUBSCRIBE requests … MUST contain an Expires header field"
      const granted = expiresHeader(response.headers.get('expires')) ?? expires;
      const result: SubscribeResult = { status: response.status, reason: response.reason, expires: granted, headers: response.headers };
      // a terminating NOTIFY may have overtaken this answer, or the connection gone meanwhile
      if (this.#dialog !== dialog || this.#state === 'terminated') return result;
      if (granted > 0) {
        dialog.establishedAt ??= Date.now();
        this.#state = 'active';
        this.#scheduleRefresh(granted);
      }
      this.emit('active', result);
      return result;
    }
  }

  #exchange(dialog: Dialog, expires: number): Promise<SipResponse> {
    const headers: Record<string, string> = { ...this.#options.headers, event: this.event, expires: String(expires) };
    const accept = this.#options.accept;
    if (accept !== undefined) headers.accept = typeof accept === 'string' ? accept : accept.join(', ');
    if (dialog.routeSet.length > 0) headers.route = dialog.routeSet.join(', ');
    const remote = dialog.remoteTag === null ? nameAddr(this.target) : dialog.remote;
    return this.#deps.send({ uri: dialog.remoteTarget, to: remote, callId: dialog.callId, fromTag: dialog.localTag, cseq: () => ++dialog.cseq, headers });
  }

  /** A SUBSCRIBE failed (the first, a refresh or the resubscription). */
  #lost(error: unknown, mayRetry: boolean): void {
    // a SUBSCRIBE lost with the connection: resubscribe() follows once it is back
    if (this.#state === 'terminated' || this.#state === 'closing' || this.#suspended) return;
    const failure = error instanceof ClientError ? error : new ClientError('SUBSCRIBE_FAILED', `SUBSCRIBE ${this.event} failed`, { cause: error });
    const connectionGone = failure.code === 'DISCONNECTED' || failure.code === 'NOT_CONNECTED';
    this.emit('terminated', this.#end({ reason: 'failed', error: failure }, mayRetry && !connectionGone));
  }

  /** Leaves the current dialog: terminated, or subscribing again later in a new dialog (one retry). */
  #end(termination: Omit<SubscriptionTermination, 'retrying'>, retryable: boolean): SubscriptionTermination {
    this.#cancelRefresh();
    const lived = this.#dialog.establishedAt === null ? 0 : Date.now() - this.#dialog.establishedAt;
    if (lived >= RETRY_RESET_MS) this.#retryUsed = false;
    const retrying = retryable && !this.#retryUsed;
    const clean: SubscriptionTermination = { retrying };
    if (termination.reason !== undefined) clean.reason = termination.reason;
    if (termination.retryAfter !== undefined) clean.retryAfter = termination.retryAfter;
    if (termination.error !== undefined) clean.error = termination.error;
    if (!retrying) {
      this.#state = 'terminated';
      this.#deps.ended(this);
      return clean;
    }
    this.#retryUsed = true;
    this.#state = 'subscribing';
    this.#dialog = this.#newDialog();
    const delay = Math.max(this.#options.retryDelayMs ?? 1000, (termination.retryAfter ?? 0) * 1000);
    this.#retryTimer = unref(setTimeout(() => {
      this.#retryTimer = null;
      this.#serial(() => this.#subscribe()).catch((error: unknown) => this.#lost(error, false));
    }, delay));
    return clean;
  }

  #finalNotify(): void {
    this.#finalSeen = true;
    if (this.#lingerTimer === null) return;
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
    this.#deps.ended(this);
  }

  #newDialog(): Dialog {
    return newDialog(this.target);
  }

  #scheduleRefresh(expires: number): void {
    this.#cancelRefresh();
    this.#expiresAt = Date.now() + expires * 1000;
    this.#refreshTimer.schedule(expires, () => {
      this.#serial(async () => (this.#state === 'active' ? this.#subscribe() : undefined)).catch((error: unknown) => this.#lost(error, true));
    });
  }

  #cancelRefresh(): void {
    this.#refreshTimer.cancel();
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    return this.#queue.run(operation);
  }
}
