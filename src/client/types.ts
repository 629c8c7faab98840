// The options, results and events of the client SDK's user agent.

import type { Headers, SipRequest, SipResponse } from '../sip/pure.ts';
import type { ClientError } from './errors.ts';
import type { IncomingMessage } from './incoming.ts';
import type { FetchLike } from './mailbox.ts';
import type { MessageSummary } from './message-summary.ts';
import type { ProvisioningSettings } from './provisioning.ts';
import type { RegisterResult } from './registration.ts';

export interface SipClientOptions {
  /**
   * `tcp://host:port`, `tls://host:port`, `ws://host:port/path` or `wss://…`; or several (the
   * nodes of a cluster), tried in order and round robin after a loss. In Node a tcp:// or tls://
   * host name with several A/AAAA records counts as several servers.
   */
  server: string | readonly string[];
  /** address of record, e.g. `sip:alice@parley.local` */
  aor: string;
  /** digest username; default: the user part of the AOR */
  username?: string;
  password: string;
  displayName?: string;
  userAgent?: string;
  /** REGISTER Request-URI; default: `sip:` + the AOR's host (§10.2) */
  registrar?: string;
  /** Timer F (§17.1.2.2): 64 × T1 = 32 s by default */
  requestTimeoutMs?: number;
  /**
   * Keep-alive period (RFC 5626 §3.5.1), 0 = off; default 5 s. The first ping of a connection is a
   * CRLFCRLF and an OPTIONS; then CRLFCRLF alone where the server answered it with a CRLF pong (TCP
   * and TLS on Parley), else OPTIONS alone (WebSocket on Parley: the browser API has no ping).
   */
  keepAliveIntervalMs?: number;
  /**
   * A keep-alive unanswered this long means the server is gone: the connection is dropped (and,
   * with autoReconnect, the next server tried); default 4 s. With the default period a silent dead
   * server is found within 9 s.
   */
  keepAlivePongTimeoutMs?: number;
  /** send credentials up front once a method has been challenged (§22.3); default true */
  preemptiveAuth?: boolean;
  /** decides the status for an incoming MESSAGE (default 200); `message` fires only for 2xx */
  onMessage?: (message: IncomingMessage) => number | void | Promise<number | void>;
  /** EWS endpoint for missedConversations() and mailbox(); default: the one provisioning sent */
  ewsUrl?: string;
  /** the fetch the mailbox reader uses; default the platform's */
  fetch?: FetchLike;
  /**
   * After the connection is lost (not after close()): reconnect with back-off, register again
   * if registered, and re-subscribe every live subscription; `connection` events tell the state.
   * true: 1 s doubling to 30 s, with jitter. Default false. With several servers each attempt goes
   * to the next one (the first to the one after the server lost), and the back-off is between
   * rounds through all of them.
   */
  autoReconnect?: boolean | ReconnectPolicy;
}

export interface ReconnectPolicy {
  /** delay before the first attempt; default 1000 ms */
  initialDelayMs?: number;
  /** the delay doubles after each failed attempt up to this; default 30 000 ms */
  maxDelayMs?: number;
}

export type ConnectionState = 'connected' | 'reconnecting' | 'disconnected';

export interface ConnectionEvent {
  /**
   * 'reconnecting': the connection was lost and attempt `attempt` starts in `delayMs`;
   * 'connected': a connection (again) open, registration and subscriptions restored;
   * 'disconnected': gone for good (close(), or lost without autoReconnect)
   */
  state: ConnectionState;
  attempt?: number;
  delayMs?: number;
  /** why the connection was lost, or why the last attempt failed */
  error?: Error;
  /**
   * the server, as configured (its URL): 'connected': the one connected to; 'reconnecting': the one
   * attempt `attempt` goes to; 'disconnected': the one lost (absent after close())
   */
  server?: string;
  /** with `server` a host name with several DNS records: the address of it connected to */
  address?: string;
}

/** RFC 3994 isComposing from a peer */
export interface TypingEvent {
  /** the sender's address, `alice@parley.local` (the asserted identity when the server gave one) */
  from: string;
  /** true: composing; false: idle (explicitly, or the refresh interval ran out) */
  active: boolean;
}

/** RFC 5438 display notification from a peer: the message of that imdn.Message-ID was shown to them */
export interface DisplayedEvent {
  /** the sender's address, `bob@parley.local` */
  from: string;
  imdnMessageId: string;
}

export interface ResponseInfo {
  status: number;
  reason: string;
  /**
   * The text of the response's Warning header (RFC 3261 §20.43) without code, agent and quotes,
   * e.g. `bob@parley.local is offline; stored for delivery to their mailbox` on a 202; several
   * joined with "; ". Undefined when there is none.
   */
  warning?: string;
  /** the imdn.Message-ID the message carried, when sendMessage asked for a display notification */
  imdnMessageId?: string;
  headers: Headers;
  response: SipResponse;
}

export interface RequestOptions {
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
  contentType?: string;
  /** To header value; default `<uri>` */
  to?: string;
  /** default: a new Call-ID */
  callId?: string;
  /** first CSeq; default 1 */
  cseq?: number;
  /** From tag; default: a new tag */
  fromTag?: string;
  /** add our Contact (SUBSCRIBE and other dialog-creating requests) */
  contact?: boolean;
}

export interface SendMessageOptions {
  /** the text's type; default text/plain;charset=utf-8 */
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
  /**
   * Wrap the text in message/cpim with RFC 5438 headers asking for a display notification; the
   * answer's imdnMessageId is what a later `displayed` event names.
   */
  requestDisplayNotification?: boolean;
}

export interface SipClientEvents {
  /** an incoming MESSAGE, after it was answered with a 2xx; not typing indications nor display notifications */
  message: [IncomingMessage];
  /** an RFC 3994 isComposing (answered 200), or the lapse of an active one after its refresh interval */
  typing: [TypingEvent];
  /** an RFC 5438 display notification (answered 200): the peer saw the message of that imdnMessageId */
  displayed: [DisplayedEvent];
  /** connection state changes: connected (also after connect()), reconnecting (autoReconnect), disconnected */
  connection: [ConnectionEvent];
  /** any other incoming request except ACK: a listener must answer it with `respond()` */
  request: [SipRequest];
  registered: [RegisterResult];
  /** after unregister(), or when a refresh failed (with the error) */
  unregistered: [{ error?: ClientError }];
  /** the connection is gone; error is undefined after close() */
  disconnected: [{ error?: Error }];
  /** each NOTIFY of watchMessageSummary() (RFC 3842) */
  'message-summary': [MessageSummary];
  /** each NOTIFY of watchProvisioning(): the user's effective settings and EWS URL */
  provisioning: [ProvisioningSettings];
  /** also a NOTIFY body that does not parse (ClientError INVALID_BODY) */
  error: [Error];
}
