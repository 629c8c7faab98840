// The SIP user agent (RFC 3261 UAC and UAS for non-INVITE requests) over one connection: client
// transactions matched by Via branch and CSeq method, digest auth, registration, MESSAGE both
// ways, subscriptions (RFC 6665: message-summary, provisioning), CRLF keep-alives; and the EWS
// mailbox reader for missed conversations. The connection comes from a TransportConnector, and no
// client file but transport-node.ts imports a Node module (the digest hashes of src/sip/digest.ts
// use node:crypto and the message model uses Buffer: a browser build shims those two; the mailbox
// reader uses the platform's fetch, and src/xml's saxes is pure JavaScript).
// Instant messaging on top: CPIM-wrapped messages asking for RFC 5438 display notifications, the
// notifications both ways, RFC 3994 typing indications both ways; and, with autoReconnect, a
// lost connection comes back with back-off, registration and subscriptions restored, at the next
// of the configured servers (servers.ts): keep-alives find a silent dead server within seconds.

import { parseUri, serialize } from '../sip/pure.ts';
import type { SipMessage, SipRequest, SipResponse } from '../sip/pure.ts';
import { DigestAuthenticator } from './auth.ts';
import { TypedEmitter } from './emitter.ts';
import { ClientError } from './errors.ts';
import { newCallId, newTag, randomToken } from './ids.ts';
import { CPIM_TYPE, cpimWithDisplayRequest, displayNotification } from './imdn.ts';
import { ComposingTracker, IS_COMPOSING_TYPE, isComposingBody } from './is-composing.ts';
import { Inbound } from './inbound.ts';
import { defaultAnswer, missingHeader, readIncoming, senderAddress } from './incoming.ts';
import { DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_PONG_TIMEOUT_MS, KeepAlive } from './keepalive.ts';
import { MailboxReader } from './mailbox.ts';
import type { ListOptions, MissedConversation } from './mailbox.ts';
import { MESSAGE_SUMMARY_EVENT, MESSAGE_SUMMARY_TYPE, parseMessageSummary } from './message-summary.ts';
import { parseProvisioning, PROVISIONING_EVENT, PROVISIONING_TYPE } from './provisioning.ts';
import type { ProvisioningSettings } from './provisioning.ts';
import { Reconnector } from './reconnect.ts';
import { Registration } from './registration.ts';
import type { RegisterResult } from './registration.ts';
import type { ConnectionEvent, RequestOptions, ResponseInfo, SendMessageOptions, SipClientEvents, SipClientOptions } from './types.ts';
import { buildRequest, buildResponse, contactUriFor, nameAddr, transactionKey } from './requests.ts';
import { dialogIdsOf } from './dialog.ts';
import { ClientSubscription } from './subscription.ts';
import type { SubscribeOptions } from './subscription.ts';
import { ServerRotation } from './servers.ts';
import { parseServerList } from './transport.ts';
import { warningText } from './warning.ts';
import { PresenceList, PresencePublisher, presenceSubscribeOptions, PRESENCE_EVENT, REMOVE_WAIT_MS } from './presence.ts';
import type { PublishPresence, PublishResult } from './presence.ts';
import { deliverBodies } from './watch.ts';
import type { ClientTransport, ServerAddress, ServerResolver, TransportConnector } from './transport.ts';

interface Pending {
  resolve: (response: SipResponse) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class SipUserAgent extends TypedEmitter<SipClientEvents> {
  readonly aor: string;
  readonly #options: SipClientOptions;
  readonly #servers: ServerRotation;
  readonly #connector: TransportConnector;
  readonly #user: string;
  /** the address without scheme, `alice@parley.local`: the EWS user name */
  readonly #address: string;
  readonly #registrar: string;
  readonly #auth: DigestAuthenticator;
  readonly #pending = new Map<string, Pending>();
  readonly #registerTag = newTag();
  #transport: ClientTransport | null = null;
  /** the server #transport is connected to */
  #server: ServerAddress | null = null;
  #inbound: Inbound | null = null;
  #keepAlive: KeepAlive | null = null;
  #registration: Registration | null = null;
  readonly #subscriptions = new Set<ClientSubscription>();
  #provisioning: ProvisioningSettings | undefined;
  #publisher: PresencePublisher | null = null;
  /** the expiry of the last register() while no unregister() followed: what a reconnection registers again */
  #registerExpires: number | null = null;
  /** set while a lost connection is being restored (autoReconnect) */
  #reconnector: Reconnector | null = null;
  /** a connection was open once and close() was not called: requests now fail DISCONNECTED, not NOT_CONNECTED */
  #lost = false;
  /** false after unregister(): a connection lost then is not restored */
  #reconnectAllowed = true;
  readonly #typing = new ComposingTracker((from, active) => this.emit('typing', { from, active }));

  /** `resolve`: what a configured server's host name stands for (Node: its DNS records); none in browsers */
  constructor(options: SipClientOptions, connector: TransportConnector, resolve: ServerResolver | null = null) {
    super();
    this.#options = options;
    this.#connector = connector;
    this.#servers = new ServerRotation(parseServerList(options.server), resolve);
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

  /**
   * Connects to the first server that accepts, trying each configured one once, in order (from the
   * one after the last that failed); rejects with the failures when none does.
   */
  async connect(): Promise<void> {
    if (this.#transport !== null) throw new ClientError('INVALID_ARGUMENT', 'already connected');
    if (this.#reconnector !== null) throw new ClientError('INVALID_ARGUMENT', 'reconnecting already (autoReconnect); wait for the connection event or close() first');
    const failures: Error[] = [];
    for (;;) {
      try {
        await this.#open();
        break;
      } catch (error) {
        failures.push(error instanceof Error ? error : new Error(String(error)));
        if (failures.length < this.#servers.size) continue;
        if (failures.length === 1) throw failures[0];
        throw new ClientError('CONNECT_FAILED', `cannot connect to any of the ${failures.length} servers: ${failures.map((e) => e.message).join('; ')}`, { cause: failures.at(-1) });
      }
    }
    this.#lost = false;
    this.#emitConnection({ state: 'connected' });
  }

  /** The server connected to now, as configured (its URL), or null. */
  get server(): string | null {
    return this.#server?.url ?? null;
  }

  /** Connects to the server whose turn it is; a failure passes the turn to the next one. */
  async #open(): Promise<void> {
    const server = await this.#servers.take();
    let transport: ClientTransport;
    try {
      transport = await this.#connector(server);
    } catch (error) {
      this.#servers.advance();
      throw error;
    }
    this.#transport = transport;
    this.#server = server;
    this.#inbound = new Inbound(transport.framing, {
      message: (message) => this.#dispatch(message),
      reply: (response) => this.#write(serialize(response)),
      pong: () => this.#keepAlive?.pong(),
      ping: () => this.#write('\r\n'),
      error: (error, fatal) => (fatal ? this.#fail(error) : this.emit('error', error)),
    });
    transport.onData = (data) => this.#inbound?.push(data);
    transport.onClose = (error) => this.#teardown(transport, error, false);
    this.#keepAlive = this.#startKeepAlive(server);
  }

  /**
   * RFC 5626 §4.4.1 keep-alives (keepalive.ts): CRLFCRLF where the server pongs, else an OPTIONS to
   * the registrar (answered without credentials); on WebSocket too, whose browser API has no ping.
   */
  #startKeepAlive(server: ServerAddress): KeepAlive | null {
    const intervalMs = this.#options.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
    if (intervalMs <= 0) return null;
    const pongTimeoutMs = this.#options.keepAlivePongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS;
    return new KeepAlive({
      intervalMs,
      pongTimeoutMs,
      sendCrlf: () => this.#write('\r\n\r\n'),
      sendOptions: () => this.#transact(this.#build('OPTIONS', this.#registrar, { fromTag: newTag(), callId: newCallId(), cseq: 1 })),
      failed: () => this.#fail(new ClientError('DISCONNECTED', `no answer from ${serverName(server)} to a keep-alive within ${pongTimeoutMs} ms (RFC 5626 §4.4.1)`)),
    });
  }

  async register(options: { expires?: number } = {}): Promise<RegisterResult> {
    const transport = this.#requireTransport();
    const expires = options.expires ?? 600;
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
          unregistered: (error) => {
            this.emit('unregistered', error === undefined ? {} : { error });
            // a refresh nobody answered: the flow failed (RFC 5626 §4.4), whatever the keep-alives
            // know yet; with autoReconnect the next server is tried, and registered with
            if (error?.code === 'TIMEOUT' && this.#reconnects && this.#transport === transport) this.#fail(error);
          },
          error: (error) => this.emit('error', error),
        },
      );
    }
    const result = await this.#registration.register(expires);
    this.#registerExpires = expires;
    this.#reconnectAllowed = true;
    return result;
  }

  /** Removes our binding (Expires: 0 for our contact, §10.2.2) and stops refreshing. */
  async unregister(): Promise<RegisterResult> {
    // signing out: a connection lost from now on is not restored
    this.#registerExpires = null;
    if (this.#reconnector !== null) {
      this.#stopReconnecting(this.#transport === null);
      throw new ClientError('DISCONNECTED', 'not connected: reconnection stopped; the registrar drops the binding when it expires');
    }
    this.#reconnectAllowed = false;
    this.#requireTransport();
    if (this.#registration === null) throw new ClientError('INVALID_ARGUMENT', 'not registered');
    await this.#removePublication();
    return this.#registration.unregister();
  }

  /**
   * RFC 3428 pager-mode MESSAGE; resolves with any final response, 2xx or not (202: stored for the
   * recipient's mailbox; the Warning text in `warning`). With requestDisplayNotification the text
   * goes in message/cpim asking for an RFC 5438 display notification, and the answer carries its
   * imdnMessageId. Rejects with DISCONNECTED while the connection is lost: never dropped silently.
   */
  async sendMessage(target: string, body: string | Buffer, options: SendMessageOptions = {}): Promise<ResponseInfo> {
    const contentType = options.contentType ?? 'text/plain;charset=utf-8';
    const headers = options.headers ?? {};
    if (options.requestDisplayNotification !== true) return this.request('MESSAGE', target, { body, contentType, headers });
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const imdnMessageId = randomToken(20);
    const cpim = cpimWithDisplayRequest(this.#cpimParties(target), text, contentType, imdnMessageId, new Date());
    const info = await this.request('MESSAGE', target, { body: cpim, contentType: CPIM_TYPE, headers });
    return { ...info, imdnMessageId };
  }

  /** RFC 3994: tells `target` the user is composing (active, refreshed within 60 s by calling again) or stopped (idle). */
  sendTyping(target: string, active: boolean): Promise<ResponseInfo> {
    return this.request('MESSAGE', target, { body: isComposingBody(active), contentType: IS_COMPOSING_TYPE });
  }

  /** RFC 5438 §7.2.1.1: tells `target` (the sender) that their message `imdnMessageId` was displayed. */
  sendDisplayed(target: string, imdnMessageId: string): Promise<ResponseInfo> {
    if (imdnMessageId.trim() === '' || /[\r\n]/.test(imdnMessageId)) return Promise.reject(new ClientError('INVALID_ARGUMENT', 'imdnMessageId must be the non-empty imdn.Message-ID of a received message'));
    return this.request('MESSAGE', target, { body: displayNotification(this.#cpimParties(target), imdnMessageId, randomToken(20), new Date()), contentType: CPIM_TYPE });
  }

  /** CPIM From and To (RFC 3862 §3.1, §3.2): our AOR, which the server checks, and the target. */
  #cpimParties(target: string): { from: string; to: string } {
    return { from: this.aor, to: target };
  }

  /** Any non-INVITE request outside a dialog (or inside one, given callId, to, fromTag, cseq). */
  async request(method: string, uri: string, options: RequestOptions = {}): Promise<ResponseInfo> {
    let cseq = (options.cseq ?? 1) - 1;
    const fromTag = options.fromTag ?? newTag();
    const callId = options.callId ?? newCallId();
    const response = await this.#send((n) => this.#build(method, uri, { ...options, fromTag, callId, cseq: n }), () => ++cseq);
    const warning = warningText(response.headers.getAll('warning'));
    return { status: response.status, reason: response.reason, ...(warning === undefined ? {} : { warning }), headers: response.headers, response };
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
    this.#lost = false;
    // (with a connection open mid-restore, its teardown below tells `disconnected`)
    if (this.#reconnector !== null) this.#stopReconnecting(this.#transport === null);
    if (this.#transport !== null) await this.#removePublication();
    const transport = this.#transport;
    if (transport === null) return;
    transport.onClose = null;
    transport.close();
    this.#teardown(transport, undefined, true);
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
      const content = readIncoming(request);
      if (content.kind !== 'message') {
        // notifications about messages: answered 200 at once, never shown as messages
        this.respond(request, 200);
        if (content.kind === 'typing') this.#typing.update(content.from, content.state);
        else if (content.displayed) this.emit('displayed', { from: content.from, imdnMessageId: content.imdnMessageId });
        return;
      }
      const incoming = content.message;
      let status = 200;
      try {
        status = (await this.#options.onMessage?.(incoming)) ?? 200;
      } catch (error) {
        status = 500;
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
      if (this.#transport === null) return;
      this.respond(request, status);
      if (status >= 200 && status < 300) {
        this.#typing.messageFrom(senderAddress(incoming));
        this.emit('message', incoming);
      }
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
    if (this.#transport !== null) return this.#transport;
    if (this.#lost) throw new ClientError('DISCONNECTED', this.#reconnector === null ? 'the connection was lost' : 'the connection was lost; reconnecting');
    throw new ClientError('NOT_CONNECTED', 'not connected; call connect() first');
  }

  /** The flow failed (fatal framing error, keep-alive pong missing): drop the connection. */
  #fail(error: Error): void {
    const transport = this.#transport;
    if (transport === null) return;
    transport.onClose = null;
    transport.close();
    this.#teardown(transport, error, false);
  }

  /** `byUser`: close() was called; else the connection was lost (and may be restored). */
  #teardown(transport: ClientTransport, error: Error | undefined, byUser: boolean): void {
    if (this.#transport !== transport) return;
    this.#transport = null;
    const server = this.#server;
    this.#server = null;
    // lost, not closed: the next attempt goes to the next server
    if (!byUser) this.#servers.advance();
    this.#inbound = null;
    this.#keepAlive?.stop();
    this.#keepAlive = null;
    this.#registration?.stop();
    this.#registration = null;
    this.#publisher?.stop();
    this.#typing.clear();
    const gone = new ClientError('DISCONNECTED', 'the connection closed', { cause: error });
    const reconnect = !byUser && this.#reconnects;
    for (const subscription of this.#subscriptions) {
      // a live subscription waits for the new connection; the rest end here
      if (reconnect && subscription.suspend(gone)) continue;
      subscription.stop(gone);
      this.#subscriptions.delete(subscription);
    }
    for (const [key, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(key);
      pending.reject(new ClientError('DISCONNECTED', 'the connection closed before a final response', { cause: error }));
    }
    this.#lost = !byUser;
    this.emit('disconnected', error === undefined ? {} : { error });
    if (!reconnect) {
      this.#emitConnection({ state: 'disconnected', ...(error === undefined ? {} : { error }), ...(byUser || server === null ? {} : { server: server.url }) });
      return;
    }
    this.#reconnector ??= new Reconnector(typeof this.#options.autoReconnect === 'object' ? this.#options.autoReconnect : {}, {
      attempt: () => this.#restore(),
      roundSize: () => this.#servers.size,
      event: (event) => this.#emitConnection({ ...event, server: this.#servers.upcoming.url }),
    });
    this.#reconnector.schedule(error ?? gone);
  }

  /** One reconnection attempt: connect, register again if registered, re-subscribe the live subscriptions. */
  async #restore(): Promise<void> {
    const reconnector = this.#reconnector;
    await this.#open();
    const transport = this.#transport;
    if (this.#reconnector !== reconnector || transport === null) {
      // close() or unregister() while connecting: this connection is not wanted
      if (transport !== null) {
        transport.onClose = null;
        transport.close();
        this.#teardown(transport, undefined, true);
      }
      return;
    }
    if (this.#registerExpires !== null) {
      try {
        await this.register({ expires: this.#registerExpires });
      } catch (error) {
        // lost again meanwhile: that teardown scheduled the next attempt already
        if (this.#transport !== transport) return;
        if (error instanceof ClientError && error.code === 'TIMEOUT') {
          // a server that takes connections but does not answer (stopped, overloaded): the next one
          this.#fail(error);
          return;
        }
        // refused (credentials changed, user removed): connected but not registered; the app decides
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
    // the presence published before the loss lapsed with the connection's publication: publish it anew
    await this.#publisher?.restore()?.catch((error: unknown) => this.emit('error', error instanceof Error ? error : new Error(String(error))));
    await Promise.all([...this.#subscriptions].map((s) => s.resubscribe()));
    if (this.#transport !== transport) return;
    this.#reconnector = null;
    this.#lost = false;
    this.#emitConnection({ state: 'connected' });
  }

  /** whether a lost connection is restored now: autoReconnect, and no unregister() since the last register() */
  get #reconnects(): boolean {
    return this.#options.autoReconnect !== undefined && this.#options.autoReconnect !== false && this.#reconnectAllowed;
  }

  #stopReconnecting(tell: boolean): void {
    this.#reconnector?.stop();
    this.#reconnector = null;
    this.#lost = false;
    const gone = new ClientError('DISCONNECTED', 'reconnection stopped');
    for (const subscription of this.#subscriptions) subscription.stop(gone);
    this.#subscriptions.clear();
    if (tell) this.#emitConnection({ state: 'disconnected' });
  }

  #emitConnection(event: ConnectionEvent): void {
    const server = this.#server;
    if (event.state === 'connected' && server !== null) {
      this.emit('connection', { ...event, server: server.url, ...(server.address === undefined ? {} : { address: server.address }) });
      return;
    }
    this.emit('connection', event);
  }
}

/** A server for a message: its URL, and the address connected to when DNS gave several. */
function serverName(server: ServerAddress): string {
  return server.address === undefined ? server.url : `${server.url} (${server.address})`;
}

/** `bob@parley.local` → `sip:bob@parley.local`; a URI with a scheme is kept as it is. */
function sipUri(address: string): string {
  return /^(sips?|pres):/i.test(address) ? address : `sip:${address}`;
}

