// Building the requests a UAC sends (RFC 3261 §8.1.1) and the responses a UAS sends (§8.2.6),
// and matching responses to requests (§17.1.3). Pure: no timers, no sockets.

import { formatNameAddr, formatVia, parseCSeq, parseNameAddr, parseVia } from '../sip/pure.ts';
import { createRequest, createResponseMessage, Headers } from '../sip/pure.ts';
import type { SipMessage, SipRequest, SipResponse } from '../sip/pure.ts';
import { newBranch, newTag } from './ids.ts';

/** The methods this user agent answers itself (RFC 3261 §20.5 Allow). */
export const ALLOW = 'MESSAGE, OPTIONS';

/** What a request needs to know about the connection it goes out on. */
export interface LocalEndpoint {
  readonly viaTransport: string;
  readonly contactTransport: string;
  readonly localHost: string;
  readonly localPort: number | null;
}

export interface RequestSpec {
  method: string;
  uri: string;
  /** From header value, tag included */
  from: string;
  /** To header value */
  to: string;
  callId: string;
  cseq: number;
  /** Contact header value, if the request carries one */
  contact?: string;
  userAgent?: string;
  /** extra header fields; a name given here replaces the default field of that name */
  headers?: Readonly<Record<string, string>>;
  body?: Buffer;
  contentType?: string;
}

/** An IPv6 address goes in brackets in Via sent-by and in a URI host (§25.1 IPv6reference). */
function bracket(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** RFC 3261 §18.1.1 Via with a fresh branch (§8.1.1.7) and an empty rport (RFC 3581 §3). */
export function viaFor(endpoint: LocalEndpoint, branch: string = newBranch()): string {
  return formatVia({
    protocol: 'SIP/2.0',
    transport: endpoint.viaTransport,
    host: bracket(endpoint.localHost),
    port: endpoint.localPort,
    params: new Map<string, string | null>([['branch', branch], ['rport', null]]),
  });
}

/** Our Contact URI on this connection: `sip:user@host:port;transport=tcp` (RFC 7118 §5.2 for ws). */
export function contactUriFor(user: string, endpoint: LocalEndpoint): string {
  return `sip:${encodeURIComponent(user)}@${bracket(endpoint.localHost)}${endpoint.localPort === null ? '' : `:${endpoint.localPort}`};transport=${endpoint.contactTransport}`;
}

export function nameAddr(uri: string, displayName: string | null = null, params: Record<string, string | null> = {}): string {
  return formatNameAddr({ displayName, uri, params: new Map(Object.entries(params)) });
}

/** §8.1.1: Request-URI, To, From, Call-ID, CSeq, Max-Forwards and Via, plus what the spec adds. */
export function buildRequest(spec: RequestSpec, endpoint: LocalEndpoint): SipRequest {
  const headers = new Headers();
  headers.append('via', viaFor(endpoint));
  headers.append('max-forwards', '70');
  headers.append('from', spec.from);
  headers.append('to', spec.to);
  headers.append('call-id', spec.callId);
  headers.append('cseq', `${spec.cseq} ${spec.method}`);
  if (spec.contact !== undefined) headers.append('contact', spec.contact);
  if (spec.userAgent !== undefined && spec.userAgent !== '') headers.append('user-agent', spec.userAgent);
  const body = spec.body ?? Buffer.alloc(0);
  if (body.length > 0 || spec.contentType !== undefined) headers.append('content-type', spec.contentType ?? 'text/plain;charset=utf-8');
  for (const [name, value] of Object.entries(spec.headers ?? {})) headers.set(name, value);
  return createRequest(spec.method, spec.uri, headers, body);
}

/** Same request, new transaction: a new branch and the given CSeq (§22.2 resending with credentials). */
export function reissue(request: SipRequest, cseq: number, endpoint: LocalEndpoint): SipRequest {
  const headers = request.headers.clone();
  headers.shift('via');
  headers.prepend('via', viaFor(endpoint));
  headers.set('cseq', `${cseq} ${request.method}`);
  return createRequest(request.method, request.uri, headers, request.body);
}

/**
 * The key of the client transaction a message belongs to (§17.1.3): top Via branch and CSeq
 * method. Null when the message lacks either, or the branch is not RFC 3261 style.
 */
export function transactionKey(message: SipMessage): string | null {
  const top = message.headers.get('via');
  const cseq = message.headers.get('cseq');
  if (top === undefined || cseq === undefined) return null;
  try {
    const branch = parseVia(top).params.get('branch');
    if (branch === undefined || branch === null || !branch.startsWith('z9hG4bK')) return null;
    return `${branch}\n${parseCSeq(cseq).method.toUpperCase()}`;
  } catch {
    return null;
  }
}

export function cseqOf(message: SipMessage): number | null {
  const value = message.headers.get('cseq');
  if (value === undefined) return null;
  try {
    return parseCSeq(value).seq;
  } catch {
    return null;
  }
}

/**
 * §8.2.6.2: a response copies Via (all of them, in order), From, Call-ID and CSeq, and To with a
 * tag added when the request had none (a UAS answering MESSAGE must tag it).
 */
export function buildResponse(request: SipRequest, status: number, reason?: string, extra: Readonly<Record<string, string>> = {}, toTag?: string): SipResponse {
  const headers = new Headers();
  for (const via of request.headers.getAll('via')) headers.append('via', via);
  const from = request.headers.get('from');
  if (from !== undefined) headers.append('from', from);
  const to = request.headers.get('to');
  // the tag is drawn only when needed: an in-dialog request (a NOTIFY) has one, and crypto costs
  if (to !== undefined) headers.append('to', status > 100 && !hasTag(to) ? `${to};tag=${toTag ?? newTag()}` : to);
  for (const name of ['call-id', 'cseq'] as const) {
    const value = request.headers.get(name);
    if (value !== undefined) headers.append(name, value);
  }
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return createResponseMessage(status, reason ?? reasonPhrase(status), headers);
}

function hasTag(nameAddrValue: string): boolean {
  try {
    return parseNameAddr(nameAddrValue).params.has('tag');
  } catch {
    return /;\s*tag\s*=/i.test(nameAddrValue);
  }
}

const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  415: 'Unsupported Media Type',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  603: 'Decline',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 300 ? 'OK' : 'Error');
}
