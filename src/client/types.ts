// The options, results and events of the client SDK's user agent.

import type { Headers, SipRequest, SipResponse } from '../sip/index.ts';
import type { ClientError } from './errors.ts';
import type { IncomingMessage } from './incoming.ts';
import type { FetchLike } from './mailbox.ts';
import type { MessageSummary } from './message-summary.ts';
import type { ProvisioningSettings } from './provisioning.ts';
import type { RegisterResult } from './registration.ts';

export interface SipClientOptions {
  /** `tcp://host:port`, `tls://host:port`, `ws://host:port/path` or `wss://…` */
  server: string;
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
  /** CRLFCRLF keep-alive period on TCP/TLS (RFC 5626 §3.5.1), 0 = off; default 30 s */
  keepAliveIntervalMs?: number;
  /** send credentials up front once a method has been challenged (§22.3); default true */
  preemptiveAuth?: boolean;
  /** decides the status for an incoming MESSAGE (default 200); `message` fires only for 2xx */
  onMessage?: (message: IncomingMessage) => number | void | Promise<number | void>;
  /** EWS endpoint for missedConversations() and mailbox(); default: the one provisioning sent */
  ewsUrl?: string;
  /** the fetch the mailbox reader uses; default the platform's */
  fetch?: FetchLike;
}

export interface ResponseInfo {
  status: number;
  reason: string;
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
  contentType?: string;
  headers?: Readonly<Record<string, string>>;
}

export interface SipClientEvents {
  /** an incoming MESSAGE, after it was answered with a 2xx */
  message: [IncomingMessage];
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
