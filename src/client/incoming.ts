// What the UAS side makes of an incoming request: the `message` event of a MESSAGE (RFC 3428)
// and the default answer to the requests nobody handles. Pure.

import { parseNameAddr } from '../sip/index.ts';
import type { SipRequest } from '../sip/index.ts';
import { ALLOW } from './requests.ts';

export interface IncomingMessage {
  /** sender's URI, from the From header */
  from: string;
  fromDisplayName: string | null;
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
