// A scripted SIP server for the SDK's unit tests (test/unit/client-*.test.ts): the far end of an
// in-memory connection (no sockets). What the user agent writes arrives here parsed; the test reads
// it and scripts the answers — responses, digest challenges, NOTIFYs — as a raw-wire transcript.

import assert from 'node:assert/strict';
import { SipClient } from '../../src/client/index.ts';
import type { ClientTransport, NodeSipClientOptions, TransportConnector } from '../../src/client/index.ts';
import { ClientError } from '../../src/client/errors.ts';
import { buildResponse } from '../../src/client/requests.ts';
import { challenges, computeHa1, NonceIssuer, verifyCredentials } from '../../src/sip/digest.ts';
import { formatAuthField, parseAuthField, parseMessage, parseNameAddr, serialize, StreamFramer } from '../../src/sip/index.ts';
import { createRequest, Headers } from '../../src/sip/message.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message.ts';

export const REALM = 'parley.local';
/** the user the clients sign in as, with password `pw` */
export const AOR = 'sip:alice@parley.local';
export const NOTIFIER_CONTACT = '<sip:10.0.0.1:5060;transport=tcp>';
const nonces = new NonceIssuer({ secret: Buffer.alloc(32, 7) });

/** 'stream': TCP-like, bytes framed here (and CRLFCRLF pings counted); 'message': WebSocket-like. */
export type Framing = 'stream' | 'message';

export interface FakeSipServerOptions {
  framing?: Framing;
  /** the To tag of `reply()` answers; default a new one each time */
  toTag?: string;
}

export class FakeSipServer {
  readonly transport: ClientTransport;
  /** what the UA sent that no `next()` has taken yet */
  readonly received: SipMessage[] = [];
  /** everything the UA wrote, as text */
  readonly wire: string[] = [];
  pings = 0;
  /** answer CRLFCRLF pings with a CRLF pong (RFC 5626 §4.4.1); default false */
  pongs = false;
  /** answer OPTIONS (the keep-alive where CRLF gets no pong) with 200 at once, not handing them to the test; default false */
  answersOptions = false;
  readonly #framer = new StreamFramer();
  readonly #waiters: Array<(message: SipMessage) => void> = [];
  readonly #framing: Framing;
  readonly #toTag: string | undefined;
  #branch = 0;

  constructor({ framing = 'stream', toTag }: FakeSipServerOptions = {}) {
    this.#framing = framing;
    this.#toTag = toTag;
    const peer = this;
    this.transport = {
      framing,
      viaTransport: framing === 'stream' ? 'TCP' : 'WS',
      contactTransport: framing === 'stream' ? 'tcp' : 'ws',
      localHost: framing === 'stream' ? '192.0.2.7' : 'abcdefgh.invalid',
      localPort: framing === 'stream' ? 50123 : null,
      onData: null,
      onClose: null,
      send(data) {
        peer.#receive(typeof data === 'string' ? Buffer.from(data) : data);
      },
      close() {
        this.onClose?.(undefined);
      },
    };
  }

  readonly connector: TransportConnector = async () => this.transport;

  #receive(data: Buffer): void {
    this.wire.push(data.toString());
    const messages: SipMessage[] = [];
    if (this.#framing === 'message') {
      // a CRLFCRLF frame is a keep-alive ping (RFC 5626 read for WebSocket), answered when pongs are on
      if (data.toString('latin1') === '\r\n\r\n') {
        this.pings++;
        if (this.pongs) queueMicrotask(() => this.inject('\r\n'));
      } else messages.push(parseMessage(data));
    } else
      for (const event of this.#framer.push(data)) {
        if (event.type === 'message') messages.push(event.message);
        else if (event.type === 'ping') {
          this.pings++;
          if (this.pongs) queueMicrotask(() => this.inject('\r\n'));
        }
      }
    for (const message of messages) {
      if (this.answersOptions && message.kind === 'request' && message.method === 'OPTIONS') {
        queueMicrotask(() => this.reply(message, 200));
        continue;
      }
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.received.push(message);
      else waiter(message);
    }
  }

  /** The next message the UA sends. */
  next(timeoutMs = 3000): Promise<SipMessage> {
    const queued = this.received.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the UA sent nothing')), timeoutMs);
      this.#waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  async nextRequest(method?: string, timeoutMs?: number): Promise<SipRequest> {
    const message = await this.next(timeoutMs);
    assert.equal(message.kind, 'request');
    if (method !== undefined) assert.equal(message.method, method);
    return message;
  }

  async nextResponse(): Promise<SipResponse> {
    const message = await this.next();
    assert.equal(message.kind, 'response');
    return message;
  }

  /** The next `method` request, with valid credentials: one without any is challenged (401) first. */
  async nextAuthenticated(method: string): Promise<SipRequest> {
    let request = await this.nextRequest(method);
    if (!request.headers.has('authorization')) {
      this.challenge(request);
      request = await this.nextRequest(method);
    }
    assert.equal(verify(request).ok, true);
    return request;
  }

  /** Nothing more arrives within `ms`. */
  async silent(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    assert.equal(this.received.length, 0, `unexpected: ${this.received.map((m) => (m.kind === 'request' ? m.method : m.status)).join(', ')}`);
  }

  inject(message: SipMessage | string): void {
    this.transport.onData?.(typeof message === 'string' ? Buffer.from(message) : serialize(message));
  }

  reply(request: SipRequest, status: number, headers: Record<string, string> = {}, toTag = this.#toTag): void {
    this.inject(buildResponse(request, status, undefined, headers, toTag));
  }

  challenge(request: SipRequest, status: 401 | 407 = 401): void {
    const name = status === 401 ? 'www-authenticate' : 'proxy-authenticate';
    const response = buildResponse(request, status);
    for (const c of challenges(REALM, nonces.issue())) response.headers.append(name, formatAuthField(c));
    this.inject(response);
  }

  /** A NOTIFY in the dialog of `subscribe`, whose 2xx carried To tag `toTag`. */
  notify(subscribe: SipRequest, state: string, options: { toTag?: string; cseq?: number; body?: string; contentType?: string; event?: string; callId?: string } = {}): void {
    const h = new Headers();
    h.append('via', `SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKn${++this.#branch}`);
    h.append('max-forwards', '70');
    h.append('from', `${subscribe.headers.get('to')};tag=${options.toTag ?? 'srv1'}`.replace(/;tag=[^;]*;tag=/, ';tag='));
    h.append('to', subscribe.headers.get('from') ?? '');
    h.append('call-id', options.callId ?? subscribe.headers.get('call-id') ?? '');
    h.append('cseq', `${options.cseq ?? this.#branch} NOTIFY`);
    h.append('contact', NOTIFIER_CONTACT);
    h.append('event', options.event ?? subscribe.headers.get('event') ?? '');
    h.append('subscription-state', state);
    if (options.body !== undefined) h.append('content-type', options.contentType ?? 'text/plain');
    const contact = parseNameAddr(subscribe.headers.get('contact') ?? '').uri;
    this.inject(createRequest('NOTIFY', contact, h, Buffer.from(options.body ?? '')));
  }

  /** The server closes the connection. */
  drop(): void {
    this.transport.onClose?.(new ClientError('DISCONNECTED', 'peer closed'));
  }
}

/** Checks the digest credentials in `header` of `request` against alice's `password`. */
export function verify(request: SipRequest, header = 'authorization', password = 'pw') {
  const value = request.headers.get(header);
  assert.ok(value !== undefined, `${header} present`);
  return verifyCredentials(parseAuthField(value), {
    method: request.method,
    requestUri: request.uri,
    expectedRealm: REALM,
    nonces,
    ha1For: (algorithm, user) => (user === 'alice' ? computeHa1(algorithm, 'alice', REALM, password) : undefined),
  });
}

/**
 * SipClients for alice (password `pw`, no keep-alive pings, then `defaults`), each connected to a
 * new FakeSipServer made with `server`; `closeAll` (for afterEach) closes them.
 */
export function fakeServerClients(defaults: Partial<NodeSipClientOptions> = {}, server: Omit<FakeSipServerOptions, 'framing'> = {}) {
  const clients: SipClient[] = [];
  return {
    async start(options: Partial<NodeSipClientOptions> = {}, framing: Framing = 'stream') {
      const peer = new FakeSipServer({ ...server, framing });
      const ua = new SipClient({ server: 'tcp://127.0.0.1:5060', aor: AOR, password: 'pw', keepAliveIntervalMs: 0, ...defaults, ...options, connector: peer.connector });
      clients.push(ua);
      await ua.connect();
      return { ua, peer };
    },
    async closeAll(): Promise<void> {
      for (const ua of clients.splice(0)) await ua.close();
    },
  };
}

/** The provisioning settings Parley sends by default, as the SDK parses them. */
export const PROVISIONING = {
  EnableOfflineIm: true,
  EnableIMAutoArchiving: true,
  DisableSavingIM: false,
  OfflineImPickupDelay: '00:02:00',
  OfflineImMaxAge: '1.00:00:00',
  ewsUrl: 'http://127.0.0.1:8080/EWS/Exchange.asmx',
  sources: { ImConfiguration: 'Global', ClientPolicy: 'Global' },
};

/** A request from bob to alice's contact, as the server would relay it. */
export function incoming(method: string, body = '', headers: Record<string, string> = {}): SipRequest {
  const h = new Headers([
    { name: 'via', value: 'SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKsrv1' },
    { name: 'max-forwards', value: '69' },
    { name: 'from', value: '"Bob" <sip:bob@parley.local>;tag=b1' },
    { name: 'to', value: '<sip:alice@parley.local>' },
    { name: 'call-id', value: `in-${Math.random()}` },
    { name: 'cseq', value: `1 ${method}` },
  ]);
  for (const [name, value] of Object.entries(headers)) h.set(name, value);
  return createRequest(method, 'sip:alice@192.0.2.7:50123;transport=tcp', h, Buffer.from(body));
}
