// Sends the NOTIFYs of subscriptions (RFC 6665 §4.2.2) of every package: in-dialog requests over
// the subscriber's flow, one at a time per dialog. Changes that arrive while a NOTIFY is
// unanswered are folded into one more NOTIFY with the then current document.

import type { Logger } from 'pino';
import type { FlowRef } from '../registrar/index.ts';
import { createRequest, Headers, newBranch, sentBy, viaTransport } from '../sip/index.ts';
import type { Flow, SipRequest, SipResponse, TransactionLayer } from '../sip/index.ts';
import type { Subscription, TerminationReason } from './subscriptions.ts';

/** A NOTIFY body and its Content-Type. */
export interface EventDocument {
  contentType: string;
  body: string;
  /** more header fields of the NOTIFY, e.g. `Require: eventlist` (RFC 4662 §5) */
  headers?: ReadonlyArray<readonly [string, string]>;
  /**
   * What "unchanged" compares (default: the body): a body that carries a counter of its own, such
   * as RFC 4662's version, gives here what it says without the counter.
   */
  key?: string;
}

export interface NotifierDeps {
  product: string;
  logger: Logger;
  transactions: Pick<TransactionLayer, 'sendRequest'>;
  resolveFlow(ref: FlowRef): Flow | undefined;
  now(): number;
  /** the document the subscriber may see now (from the subscription's package) */
  documentFor(sub: Subscription): Promise<EventDocument>;
  /** the subscription reached `terminated`: forget it */
  onEnded(sub: Subscription): void;
}

export class Notifier {
  readonly #deps: NotifierDeps;
  /** dialogs with a NOTIFY awaiting its final response */
  readonly #inFlight = new Set<string>();
  /** dialogs that changed again meanwhile: true when that NOTIFY must go even if nothing changed */
  readonly #again = new Map<string, boolean>();
  /** the last document each dialog was sent: a change that changes nothing sends nothing */
  readonly #lastBody = new Map<string, string>();

  constructor(deps: NotifierDeps) {
    this.#deps = deps;
  }

  /**
   * Sends the subscription's current document, one NOTIFY in flight per dialog: the next waits for
   * the final response to (or the timeout of) the previous one (RFC 6665 §4.2.2, paraphrased;
   * it also keeps the CSeq order the subscriber sees equal to the order of the changes).
   *
   * `onlyIfChanged`: a change of the resource that leaves the document as the subscriber last saw
   * it sends nothing. The first NOTIFY, a refresh's and the final one always go (RFC 6665
   * §4.2.1.2, §4.2.2).
   */
  notify(sub: Subscription, onlyIfChanged = false): void {
    if (sub.state === 'terminated') return;
    if (this.#inFlight.has(sub.id)) {
      this.#again.set(sub.id, (this.#again.get(sub.id) ?? false) || !onlyIfChanged);
      return;
    }
    this.#inFlight.add(sub.id);
    this.#send(sub, onlyIfChanged).catch((err: unknown) => {
      this.#deps.logger.error({ err, watcher: sub.watcher, event: sub.package, resource: sub.resource }, 'NOTIFY to %s failed', sub.watcher);
      this.#end(sub, 'deactivated');
    });
  }

  /**
   * The connection the subscription's NOTIFYs take is gone: it ends at once, without a final
   * NOTIFY, since none could reach the subscriber (a refresh over a new connection gets 481 and
   * subscribes anew, RFC 6665 §4.1.2.2).
   */
  abandon(sub: Subscription): void {
    this.#end(sub, 'deactivated');
  }

  get pending(): number {
    return this.#inFlight.size;
  }

  async #send(sub: Subscription, onlyIfChanged: boolean): Promise<void> {
    const document = await this.#deps.documentFor(sub);
    if (sub.state === 'terminated') {
      this.#settled(sub);
      return;
    }
    const key = document.key ?? document.body;
    if (onlyIfChanged && sub.state === 'active' && this.#lastBody.get(sub.id) === key) {
      this.#settled(sub);
      return;
    }
    this.#lastBody.set(sub.id, key);
    const flow = this.#deps.resolveFlow(sub.flow);
    if (flow === undefined || flow.closed) {
      this.#deps.logger.info({ watcher: sub.watcher, event: sub.package, resource: sub.resource }, 'subscription of %s ended: its connection is gone', sub.watcher);
      this.#end(sub, 'deactivated');
      return;
    }
    const terminal = sub.state === 'terminating';
    const request = buildNotify(sub, flow, document, this.#deps.now(), this.#deps.product);
    const log = this.#deps.logger.child({ callId: sub.dialog.callId, watcher: sub.watcher, event: sub.package, resource: sub.resource });
    log.debug({ subscriptionState: request.headers.get('subscription-state') }, 'NOTIFY %s', sub.watcher);
    this.#deps.transactions.sendRequest(request, flow, {
      onFinal: (response: SipResponse) => {
        // §4.2.2: "If the NOTIFY request fails due to an error response, and the subscription
        // was installed using a soft-state mechanism (such as SUBSCRIBE), the notifier MUST
        // remove the corresponding subscription." (481 included.)
        if (response.status >= 300) {
          log.info({ status: response.status }, 'NOTIFY answered %d: subscription ended', response.status);
          this.#end(sub, 'deactivated');
          return;
        }
        if (terminal) {
          this.#end(sub);
          return;
        }
        this.#settled(sub);
      },
      onTimeout: () => {
        // §4.2.2: "If the NOTIFY request fails due to a timeout condition, and the subscription
        // was installed using a soft-state mechanism (such as SUBSCRIBE), the notifier SHOULD
        // remove the subscription."
        log.info('NOTIFY timed out: subscription ended');
        this.#end(sub, 'timeout');
      },
      onTransportError: () => {
        log.info('NOTIFY could not be sent: subscription ended');
        this.#end(sub, 'deactivated');
      },
    });
  }

  /** The NOTIFY was answered: send the next one if the document changed meanwhile. */
  #settled(sub: Subscription): void {
    this.#inFlight.delete(sub.id);
    const again = this.#again.get(sub.id);
    if (again === undefined) return;
    this.#again.delete(sub.id);
    this.notify(sub, !again);
  }

  #end(sub: Subscription, reason?: TerminationReason): void {
    this.#inFlight.delete(sub.id);
    this.#again.delete(sub.id);
    this.#lastBody.delete(sub.id);
    if (sub.state !== 'terminated') sub.end(reason);
    this.#deps.onEnded(sub);
  }
}

/** An in-dialog NOTIFY (RFC 3261 §12.2.1.1; RFC 6665 §8.2.1 Event, §8.2.3 Subscription-State). */
export function buildNotify(sub: Subscription, flow: Flow, document: EventDocument, now: number, product: string): SipRequest {
  const d = sub.dialog;
  const headers = new Headers();
  const branch = newBranch();
  headers.append('via', `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy(flow)};branch=${branch}`);
  headers.append('max-forwards', '70');
  for (const route of d.routeSet) headers.append('route', route);
  headers.append('from', d.localHeader);
  headers.append('to', d.remoteHeader);
  headers.append('call-id', d.callId);
  headers.append('cseq', `${sub.nextCSeq()} NOTIFY`);
  headers.append('contact', notifierContact(flow));
  headers.append('event', sub.event);
  headers.append('subscription-state', sub.subscriptionState(now));
  headers.append('user-agent', product);
  for (const [name, value] of document.headers ?? []) headers.append(name, value);
  headers.append('content-type', document.contentType);
  return createRequest('NOTIFY', d.remoteTarget, headers, Buffer.from(document.body, 'utf8'));
}

/** Where the subscriber sends in-dialog requests (a refresh, an unsubscribe): Parley itself. */
export function notifierContact(flow: Pick<Flow, 'local' | 'protocol' | 'advertised'>): string {
  return `<sip:${sentBy(flow)};transport=${flow.protocol}>`;
}
