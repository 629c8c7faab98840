// What the UAS side makes of an incoming request: the `message` event of a MESSAGE (RFC 3428)
// and the default answer to the requests nobody handles. Pure.

import { parseNameAddr, splitHeaderList } from '../sip/pure.ts';
import type { SipRequest } from '../sip/pure.ts';
import { ALLOW } from './requests.ts';

export interface IncomingMessage {
  /** sender's URI, from the From header */
  from: string;
  /** the display name the sender chose for their From header: theirs to choose, so not proof of who they are */
  fromDisplayName: string | null;
  /**
   * Who the server vouches sent it (RFC 3325 P-Asserted-Identity): the authenticated user, with
   * the display name from the organisation's directory; null when the request carries none. Parley
   * removes any the sender wrote and puts its own, and this client hears only from the server it
   * connected to (TCP, TLS or WebSocket), so it can be shown as the sender.
   */
  assertedIdentity: AssertedIdentity | null;
  /** recipient URI, from the To header */
  to: string;
  /** Content-Type as sent, '' when absent */
  contentType: string;
  /** the body decoded as UTF-8 */
  body: string;
  /** the body bytes as received */
  raw: Buffer;
  request: SipRequest;
}

export interface AssertedIdentity {
  /** `sip:alice@parley.local` */
  uri: string;
  displayName: string | null;
}

/**
 * The first SIP or SIPS identity of the P-Asserted-Identity header fields (RFC 3325 §9.1 allows
 * one of each of sip/sips and tel); null when there is none or it cannot be read.
 */
export function assertedIdentityOf(request: SipRequest): AssertedIdentity | null {
  for (const value of request.headers.getAll('p-asserted-identity')) {
    let entries: string[];
    try {
      entries = splitHeaderList(value);
    } catch {
      continue;
    }
    for (const entry of entries) {
      try {
        const { displayName, uri } = parseNameAddr(entry);
        if (/^sips?:/i.test(uri)) return { uri, displayName };
      } catch {
        // an unreadable entry asserts nothing; look at the next
      }
    }
  }
  return null;
}

/** RFC 3261 §8.1.1: the header fields every request has; without them we cannot answer sensibly. */
export const MANDATORY_HEADERS = ['via', 'from', 'to', 'call-id', 'cseq'] as const;

export function missingHeader(request: SipRequest): string | null {
  for (const name of MANDATORY_HEADERS) if (!request.headers.has(name)) return name;
  return null;
}

export function toIncomingMessage(request: SipRequest): IncomingMessage {
  const from = parseNameAddr(request.headers.get('from') ?? '');
  const to = parseNameAddr(request.headers.get('to') ?? '');
  return {
    from: from.uri,
    fromDisplayName: from.displayName,
    assertedIdentity: assertedIdentityOf(request),
    to: to.uri,
    contentType: request.headers.get('content-type') ?? '',
    body: request.body.toString('utf8'),
    raw: request.body,
    request,
  };
}

export interface DefaultAnswer {
  status: number;
  headers: Record<string, string>;
}

/**
 * The answer when no `request` listener takes a request: 200 to OPTIONS with our capabilities
 * (§11.2), 405 with Allow to anything else (§8.2.1). Null for ACK, which is never answered.
 */
export function defaultAnswer(method: string): DefaultAnswer | null {
  if (method === 'ACK') return null;
  if (method === 'OPTIONS') return { status: 200, headers: { allow: ALLOW, accept: 'text/plain, */*' } };
  return { status: 405, headers: { allow: ALLOW } };
}
