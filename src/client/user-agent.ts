// The SIP user agent (RFC 3261 UAC and UAS for non-INVITE requests) over one connection: client
// transactions matched by Via branch and CSeq method, digest auth, registration, MESSAGE both
// ways, subscriptions (RFC 6665: message-summary, provisioning), CRLF keep-alives; and the EWS
// mailbox reader for missed conversations. The connection comes from a TransportConnector, and no
// client file but transport-node.ts imports a Node module (the digest hashes of src/sip/digest.ts
// use node:crypto and the message model uses Buffer: a browser build shims those two; the mailbox
// reader uses the platform's fetch, and src/xml's saxes is pure JavaScript).

import { parseUri, serialize } from '../sip/pure.ts';
import type { SipMessage, SipRequest, SipResponse } from '../sip/pure.ts';
import { DigestAuthenticator } from './auth.ts';
import { TypedEmitter } from './emitter.ts';
import { ClientError } from './errors.ts';
import { newCallId, newTag } from './ids.ts';
import { Inbound } from './inbound.ts';
import { defaultAnswer, missingHeader, toIncomingMessage } from './incoming.ts';
import { KeepAlive } from './keepalive.ts';
import { MailboxReader } from './mailbox.ts';
import type { ListOptions, MissedConversation } from './mailbox.ts';
import { MESSAGE_SUMMARY_EVENT, MESSAGE_SUMMARY_TYPE, parseMessageSummary } from './message-summary.ts';
import { parseProvisioning, PROVISIONING_EVENT, PROVISIONING_TYPE } from './provisioning.ts';
import type { ProvisioningSettings } from './provisioning.ts';
import { Registration } from './registration.ts';
import type { RegisterResult } from './registration.ts';
import type { RequestOptions, ResponseInfo, SendMessageOptions, SipClientEvents, SipClientOptions } from './types.ts';
import { buildRequest, buildResponse, contactUriFor, nameAddr, transactionKey } from './requests.ts';
import { dialogIdsOf } from './dialog.ts';
import { ClientSubscription } from './subscription.ts';
import type { SubscribeOptions } from './subscription.ts';
import { parseServerUrl } from './transport.ts';
import { PresenceList, PresencePublisher, presenceSubscribeOptions, PRESENCE_EVENT, REMOVE_WAIT_MS } from './presence.ts';
import type { PublishPresence, PublishResult } from './presence.ts';
import { deliverBodies } from './watch.ts';
import type { ClientTransport, ServerAddress, TransportConnector } from './transport.ts';

interface Pending {
  resolve: (response: SipResponse) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class SipUserAgent extends TypedEmitter<SipClientEvents> {
  readonly aor: string;
  readonly #options: SipClientOptions;
  readonly #server: ServerAddress;
  readonly #connector: TransportConnector;
  readonly #user: string;
  /** the address without scheme, `alice@parley.local`: the EWS user name */
  readonly #address: string;
  readonly #registrar: string;
  readonly #auth: DigestAuthenticator;
  readonly #pending = new Map<string, Pending>();
  readonly #registerTag = newTag();
  #transport: ClientTransport | null = null;
  #inbound: Inbound | null = null;
  #keepAlive: KeepAlive | null = null;
  #registration: Registration | null = null;
  readonly #subscriptions = new Set<ClientSubscription>();
  #provisioning: ProvisioningSettings | undefined;
  #publisher: PresencePublisher | null = null;

  constructor(options: SipClientOptions, connector: TransportConnector) {
    super();
    this.#options = options;
    this.#connector = connector;
    this.#server = parseServerUrl(options.server);
    let aor;
    try {
      aor = parseUri(options.aor);
    } catch (cause) {
      throw new ClientError('INVALID_ARGUMENT', `aor ${JSON.stringify(options.aor)} is not a SIP URI`, { cause });
    }
    if (aor.user === null) throw new ClientError('INVALID_ARGUMENT', `aor ${JSON.stringify(options.aor)} has no user part`);
    this.aor = options.aor;
    this.#user = aor.user;
    this.#address = `${aor.user}@${aor.host}`;
    this.#registrar = options.registrar ?? `${aor.scheme}:${aor.host.includes(':') ? `[${aor.host}]` : aor.host}${aor.port === null ? '' : `:${aor.port}`}`;
    this.#auth = new DigestAuthenticator({ username: options.username ?? aor.user, password: options.password }, options.preemptiveAuth ?? true);
  }

  get connected(): boolean {
    return this.#transport !== null;
  }

  get registered(): boolean {
    return this.#registration?.active ?? false;
  }

  async connect(): Promise<void> {
    if (this.#transport !== null) throw new ClientError('INVALID_ARGUMENT', 'already connected');
    const transport = await this.#connector(this.#server);
    this.#transport = transport;
    this.#inbound = new Inbound(transport.framing, {
      message: (message) => this.#dispatch(message),
      reply: (response) => this.#write(serialize(response)),
      pong: () => this.#keepAlive?.pong(),
      ping: () => this.#write('\r\n'),
      error: (error, fatal) => (fatal ? this.#fail(error) : this.emit('error', error)),
    });
    transport.onData = (data) => this.#inbound?.push(data);
    transport.onClose = (error) => this.#teardown(transport, error);
    const interval = this.#options.keepAliveIntervalMs ?? 30_000;
    if (transport.framing === 'stream' && interval > 0) {
      this.#keepAlive = new KeepAlive(interval, () => this.#write('\r\n\r\n'), () => this.#fail(new ClientError('DISCONNECTED', 'no keep-alive pong within 10 s (RFC 5626 §4.4.1)')));
    }
  }

  async register(options: { expires?: number } = {}): Promise<RegisterResult> {
    const transport = this.#requireTransport();
    if (this.#registration === null) {
      const contact = contactUriFor(this.#user, transport);
      this.#registration = new Registration(
        contact,
        (r) =>
          this.#send((cseq) => this.#build('REGISTER', this.#registrar, {
            to: nameAddr(this.aor), callId: r.callId, cseq, fromTag: this.#registerTag,
            headers: { contact: r.expires === 0 ? `<${r.contact}>;expires=0` : `<${r.contact}>`, expires: String(r.expires) },
          }), r.cseq),
        {
          registered: (result) => this.emit('registered', result),
          unregistered: (error) => this.emit('unregistered', error === undefined ? {} : { error }),
          error: (error) => this.emit('error', error),
        },
      );
    }
    return this.#registration.register(options.expires ?? 600);
  }

  /** Removes our binding (Expires: 0 for our contact, §10.2.2) and stops refreshing. */
  async unregister(): Promise<RegisterResult> {
    this.#requireTransport();
    if (this.#registration === null) throw new ClientError('INVALID_ARGUMENT', 'not registered');
    await this.#removePublication();
    return this.#registration.unregister();
  }

  /** RFC 3428 pager-mode MESSAGE; resolves with any final response, 2xx or not. */
  sendMessage(target: string, body: string | Buffer, options: SendMessageOptions = {}): Promise<ResponseInfo> {
    return this.request('MESSAGE', target, { body, contentType: options.contentType ?? 'text/plain;charset=utf-8', headers: options.headers ?? {} });
  }

  /** Any non-INVITE request outside a dialog (or inside one, given callId, to, fromTag, cseq). */
  async request(method: string, uri: string, options: RequestOptions = {}): Promise<ResponseInfo> {
    let cseq = (options.cseq ?? 1) - 1;
    const fromTag = options.fromTag ?? newTag();
    const callId = options.callId ?? newCallId();
    const response = await this.#send((n) => this.#build(method, uri, { ...options, fromTag, callId, cseq: n }), () => ++cseq);
    return { status: response.status, reason: response.reason, headers: response.headers, response };
  }

  /**
   * RFC 6665 subscriber: SUBSCRIBE to `event` at the user's own AOR (or options.target), refreshed
   * before expiry; its NOTIFYs are answered and emitted by the returned subscription. The SUBSCRIBE
   * leaves on a microtask: add listeners at once, then `await subscription.ready`.
   */
  subscribe(event: string, options: SubscribeOptions = {}): ClientSubscription {
    this.#requireTransport();
    const subscription = new ClientSubscription(event, options.target ?? this.aor, options, {
      send: (r) => this.#send((cseq) => this.#build('SUBSCRIBE', r.uri, { to: r.to, callId: r.callId, fromTag: r.fromTag, cseq, contact: true, headers: r.headers }), r.cseq),
      ended: (s) => this.#subscriptions.delete(s),
    });
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /** Watches the user's missed conversations (RFC 3842 message-summary): each NOTIFY emits `message-summary`. */
  watchMessageSummary(options: Omit<SubscribeOptions, 'accept'> = {}): Promise<ClientSubscription> {
    return this.#watch(MESSAGE_SUMMARY_EVENT, MESSAGE_SUMMARY_TYPE, options, parseMessageSummary, (summary) => this.emit('message-summary', summary));
  }

  /** Watches the user's settings (vnd-parley-provisioning): each NOTIFY emits `provisioning`. */
  watchProvisioning(options: Omit<SubscribeOptions, 'accept'> = {}): Promise<ClientSubscription> {
    return this.#watch(PROVISIONING_EVENT, PROVISIONING_TYPE, options, parseProvisioning, (settings) => {
      this.#provisioning = settings;
      this.emit('provisioning', settings);
    });
  }

  /** The settings of the last provisioning NOTIFY, if any. */
  get provisioning(): ProvisioningSettings | undefined {
    return this.#provisioning;
  }

  /**
   * The EWS reader of the user's mailbox, with the UA's address and password: at `ewsUrl`, else the
   * one of the last provisioning NOTIFY, else the `ewsUrl` option (NO_EWS_URL when none is known).
   */
  mailbox(ewsUrl?: string): MailboxReader {
    const url = ewsUrl ?? this.#provisioning?.ewsUrl ?? this.#options.ewsUrl;
    if (url === undefined) throw new ClientError('NO_EWS_URL', 'no EWS URL known: pass ewsUrl, set the ewsUrl option, or await watchProvisioning() first');
    return new MailboxReader({ ewsUrl: url, username: this.#address, password: this.#options.password, fetch: this.#options.fetch });
  }

  /** The missed conversations in the user's mailbox, newest first (see mailbox()). */
  missedConversations(options: ListOptions & { ewsUrl?: string } = {}): Promise<MissedConversation[]> {
    try {
      return this.mailbox(options.ewsUrl).listMissedConversations(options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Answers an incoming request (§8.2.6): a To tag is added when the request had none. */
  respond(request: SipRequest, status: number, reason?: string, headers: Readonly<Record<string, string>> = {}): void {
    this.#requireTransport();
    this.#write(serialize(buildResponse(request, status, reason, headers)));
  }

  /**
   * Closes the connection; pending requests reject with DISCONNECTED, subscriptions end with
   * `disconnected`. Call unregister() and each subscription's close() first to end them cleanly.
   */
  async close(): Promise<void> {
    if (this.#transport === null) return;
    await this.#removePublication();
    const transport = this.#transport;
    if (transport === null) return;
    transport.onClose = null;
    transport.close();
    this.#teardown(transport, undefined);
  }

  /**
   * Publishes the user's presence (RFC 3903 PUBLISH of a PIDF document): the first call creates the
   * publication, later ones replace it; it is refreshed before expiry and removed by unregister()
   * and close(). Rejects with ClientError PUBLISH_FAILED (status, reason, Warning text) on a non-2xx.
   */
  publishPresence(presence: PublishPresence, options: { expires?: number } = {}): Promise<PublishResult> {
    try {
      this.#requireTransport();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#publisher ??= new PresencePublisher({
      request: (method, uri, o) => this.request(method, uri, o),
      aor: this.aor,
      error: (error) => this.emit('error', error),
    });
    return this.#publisher.publish(presence, options.expires);
  }

  /**
   * Watches every member of a resource list, e.g. the user's contact list
   * `sip:alice+contacts@parley.local` (listResource()), with one RFC 4662 SUBSCRIBE. Resolves once
   * the SUBSCRIBE is accepted; read snapshot(), then listen to `change`.
   */
  async watchPresenceList(listUri: string, options: Omit<SubscribeOptions, 'accept' | 'target'> = {}): Promise<PresenceList> {
    return this.#watchPresence(sipUri(listUri), true, options);
  }

  /** Watches one presentity (`bob@parley.local` or `sip:bob@parley.local`), RFC 3856; same shape as a list. */
  async watchPresence(address: string, options: Omit<SubscribeOptions, 'accept' | 'target'> = {}): Promise<PresenceList> {
    return this.#watchPresence(sipUri(address), false, options);
  }

  async #watchPresence(target: string, list: boolean, options: Omit<SubscribeOptions, 'accept' | 'target'>): Promise<PresenceList> {
    const subscription = this.subscribe(PRESENCE_EVENT, presenceSubscribeOptions(target, list, options));
    const view = new PresenceList(target, subscription);
    await subscription.ready;
    return view;
  }

  /** Ends the publication, waiting at most REMOVE_WAIT_MS: a silent server must not hold up leaving. */
  async #removePublication(): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === null || publisher.current === null) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wait = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, REMOVE_WAIT_MS);
    });
    await Promise.race([publisher.remove(), wait]);
    clearTimeout(timer);
  }

  /** A subscription whose bodies are parsed into a typed UA event; a bad body is an `error` event, never a throw. */
  async #watch<T>(event: string, type: string, options: SubscribeOptions, parse: (body: string) => T, deliver: (value: T) => void): Promise<ClientSubscription> {
    const subscription = this.subscribe(event, { ...options, accept: type });
    deliverBodies(subscription, type, parse, deliver, (error) => this.emit('error', error));
    await subscription.ready;
    return subscription;
  }

  #build(method: string, uri: string, o: RequestOptions & { fromTag: string; callId: string; cseq: number }): SipRequest {
    const transport = this.#requireTransport();
    const body = typeof o.body === 'string' ? Buffer.from(o.body, 'utf8') : o.body;
    return buildRequest({
      method, uri, callId: o.callId, cseq: o.cseq, body, contentType: o.contentType, headers: o.headers, userAgent: this.#options.userAgent,
      from: nameAddr(this.aor, this.#options.displayName ?? null, { tag: o.fromTag }),
      to: o.to ?? nameAddr(uri),
      contact: o.contact === true ? `<${contactUriFor(this.#user, transport)}>` : undefined,
    }, transport);
  }

  /** One request, answering at most one round of 401/407 challenges (§22.2) with a new CSeq and branch. */
  async #send(build: (cseq: number) => SipRequest, nextCSeq: () => number): Promise<SipResponse> {
    const first = build(nextCSeq());
    this.#auth.authorize(first);
    const response = await this.#transact(first);
    if (response.status !== 401 && response.status !== 407) return response;
    const kinds = this.#auth.accept(first.method, response);
    if (kinds.length === 0) return response;
    const second = build(nextCSeq());
    this.#auth.authorize(second, kinds);
    return this.#transact(second);
  }

  #transact(request: SipRequest): Promise<SipResponse> {
    const key = transactionKey(request);
    if (key === null) return Promise.reject(new ClientError('INVALID_ARGUMENT', 'request lacks a branch or CSeq'));
    return new Promise((resolve, reject) => {
      const timeoutMs = this.#options.requestTimeoutMs ?? 32_000;
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new ClientError('TIMEOUT', `${request.method} ${request.uri}: no final response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(key, { resolve, reject, timer });
      try {
        this.#write(serialize(request));
      } catch (error) {
        clearTimeout(timer);
        this.#pending.delete(key);
        reject(error);
      }
    });
  }

  #dispatch(message: SipMessage): void {
    if (message.kind === 'response') {
      this.#onResponse(message);
      return;
    }
    this.#onRequest(message).catch((error: unknown) => this.emit('error', error instanceof Error ? error : new Error(String(error))));
  }

  #onResponse(response: SipResponse): void {
    // §8.1.3.3: a response with more than one Via was not meant for us.
    if (response.headers.count('via') !== 1) return;
    const key = transactionKey(response);
    const pending = key === null ? undefined : this.#pending.get(key);
    if (key === null || pending === undefined || response.status < 200) return;
    this.#pending.delete(key);
    clearTimeout(pending.timer);
    pending.resolve(response);
  }

  async #onRequest(request: SipRequest): Promise<void> {
    const missing = missingHeader(request);
    if (missing !== null) {
      if (request.headers.has('via') && request.method !== 'ACK') this.respond(request, 400, `Missing ${missing}`);
      return;
    }
    if (request.method === 'MESSAGE') {
      const incoming = toIncomingMessage(request);
      let status = 200;
      try {
        status = (await this.#options.onMessage?.(incoming)) ?? 200;
      } catch (error) {
        status = 500;
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
      if (this.#transport === null) return;
      this.respond(request, status);
      if (status >= 200 && status < 300) this.emit('message', incoming);
      return;
    }
    if (request.method === 'NOTIFY') {
      const { callId, localTag, remoteTag } = dialogIdsOf(request);
      const subscription = [...this.#subscriptions].find((s) => s.matches(callId, localTag, remoteTag));
      if (subscription !== undefined) {
        subscription.handleNotify(request, (status, reason) => this.respond(request, status, reason));
        return;
      }
      // RFC 6665 §4.1.3: a NOTIFY that matches no subscription gets 481 (unless the application handles it)
      if (this.listenerCount('request') === 0) {
        this.respond(request, 481);
        return;
      }
    }
    if (request.method !== 'ACK' && this.listenerCount('request') > 0) {
      this.emit('request', request);
      return;
    }
    const answer = defaultAnswer(request.method);
    if (answer !== null) this.respond(request, answer.status, undefined, answer.headers);
  }

  #write(data: Buffer | string): void {
    const transport = this.#transport;
    if (transport === null) throw new ClientError('DISCONNECTED', 'the connection is closed');
    transport.send(data);
  }

  #requireTransport(): ClientTransport {
    if (this.#transport === null) throw new ClientError('NOT_CONNECTED', 'not connected; call connect() first');
    return this.#transport;
  }

  /** The flow failed (fatal framing error, keep-alive pong missing): drop the connection. */
  #fail(error: Error): void {
    const transport = this.#transport;
    if (transport === null) return;
    transport.onClose = null;
    transport.close();
    this.#teardown(transport, error);
  }

  #teardown(transport: ClientTransport, error: Error | undefined): void {
    if (this.#transport !== transport) return;
    this.#transport = null;
    this.#inbound = null;
    this.#keepAlive?.stop();
    this.#keepAlive = null;
    this.#registration?.stop();
    this.#registration = null;
    this.#publisher?.stop();
    const gone = new ClientError('DISCONNECTED', 'the connection closed', { cause: error });
    for (const subscription of this.#subscriptions) subscription.stop(gone);
    this.#subscriptions.clear();
    for (const [key, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(key);
      pending.reject(new ClientError('DISCONNECTED', 'the connection closed before a final response', { cause: error }));
    }
    this.emit('disconnected', error === undefined ? {} : { error });
  }
}

/** `bob@parley.local` → `sip:bob@parley.local`; a URI with a scheme is kept as it is. */
function sipUri(address: string): string {
  return /^(sips?|pres):/i.test(address) ? address : `sip:${address}`;
}
