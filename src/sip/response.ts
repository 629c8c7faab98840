import { hash } from 'node:crypto';
import { quoteString, readQuotedString } from './grammar.ts';
import { Headers, type SipRequest, type SipResponse } from './message.ts';

/** Reason phrases of RFC 3261 §21 and the extensions Parley answers with. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  489: 'Bad Event',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 300 ? 'OK' : 'Error');
}

/**
 * A response to `request` (RFC 3261 §8.2.6.2): Via, From, Call-ID and CSeq copied, To copied with a
 * tag added when it has none. The tag is derived from the request, so a retransmitted request that
 * is answered again (statelessly) gets the same tag.
 */
export function createResponse(request: Pick<SipRequest, 'headers'>, status: number, reason = reasonPhrase(status)): SipResponse {
  const src = request.headers;
  const headers = new Headers();
  for (const via of src.getAll('via')) headers.append('via', via);
  const from = src.get('from');
  if (from !== undefined) headers.append('from', from);
  const to = src.get('to');
  if (to !== undefined) headers.append('to', status > 100 && !/;\s*tag=/i.test(to) ? `${to};tag=${localTag(src)}` : to);
  const callId = src.get('call-id');
  if (callId !== undefined) headers.append('call-id', callId);
  const cseq = src.get('cseq');
  if (cseq !== undefined) headers.append('cseq', cseq);
  return { kind: 'response', status, reason, headers, body: Buffer.alloc(0) };
}

function localTag(headers: Headers): string {
  const seed = `${headers.get('call-id')}|${headers.get('from')}|${headers.get('via')}|${headers.get('cseq')}`;
  return hash('sha1', seed, 'base64url').slice(0, 12);
}

/** A Warning header value (RFC 3261 §20.43): 399 is "miscellaneous warning", text for a person. */
export function warning(agent: string, text: string, code = 399): string {
  return `${code} ${agent} ${quoteString(text)}`;
}

export interface WarningValue {
  code: number;
  agent: string;
  /** the warn-text, quotes and escapes removed */
  text: string;
}

// warning-value = warn-code SP warn-agent SP warn-text (RFC 3261 §20.43, §25.1);
// warn-code = 3DIGIT; warn-agent = hostport / pseudonym; warn-text = quoted-string
const WARNING_VALUE = /^\s*(\d{3})\s+(\S+)\s+(".*)$/s;

/** The parts of one warning-value; undefined when it is not one (an unquoted text, no code…). */
export function parseWarning(value: string): WarningValue | undefined {
  const m = WARNING_VALUE.exec(value);
  if (m === null) return undefined;
  try {
    const quoted = readQuotedString(m[3] as string, 0);
    return { code: Number(m[1]), agent: m[2] as string, text: quoted.value };
  } catch {
    return undefined;
  }
}
