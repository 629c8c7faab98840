// The syntax RFC 3261 asks of every request, in the header fields that the parser leaves to the
// parts that read them (From, To, Contact, Via, Date are parsed on demand, and a method Parley does
// not serve reads none of them). Checked at the edge before anything is decided on the request, so
// that a malformed request is answered 400 with what is wrong whatever its method (RFC 3261 §8.2;
// RFC 4475 §3.1.2), not 405 or 200.
//
// A well-formed request with one Via costs scans of a few values in place: no slicing, no objects.
// Only a Via after the first one (a request through a proxy) is parsed whole.

import { isTokenChar, isWs, show } from './chars.ts';
import { SIP_PARSE_ERRORS, SipParseError } from './errors.ts';
import { parseVia } from './grammar.ts';
import type { SipRequest, Via } from './message.ts';

const E = SIP_PARSE_ERRORS;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LAQUOT = 0x3c;
const RAQUOT = 0x3e;
/** The magic cookie alone: a branch that claims RFC 3261 matching but identifies nothing. */
const BARE_COOKIE = 'z9hG4bK';
/** rfc1123-date of RFC 3261 §25.1: always GMT. */
const RFC1123_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$/;

/**
 * Throws SipParseError (400) naming the first fault found in `request`; `topVia` is its top Via as
 * parsed already (stampReceived), so only the others are parsed here.
 */
export function checkRequest(request: SipRequest, topVia: Via): void {
  const uriFault = requestUriFault(request.uri);
  if (uriFault !== null) throw new SipParseError(E.BAD_URI, `Request-URI ${show(request.uri)}: ${uriFault}`, 400);
  if (topVia.params.get('branch') === BARE_COOKIE) {
    throw new SipParseError(E.BAD_VIA, `Via branch is the magic cookie ${BARE_COOKIE} alone, with no transaction identifier after it`, 400);
  }
  let vias = 0;
  for (const f of request.headers) {
    switch (f.name) {
      case 'from':
      case 'to':
      case 'contact': {
        if (f.name === 'contact' && f.value === '*') break;
        const fault = nameAddrFault(f.value);
        if (fault !== null) throw new SipParseError(E.BAD_NAME_ADDR, `${f.name === 'from' ? 'From' : f.name === 'to' ? 'To' : 'Contact'} ${show(f.value)}: ${fault}`, 400);
        break;
      }
      case 'via':
        if (vias++ > 0) parseVia(f.value); // throws SIP_BAD_VIA saying what is wrong
        break;
      case 'date':
        if (!RFC1123_DATE.test(f.value)) throw new SipParseError(E.BAD_DATE, `Date ${show(f.value)} is not an RFC 1123 date in GMT, as "Sat, 13 Nov 2010 23:29:00 GMT" (RFC 3261 §20.17)`, 400);
        break;
    }
  }
}

/**
 * What is wrong with a Request-URI that the start line let through, or null: a sip or sips URI
 * cannot carry headers ("?" after the host), which only make sense in a URI to be dialled (RFC
 * 3261 §19.1.5, table of §19.1.1). A "?" in the user part (before "@") is a user-unreserved character.
 */
function requestUriFault(uri: string): string | null {
  // "sip:" or "sips:", any case, compared in place
  if ((uri.charCodeAt(0) | 0x20) !== 0x73 || (uri.charCodeAt(1) | 0x20) !== 0x69 || (uri.charCodeAt(2) | 0x20) !== 0x70) return null;
  const colon = (uri.charCodeAt(3) | 0x20) === 0x73 ? 4 : 3;
  if (uri.charCodeAt(colon) !== 0x3a) return null; // another scheme: answered 416 where it matters
  const at = uri.indexOf('@', colon);
  if (uri.indexOf('?', at < 0 ? colon : at) >= 0) return 'a SIP Request-URI cannot carry headers ("?…")';
  return null;
}

/**
 * What is wrong with a name-addr or addr-spec with parameters (From, To, one Contact), or null
 * (RFC 3261 §20.10, §25.1): a quoted display name is closed and followed by "<"; an unquoted one is
 * tokens and whitespace only; nothing but the URI between "<" and ">"; an addr-spec without "<>"
 * has no "?", "," or whitespace in its URI. The parameters after it are left to their readers.
 */
export function nameAddrFault(value: string): string | null {
  const n = value.length;
  let p = 0;
  while (p < n && isWs(value.charCodeAt(p))) p++;
  let quoted = false;
  if (value.charCodeAt(p) === DQUOTE) {
    let i = p + 1;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === BACKSLASH) i++;
      else if (c === DQUOTE) break;
    }
    if (i >= n) return 'the quoted display name has no closing quote';
    p = i + 1;
    while (p < n && isWs(value.charCodeAt(p))) p++;
    if (value.charCodeAt(p) !== LAQUOT) return 'a quoted display name must be followed by <URI>';
    quoted = true;
  }
  const lt = quoted ? p : value.indexOf('<', p);
  const semi = quoted ? -1 : value.indexOf(';', p);
  if (lt >= 0 && (semi < 0 || lt < semi)) {
    if (!quoted) {
      for (let i = p; i < lt; i++) {
        const c = value.charCodeAt(i);
        if (!isTokenChar(c) && !isWs(c)) return `the display name has ${show(value[i] ?? '')}, which is not a token character: quote the display name`;
      }
    }
    const gt = value.indexOf('>', lt + 1);
    if (gt < 0) return '"<" without ">"';
    if (gt === lt + 1) return 'nothing between "<" and ">"';
    if (isWs(value.charCodeAt(lt + 1)) || isWs(value.charCodeAt(gt - 1))) return 'whitespace inside "<" and ">" around the URI';
    return null;
  }
  if (value.charCodeAt(p) === RAQUOT) return '">" without "<"';
  const end = semi < 0 ? n : semi;
  let last = end;
  while (last > p && isWs(value.charCodeAt(last - 1))) last--;
  if (last === p) return 'no URI';
  for (let i = p; i < last; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x3f || c === 0x2c) return `a URI with ${show(value[i] ?? '')} must be enclosed in "<" and ">"`;
    if (isWs(c) || c === DQUOTE || c === RAQUOT) return `${show(value[i] ?? '')} in the URI: a display name must be quoted or the URI enclosed in "<" and ">"`;
  }
  return null;
}
