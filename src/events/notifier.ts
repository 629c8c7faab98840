// Sends the NOTIFYs of subscriptions (RFC 6665 §4.2.2) of every package: in-dialog requests over
// the subscriber's flow, one at a time per dialog. Changes that arrive while a NOTIFY is
// unanswered are folded into one more NOTIFY with the then current document.

import type { Logger } from 'pino';
import type { FlowRef } from '../registrar/index.ts';
import type { FederationGate } from '../router/context.ts';
import { newBranch, parseMessage, parseNameAddr, parseUri, sentBy, viaTransport } from '../sip/index.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse, TransactionLayer, TransportProtocol } from '../sip/index.ts';
import type { DocumentViews } from './package.ts';
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
  /** sendPrepared when the layer has it (the server's); tests' layers may take only messages */
  transactions: Pick<TransactionLayer, 'sendRequest'> & Partial<Pick<TransactionLayer, 'sendPrepared'>>;
  resolveFlow(ref: FlowRef): Flow | undefined;
  now(): number;
  /** the document the subscriber may see now (from the subscription's package) */
  documentFor(sub: Subscription): Promise<EventDocument>;
  /** the subscription reached `terminated`: forget it */
  onEnded(sub: Subscription): void;
  /** the federation link (ctx.federation): partners' subscriptions take it; absent: there are none */
  federation?: Pick<FederationGate, 'sentBy' | 'connect'> | undefined;
  /** a partner's subscription took a new connection of the link (its old one had closed) */
  onFlowMoved?(sub: Subscription, flow: FlowRef): void;
  /** NOTIFYs of a fan-out per turn of the event loop; default FANOUT_SLICE */
  fanoutSlice?: number;
}

/** How the notifier names itself in a NOTIFY's Via and Contact when not by its flow: towards partners. */
export interface NotifierSelf {
  /** host:port, ctx.federation.sentBy */
  sentBy: string;
  protocol: TransportProtocol;
}

/**
 * NOTIFYs of one fan-out started in one turn of the event loop (notifyAll). Each turn ends with the
 * reading of whatever came meanwhile, and in a fan-out that is mostly the 200s to the NOTIFYs just
 * sent (some 10 µs each to read and match): with turns of 1,000, the last of 10,000 watchers
 * waited for the 200s of the 9,000 before it, a third of the time to reach it (issue 20: last
 * NOTIFY 170-190 ms with 10,000 per turn against 210-240 ms with 1,000, on a machine where each
 * NOTIFY costs the server some 18 µs to send). The price: other traffic waits for up to one such
 * turn, some 200 ms for 10,000 watchers, when one presentity with that many changes state.
 */
export const FANOUT_SLICE = 10_000;

export class Notifier {
  readonly #deps: NotifierDeps;
  /**
   * What the notifier keeps of each subscription (in flight, changed again, last document,
   * template), gone with the subscription: one look-up per NOTIFY and one per answer, where a
   * map per item cost five and two (a fan-out makes 10,000 of each)
   */
  readonly #dialogs = new WeakMap<Subscription, DialogNotifies>();
  /** dialogs with a NOTIFY awaiting its final response */
  #inFlight = 0;
  /** NOTIFYs being prepared: their documents read, their flows found */
  #preparing = 0;
  /** the fan-out of each resource whose slices are still going out (notifyAll) */
  readonly #fanouts = new Map<string, object>();
  /** prepared() callers waiting for #preparing to reach 0 */
  #idle: Array<() => void> = [];
  /** what a NOTIFY's transaction reports, shared by all (one small object per NOTIFY, not four closures) */
  readonly #outcomes: NotifyOutcomes;

  constructor(deps: NotifierDeps) {
    this.#deps = deps;
    this.#outcomes = {
      answered: (dialog, terminal, response) => {
        const sub = dialog.sub;
        // §4.2.2: "If the NOTIFY request fails due to an error response, and the subscription
        // was installed using a soft-state mechanism (such as SUBSCRIBE), the notifier MUST
        // remove the corresponding subscription." (481 included.)
        if (response.status >= 300) {
          this.#deps.logger.info({ ...logFields(sub), status: response.status }, 'NOTIFY answered %d: subscription ended', response.status);
          this.#end(sub, 'deactivated');
          return;
        }
        if (terminal) {
          this.#end(sub);
          return;
        }
        this.#settled(dialog);
      },
      timedOut: ({ sub }) => {
        // §4.2.2: "If the NOTIFY request fails due to a timeout condition, and the subscription
        // was installed using a soft-state mechanism (such as SUBSCRIBE), the notifier SHOULD
        // remove the subscription."
        this.#deps.logger.info(logFields(sub), 'NOTIFY timed out: subscription ended');
        this.#end(sub, 'timeout');
      },
      unsendable: ({ sub }) => {
        this.#deps.logger.info(logFields(sub), 'NOTIFY could not be sent: subscription ended');
        this.#end(sub, 'deactivated');
      },
    };
  }

  /**
   * Sends the subscription's current document, one NOTIFY in flight per dialog: the next waits for
   * the final response to (or the timeout of) the previous one (RFC 6665 §4.2.2, paraphrased;
   * it also keeps the CSeq order the subscriber sees equal to the order of the changes).
   *
   * `onlyIfChanged`: a change of the resource that leaves the document as the subscriber last saw
   * it sends nothing. The first NOTIFY, a refresh's and the final one always go (RFC 6665
   * §4.2.1.2, §4.2.2). `views`: the documents of the resource for all its subscribers, built once
   * for a fan-out (EventPackage.views); without, the package's body() for this one. A NOTIFY held
   * back behind one in flight reads the document again when it goes.
   */
  notify(sub: Subscription, onlyIfChanged = false, views?: DocumentViews | Promise<DocumentViews>): void {
    if (sub.state === 'terminated') return;
    let dialog = this.#dialogs.get(sub);
    if (dialog === undefined) this.#dialogs.set(sub, (dialog = new DialogNotifies(sub)));
    if (dialog.inFlight) {
      dialog.again = (dialog.again ?? false) || !onlyIfChanged;
      return;
    }
    dialog.inFlight = true;
    this.#inFlight++;
    if (typeof views === 'function') {
      // a fan-out's views are at hand: a document given at once goes out at once, without an
      // async function and its awaits per NOTIFY (10,000 of them)
      let document: EventDocument | Promise<EventDocument>;
      try {
        document = views(sub);
        if (!(document instanceof Promise)) {
          this.#deliver(dialog, onlyIfChanged, document)?.catch((err: unknown) => this.#failed(sub, err));
          return;
        }
      } catch (err) {
        this.#failed(sub, err);
        return;
      }
      this.#preparing++;
      void this.#send(dialog, onlyIfChanged, document);
      return;
    }
    this.#preparing++;
    void this.#send(dialog, onlyIfChanged, views === undefined ? undefined : views.then((view) => view(sub)));
  }

  /**
   * A change of one resource (`key`) reaches its subscribers in slices of FANOUT_SLICE NOTIFYs, one
   * slice per turn of the event loop: a fan-out to 10,000 watchers does not hold up everything
   * else (REGISTERs, MESSAGEs, the 200s to these NOTIFYs) for as long as it takes, and a slice is
   * big enough that the last watchers do not wait for much else. A newer change of the same
   * resource takes over: its fan-out covers every subscriber with the newer views, so the slices
   * of the older one left are dropped.
   */
  notifyAll(key: string, subs: readonly Subscription[], views?: Promise<DocumentViews>): void {
    const fanout = {};
    this.#fanouts.set(key, fanout);
    if (views === undefined) {
      this.#slices(key, fanout, subs, undefined);
      return;
    }
    // the views are awaited once for the whole fan-out, not once per NOTIFY; their failure reaches
    // each NOTIFY, which logs it and ends its subscription (as documentFor's would)
    this.#preparing++;
    views.then(
      (view) => {
        if (this.#fanouts.get(key) === fanout) this.#slices(key, fanout, subs, view);
      },
      () => {
        if (this.#fanouts.get(key) === fanout) this.#slices(key, fanout, subs, views);
      },
    ).finally(() => this.#donePreparing());
  }

  /** The NOTIFYs of one fan-out, FANOUT_SLICE of them per turn of the event loop (notifyAll). */
  #slices(key: string, fanout: object, subs: readonly Subscription[], views: DocumentViews | Promise<DocumentViews> | undefined): void {
    let next = 0;
    const slice = (): void => {
      const end = Math.min(subs.length, next + (this.#deps.fanoutSlice ?? FANOUT_SLICE));
      for (; next < end; next++) this.notify(subs[next] as Subscription, true, views);
      if (next >= subs.length) {
        if (this.#fanouts.get(key) === fanout) this.#fanouts.delete(key);
        return;
      }
      // counted as being prepared, so that prepared() waits for the slices still to come
      this.#preparing++;
      setImmediate(() => {
        if (this.#fanouts.get(key) === fanout) slice();
        this.#donePreparing();
      });
    };
    slice();
  }

  /** The service stops: the slices of fan-outs still to go are dropped. */
  close(): void {
    this.#fanouts.clear();
  }

  /** Resolves when no NOTIFY is being prepared: each one due is sent, or found unchanged (tests). */
  async prepared(): Promise<void> {
    while (this.#preparing > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
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
    return this.#inFlight;
  }

  /** Prepares and sends one NOTIFY; never rejects (a failure ends the subscription). */
  async #send(dialog: DialogNotifies, onlyIfChanged: boolean, document: Promise<EventDocument> | undefined): Promise<void> {
    try {
      await this.#deliver(dialog, onlyIfChanged, await (document ?? this.#deps.documentFor(dialog.sub)));
    } catch (err) {
      this.#failed(dialog.sub, err);
    } finally {
      this.#donePreparing();
    }
  }

  /** A NOTIFY could not be prepared or sent: logged, and its subscription ends. */
  #failed(sub: Subscription, err: unknown): void {
    this.#deps.logger.error({ err, watcher: sub.watcher, event: sub.package, resource: sub.resource }, 'NOTIFY to %s failed', sub.watcher);
    this.#end(sub, 'deactivated');
  }

  #donePreparing(): void {
    if (--this.#preparing > 0 || this.#idle.length === 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const wake of idle) wake();
  }

  /**
   * Sends the document unless the subscription ended or already has it. Synchronous (undefined)
   * over the subscriber's own flow; a promise only when a partner's connection must be opened.
   * Throws when the NOTIFY cannot be made.
   */
  #deliver(dialog: DialogNotifies, onlyIfChanged: boolean, document: EventDocument): Promise<void> | undefined {
    const sub = dialog.sub;
    if (sub.state === 'terminated') {
      this.#settled(dialog);
      return undefined;
    }
    const key = document.key ?? document.body;
    if (onlyIfChanged && sub.state === 'active' && dialog.lastKey === key) {
      this.#settled(dialog);
      return undefined;
    }
    dialog.lastKey = key;
    // a local subscriber's flow is at hand; only a partner's may need a connection opened (an await)
    const local = this.#deps.resolveFlow(sub.flow);
    if (local !== undefined && !local.closed) {
      this.#sendOn(dialog, local, document);
      return undefined;
    }
    return this.#flowOf(sub).then((flow) => {
      if (flow === undefined) {
        this.#end(sub, 'deactivated');
        return;
      }
      // connecting took a while: the subscription may have ended meanwhile (flowClosed, a sweep)
      if (sub.state === 'terminated') {
        this.#settled(dialog);
        return;
      }
      this.#sendOn(dialog, flow, document);
    });
  }

  /** Fills the subscription's template and sends the NOTIFY in a client transaction. */
  #sendOn(dialog: DialogNotifies, flow: Flow, document: EventDocument): void {
    const sub = dialog.sub;
    const terminal = sub.state === 'terminating';
    const gate = this.#deps.federation;
    const self: NotifierSelf | undefined = sub.partner === undefined || gate === undefined ? undefined : { sentBy: gate.sentBy, protocol: 'tls' };
    const branch = newBranch();
    const subscriptionState = sub.subscriptionState(this.#deps.now());
    const text = fillNotify(this.#templateOf(dialog, flow, self), branch, sub.nextCSeq(), subscriptionState, document);
    if (this.#deps.logger.isLevelEnabled('debug')) this.#deps.logger.debug({ ...logFields(sub), subscriptionState }, 'NOTIFY %s', sub.watcher);
    const user = new NotifyTransactionUser(this.#outcomes, dialog, terminal);
    const transactions = this.#deps.transactions;
    if (transactions.sendPrepared !== undefined) transactions.sendPrepared(notifyKey(branch), text, flow, user);
    else transactions.sendRequest(parseMessage(Buffer.from(text, 'utf8')) as SipRequest, flow, user);
  }

  /** The subscription's NOTIFY template, made again when its target, flow or name towards a partner changed. */
  #templateOf(dialog: DialogNotifies, flow: Flow, self: NotifierSelf | undefined): NotifyTemplate {
    const sub = dialog.sub;
    const kept = dialog.template;
    if (kept !== undefined && kept.remoteTarget === sub.dialog.remoteTarget && kept.flowId === flow.id && kept.selfSentBy === self?.sentBy) return kept;
    return (dialog.template = notifyTemplate(sub, flow, this.#deps.product, self));
  }

  /**
   * The connection the subscription's NOTIFY takes. A local subscriber's is the one it subscribed
   * (or refreshed) on: when that closed, nothing can reach it (undefined). A partner's subscription
   * goes over the federation link, whose connections are pooled and closed when idle: a new one is
   * opened to the watcher's organisation (ctx.federation.connect), undefined when it cannot be.
   */
  async #flowOf(sub: Subscription): Promise<Flow | undefined> {
    const log = { watcher: sub.watcher, event: sub.package, resource: sub.resource };
    const flow = this.#deps.resolveFlow(sub.flow);
    if (flow !== undefined && !flow.closed) return flow;
    const gate = this.#deps.federation;
    if (sub.partner === undefined || gate === undefined) {
      this.#deps.logger.info(log, 'subscription of %s ended: its connection is gone', sub.watcher);
      return undefined;
    }
    const connection = await gate.connect(sub.partner);
    if (!connection.ok) {
      this.#deps.logger.info({ ...log, status: connection.status }, 'subscription of %s ended: %s cannot be reached: %s', sub.watcher, sub.partner, connection.warning);
      return undefined;
    }
    const { id, protocol, local, remote } = connection.flow;
    this.#deps.onFlowMoved?.(sub, { id, protocol, local, remote });
    return connection.flow;
  }

  /** The NOTIFY was answered: send the next one if the document changed meanwhile. */
  #settled(dialog: DialogNotifies): void {
    if (dialog.inFlight) this.#inFlight--;
    dialog.inFlight = false;
    const again = dialog.again;
    if (again === undefined) return;
    dialog.again = undefined;
    this.notify(dialog.sub, !again);
  }

  #end(sub: Subscription, reason?: TerminationReason): void {
    const dialog = this.#dialogs.get(sub);
    if (dialog !== undefined) {
      // a transaction still out may report later: it finds nothing in flight, nothing to send again
      if (dialog.inFlight) this.#inFlight--;
      dialog.inFlight = false;
      dialog.again = undefined;
      this.#dialogs.delete(sub);
    }
    if (sub.state !== 'terminated') sub.end(reason);
    this.#deps.onEnded(sub);
  }
}

/** What the notifier keeps of one subscription (Notifier.#dialogs). */
class DialogNotifies {
  readonly sub: Subscription;
  /** a NOTIFY awaits its final response */
  inFlight = false;
  /** it changed again meanwhile: true when that NOTIFY must go even if nothing changed */
  again: boolean | undefined = undefined;
  /** what the last document sent compares by: a change that changes nothing sends nothing */
  lastKey: string | undefined = undefined;
  template: NotifyTemplate | undefined = undefined;

  constructor(sub: Subscription) {
    this.sub = sub;
  }
}

/** What the transaction of a NOTIFY tells the notifier (Notifier's constructor makes the one object). */
interface NotifyOutcomes {
  answered(dialog: DialogNotifies, terminal: boolean, response: SipResponse): void;
  timedOut(dialog: DialogNotifies): void;
  unsendable(dialog: DialogNotifies): void;
}

/** The transaction user of one NOTIFY: which subscription, and whether it was the final NOTIFY. */
class NotifyTransactionUser implements ClientTransactionUser {
  readonly #outcomes: NotifyOutcomes;
  readonly #dialog: DialogNotifies;
  readonly #terminal: boolean;

  constructor(outcomes: NotifyOutcomes, dialog: DialogNotifies, terminal: boolean) {
    this.#outcomes = outcomes;
    this.#dialog = dialog;
    this.#terminal = terminal;
  }

  onFinal(response: SipResponse): void {
    this.#outcomes.answered(this.#dialog, this.#terminal, response);
  }

  onTimeout(): void {
    this.#outcomes.timedOut(this.#dialog);
  }

  onTransportError(): void {
    this.#outcomes.unsendable(this.#dialog);
  }
}

/** What the log says of a subscription's NOTIFY: made only when a line is written. */
function logFields(sub: Subscription): Record<string, string> {
  return { callId: sub.dialog.callId, watcher: sub.watcher, event: sub.package, resource: sub.resource };
}

/**
 * What a subscription's NOTIFYs share from one to the next: the dialog's (RFC 3261 §12.2.1.1) and
 * the notifier's header fields, serialised once. Each NOTIFY fills in only its Via branch, CSeq,
 * Subscription-State and document (fillNotify). Remade when what it was made from changes: a
 * refresh may bring a new remote target or flow, a partner's subscription a new connection.
 */
export interface NotifyTemplate {
  readonly remoteTarget: string;
  readonly flowId: string;
  readonly selfSentBy: string | undefined;
  /** `NOTIFY <uri> SIP/2.0` and the Via up to its branch */
  readonly start: string;
  /** the end of the Via line, then Max-Forwards, Route, From, To, Call-ID */
  readonly dialog: string;
  /** after CSeq: Contact, Event */
  readonly contact: string;
  /** after Subscription-State: User-Agent */
  readonly userAgent: string;
}

/** What the serializer refuses in a header value (src/sip/serializer.ts), and in a Request-URI. */
const UNSAFE_VALUE = /[\r\n\0]/;
const WIRE_URI = /^[\x21-\x7e]+$/;

/**
 * An in-dialog NOTIFY's template (RFC 3261 §12.2.1.1; RFC 6665 §8.2.1 Event): Request-URI the
 * subscriber's Contact, Route the dialog's route set (the SUBSCRIBE's Record-Route: a partner's
 * watcher is behind its organisation's proxy). `self`: how the notifier names itself in Via and
 * Contact when not by `flow` (towards a partner: its federation name, TLS). Throws on a value
 * that cannot go on the wire, as the serializer does.
 */
export function notifyTemplate(sub: Subscription, flow: Flow, product: string, self?: NotifierSelf): NotifyTemplate {
  const d = sub.dialog;
  const via = self === undefined ? `${viaTransport(flow.protocol)} ${sentBy(flow)}` : `${viaTransport(self.protocol)} ${self.sentBy}`;
  const { uri, routes } = requestTarget(d.remoteTarget, d.routeSet);
  if (!WIRE_URI.test(uri)) throw new Error(`NOTIFY Request-URI ${JSON.stringify(uri.slice(0, 80))} cannot be sent`);
  const contact = self === undefined ? notifierContact(flow) : `<sip:${self.sentBy};transport=${self.protocol}>`;
  const values = [via, d.localHeader, d.remoteHeader, d.callId, contact, sub.event, product, ...routes];
  const unsafe = values.find((value) => UNSAFE_VALUE.test(value));
  if (unsafe !== undefined) throw new Error(`NOTIFY header value ${JSON.stringify(unsafe.slice(0, 80))} has CR, LF or NUL`);
  // the order of buildNotify's messages before templates, kept to the byte
  return {
    remoteTarget: d.remoteTarget,
    flowId: flow.id,
    selfSentBy: self?.sentBy,
    start: `NOTIFY ${uri} SIP/2.0\r\nVia: SIP/2.0/${via};branch=`,
    dialog: `\r\nMax-Forwards: 70\r\n${routes.map((route) => `Route: ${route}\r\n`).join('')}From: ${d.localHeader}\r\nTo: ${d.remoteHeader}\r\nCall-ID: ${d.callId}\r\n`,
    contact: `Contact: ${contact}\r\nEvent: ${sub.event}\r\n`,
    userAgent: `User-Agent: ${product}\r\n`,
  };
}

/**
 * One NOTIFY's text, to be sent as UTF-8 (RFC 6665 §8.2.3 Subscription-State): the template with
 * this NOTIFY's own fields and document. Text, not bytes: a TCP or TLS socket encodes it as it
 * writes it (Flow.sendText), with no Buffer made per NOTIFY.
 */
export function fillNotify(template: NotifyTemplate, branch: string, cseq: number, subscriptionState: string, document: EventDocument): string {
  let head = template.start + branch + template.dialog + 'CSeq: ' + String(cseq) + ' NOTIFY\r\n' + template.contact + 'Subscription-State: ' + subscriptionState + '\r\n' + template.userAgent;
  for (const [name, value] of document.headers ?? []) {
    if (UNSAFE_VALUE.test(name) || UNSAFE_VALUE.test(value)) throw new Error(`NOTIFY header ${JSON.stringify(name.slice(0, 40))} has CR, LF or NUL`);
    head += name + ': ' + value + '\r\n';
  }
  head += 'Content-Type: ' + document.contentType + '\r\nContent-Length: ' + String(bodyLength(document)) + '\r\n\r\n';
  return head + document.body;
}

/** The client transaction key of a NOTIFY with this branch: what clientTransactionKey gives for it (§17.1.3). */
export function notifyKey(branch: string): string {
  return `${branch}|NOTIFY`;
}

/**
 * An in-dialog NOTIFY as a message (tests, and transaction layers that take only messages): the
 * text fillNotify makes, parsed. Takes the next CSeq of the subscription.
 */
export function buildNotify(sub: Subscription, flow: Flow, document: EventDocument, now: number, product: string, self?: NotifierSelf): SipRequest {
  const text = fillNotify(notifyTemplate(sub, flow, product, self), newBranch(), sub.nextCSeq(), sub.subscriptionState(now), document);
  return parseMessage(Buffer.from(text, 'utf8')) as SipRequest;
}

/** The length in bytes of each document, counted once however many NOTIFYs carry it (a fan-out's views are shared objects). */
const lengths = new WeakMap<EventDocument, number>();

function bodyLength(document: EventDocument): number {
  let length = lengths.get(document);
  if (length === undefined) {
    length = Buffer.byteLength(document.body, 'utf8');
    lengths.set(document, length);
  }
  return length;
}

/**
 * RFC 3261 §12.2.1.1: with an empty route set or a loose router first (`lr`), the Request-URI is
 * the remote target and the Route the route set; a strict router first gets its URI as the
 * Request-URI (without what §19.1.1 forbids there), and the remote target goes last in the Route.
 */
export function requestTarget(remoteTarget: string, routeSet: readonly string[]): { uri: string; routes: readonly string[] } {
  const first = routeSet[0];
  if (first === undefined) return { uri: remoteTarget, routes: routeSet };
  let uri;
  try {
    uri = parseUri(parseNameAddr(first).uri);
  } catch {
    return { uri: remoteTarget, routes: routeSet };
  }
  if (uri.params.has('lr')) return { uri: remoteTarget, routes: routeSet };
  // the table of §19.1.1: `method` and URI headers are not allowed in a Request-URI
  const strict = parseNameAddr(first).uri.replace(/\?.*$/, '').replace(/;method=[^;]*/gi, '');
  return { uri: strict, routes: [...routeSet.slice(1), `<${remoteTarget}>`] };
}

/** Where the subscriber sends in-dialog requests (a refresh, an unsubscribe): Parley itself. */
export function notifierContact(flow: Pick<Flow, 'local' | 'protocol' | 'advertised'>): string {
  return `<sip:${sentBy(flow)};transport=${flow.protocol}>`;
}
