// What the UAS side makes of an incoming request: a MESSAGE (RFC 3428) is a `message` (its CPIM
// wrapper, RFC 3862, undone), a typing indication (RFC 3994) or a display notification (RFC 5438);
// and the default answer to the requests nobody handles. Pure.

import { parseNameAddr, parseUri, splitHeaderList } from '../sip/pure.ts';
import type { SipRequest } from '../sip/pure.ts';
import { CPIM_TYPE, mediaType, readCpim } from './imdn.ts';
import { IS_COMPOSING_TYPE, parseIsComposing } from './is-composing.ts';
import type { ComposingState } from './is-composing.ts';
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
  /** the message text: the body, or for message/cpim the encapsulated content (UTF-8) */
  text: string;
  /** the Content-Type of `text` (the CPIM inner one), '' when absent: text/html needs sanitising before display */
  textContentType: string;
  /** the RFC 5438 imdn.Message-ID, when the sender gave one: what sendDisplayed() names */
  imdnMessageId?: string;
  /** the sender asked for a display notification: call sendDisplayed(from, imdnMessageId) once the user saw it */
  displayNotificationRequested: boolean;
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

const utf8 = new TextDecoder('utf-8');

/** What an incoming MESSAGE is: a message for the user, or a notification about one of theirs. */
export type IncomingContent =
  | { kind: 'message'; message: IncomingMessage }
  /** RFC 3994 isComposing */
  | { kind: 'typing'; from: string; state: ComposingState }
  /** RFC 5438 disposition notification; `displayed` false for another status (forbidden, error) */
  | { kind: 'notification'; from: string; imdnMessageId: string; displayed: boolean };

export function readIncoming(request: SipRequest): IncomingContent {
  const message = toIncomingMessage(request);
  const type = mediaType(message.contentType);
  if (type === IS_COMPOSING_TYPE) {
    const state = parseIsComposing(request.body);
    if (state !== undefined) return { kind: 'typing', from: senderAddress(message), state };
  } else if (type === CPIM_TYPE) {
    const cpim = readCpim(request.body);
    if (cpim?.kind === 'notification') return { kind: 'notification', from: senderAddress(message), imdnMessageId: cpim.originalId, displayed: cpim.displayed };
    if (cpim?.kind === 'content') {
      if (mediaType(cpim.contentType) === IS_COMPOSING_TYPE) {
        const state = parseIsComposing(cpim.body);
        if (state !== undefined) return { kind: 'typing', from: senderAddress(message), state };
      }
      message.text = utf8.decode(cpim.body);
      message.textContentType = cpim.contentType;
      if (cpim.imdnMessageId !== undefined) message.imdnMessageId = cpim.imdnMessageId;
      message.displayNotificationRequested = cpim.displayNotificationRequested;
    }
  }
  return { kind: 'message', message };
}

export function toIncomingMessage(request: SipRequest): IncomingMessage {
  const from = parseNameAddr(request.headers.get('from') ?? '');
  const to = parseNameAddr(request.headers.get('to') ?? '');
  const contentType = request.headers.get('content-type') ?? '';
  const body = request.body.toString('utf8');
  return {
    from: from.uri,
    fromDisplayName: from.displayName,
    assertedIdentity: assertedIdentityOf(request),
    to: to.uri,
    contentType,
    body,
    raw: request.body,
    text: body,
    textContentType: contentType,
    displayNotificationRequested: false,
    request,
  };
}

/**
 * The sender as an address, `alice@parley.local`: whom the server vouches for (P-Asserted-Identity)
 * when it says, else the From URI's user@host; the URI itself when it has no user part.
 */
export function senderAddress(message: Pick<IncomingMessage, 'from' | 'assertedIdentity'>): string {
  const uri = message.assertedIdentity?.uri ?? message.from;
  try {
    const parsed = parseUri(uri);
    return parsed.user === null ? uri : `${parsed.user}@${parsed.host.toLowerCase()}`;
  } catch {
    return uri;
  }
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
