// The header section of a SIP message (RFC 3261 §7): start line and header fields, shared by the
// datagram parser (parser.ts) and the stream framer (framing.ts). Internal to src/sip.
//
//   generic-message = start-line *message-header CRLF [ message-body ]
//   Request-Line    = Method SP Request-URI SP SIP-Version CRLF
//   Status-Line     = SIP-Version SP Status-Code SP Reason-Phrase CRLF
//   message-header  = field-name HCOLON field-value CRLF;  HCOLON = *( SP / HTAB ) ":" SWS
//
// Input is the section decoded as latin1 (one char per byte), up to and including the line end of
// the last header field, without the empty line. Line ends are CRLF; a bare LF is accepted too
// (as HTTP/1.1 allows, RFC 9112 §2.2), a bare CR is not. A line starting with SP or HTAB continues
// the previous field (§7.3.1) and is unfolded to a single SP.

import { decodeWireText, isToken, isTokenChar, isWs, show } from './chars.ts';
import { SIP_PARSE_ERRORS, SipParseError } from './errors.ts';
import type { SipParseErrorCode } from './errors.ts';
import { parseCSeq, splitHeaderList } from './grammar.ts';
import type { SipLimits } from './limits.ts';
import { Headers, canonicalHeaderName, displayHeaderName } from './message.ts';
import type { HeaderField, SipMessage } from './message.ts';

const E = SIP_PARSE_ERRORS;

/** Headers whose comma-separated elements become one field each (§7.3.1); never the auth headers. */
const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via', 'contact', 'route', 'record-route', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'accept', 'accept-encoding', 'accept-language', 'allow-events', 'content-encoding',
  'warning', 'path', 'service-route', 'in-reply-to',
]);

// Control characters that may appear nowhere in the header section (HTAB and CRLF aside), and a CR
// that is not part of a CRLF: both would let two parsers disagree on where a line ends. The usual
// section is all printable ASCII, HTAB and line ends: PLAIN (sticky) finds in one pass where that
// stops, and only from there are the rarer cases (a bad character, UTF-8 text) looked for.
const PLAIN = /[\t\n\x20-\x7e]*(?:\r\n[\t\n\x20-\x7e]*)*/y;
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
const NON_ASCII = /[\x80-\xff]/g;
const REQUEST_LINE = /^(\S+)([ \t]+)(\S+)([ \t]+)(\S+)([ \t]*)$/;
const RESPONSE_LINE = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/;
const VERSION = /^SIP\/[0-9]+\.[0-9]+$/i;
const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$/;
const SIP_SLASH = /^SIP\//i;
const SP_OR_HTAB = /[ \t]/;
const STATUS_CODE = /^[0-9]{3}$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
const MAX_FORWARDS = /^[0-9]{1,10}$/;

export interface Head {
  /** the message with an empty body */
  message: SipMessage;
  /** the Content-Length value, or null when absent */
  contentLength: number | null;
}

type StartLine =
  | { kind: 'request'; method: string; uri: string }
  | { kind: 'response'; status: number; reason: string };

/** Whether a start line that failed to parse was meant as a request (only requests are answered). */
export function looksLikeRequest(line: string): boolean {
  const sp = line.search(SP_OR_HTAB);
  return sp > 0 && isToken(line.slice(0, sp)) && !SIP_SLASH.test(line);
}

/**
 * The start line in its usual form, `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Status-Code
 * [SP Reason-Phrase]`, read with a few searches instead of the regular expressions below; null for
 * anything else. What it accepts, parseStartLine would read the same way (single spaces, a token
 * method, a URI of printable ASCII: the expressions can split it in only one way).
 */
function usualStartLine(line: string): StartLine | null {
  const n = line.length;
  if (line.startsWith('SIP/2.0 ')) {
    const d0 = line.charCodeAt(8) - 48;
    const d1 = line.charCodeAt(9) - 48;
    const d2 = line.charCodeAt(10) - 48;
    if (!(d0 >= 1 && d0 <= 6 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) return null;
    if (n === 11) return { kind: 'response', status: d0 * 100 + d1 * 10 + d2, reason: '' };
    if (line.charCodeAt(11) !== 0x20 || isWs(line.charCodeAt(12))) return null;
    return { kind: 'response', status: d0 * 100 + d1 * 10 + d2, reason: decodeWireText(line.slice(12).trimEnd()) };
  }
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 > 0 ? line.indexOf(' ', sp1 + 1) : -1;
  if (sp2 < 0 || n !== sp2 + 8 || !line.endsWith('SIP/2.0')) return null;
  const method = line.slice(0, sp1);
  const uri = line.slice(sp1 + 1, sp2);
  if (!isToken(method) || !URI_SCHEME.test(uri)) return null;
  return { kind: 'request', method, uri };
}

function parseStartLine(line: string): StartLine {
  const usual = usualStartLine(line);
  if (usual !== null) return usual;
  const fail = (code: SipParseErrorCode, why: string, status = 400): never => {
    throw new SipParseError(code, `bad start line ${show(line)}: ${why}`, status);
  };
  if (SIP_SLASH.test(line)) {
    const m = RESPONSE_LINE.exec(line);
    if (m === null) return fail(E.BAD_START_LINE, 'expected SIP/2.0 SP Status-Code SP Reason-Phrase');
    const version = m[1] ?? '';
    if (!VERSION.test(version)) fail(E.BAD_START_LINE, `${show(version)} is not a SIP version`);
    if (version.toUpperCase() !== 'SIP/2.0') fail(E.BAD_VERSION, `SIP version ${version} is not supported (only SIP/2.0)`, 505);
    const code = m[2] ?? '';
    const status = STATUS_CODE.test(code) ? Number(code) : 0;
    if (status < 100 || status > 699) fail(E.BAD_STATUS, `status code ${show(code)} is not a number in 100-699`);
    return { kind: 'response', status, reason: decodeWireText((m[3] ?? '').trimEnd()) };
  }
  const m = REQUEST_LINE.exec(line);
  if (m === null) return fail(E.BAD_START_LINE, 'expected Method SP Request-URI SP SIP/2.0 (a request) or SIP/2.0 SP Status-Code (a response)');
  // Request-Line = Method SP Request-URI SP SIP-Version CRLF: one SP each, nothing after the version
  // (RFC 4475 §3.1.2.9 and §3.1.2.10 send more); the expression above reads such a line only to
  // say precisely what is wrong with it.
  if (m[2] !== ' ' || m[4] !== ' ') fail(E.BAD_START_LINE, 'Method, Request-URI and SIP-Version must be separated by exactly one SP');
  if (m[6] !== '') fail(E.BAD_START_LINE, 'whitespace after the SIP version');
  const method = m[1] ?? '';
  const uri = m[3] ?? '';
  const version = m[5] ?? '';
  if (!isToken(method)) fail(E.BAD_START_LINE, `method ${show(method)} is not a token`);
  if (!VERSION.test(version)) fail(E.BAD_START_LINE, `${show(version)} is not a SIP version`);
  if (version.toUpperCase() !== 'SIP/2.0') fail(E.BAD_VERSION, `SIP version ${version} is not supported (only SIP/2.0)`, 505);
  if (!URI_SCHEME.test(uri)) fail(E.BAD_URI, `Request-URI ${show(uri)} is not an absolute URI of ASCII characters`);
  return { kind: 'request', method, uri };
}

/**
 * Parses a header section (see the top of this file). With `partial` it only collects what it can
 * and skips the whole-message checks (mandatory headers, CSeq), to give an error its context.
 */
export function parseHead(text: string, limits: SipLimits, partial = false): Head {
  const n = text.length;
  const fields: HeaderField[] = [];
  let nl = text.indexOf('\n');
  if (nl < 0) nl = n;
  const startEnd = nl > 0 && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
  const startText = text.slice(0, startEnd);
  // one pass finds whether anything but printable ASCII and line ends is there at all (usually not)
  PLAIN.lastIndex = 0;
  PLAIN.test(text);
  const plainEnd = PLAIN.lastIndex;
  const badAt = plainEnd === n ? n : findBadChar(text, plainEnd);

  // A fault in the start line is thrown only after the headers are read, so that a 505 or 414 can
  // still be answered (it needs Via, From, To, Call-ID, CSeq).
  let pending: SipParseError | null = null;
  let start: StartLine | null = null;
  let isRequest = false;
  if (startEnd > limits.maxStartLine) {
    isRequest = looksLikeRequest(startText.slice(0, 100));
    pending = new SipParseError(
      E.START_LINE_TOO_LONG,
      `start line is ${startEnd} bytes, over the limit of ${limits.maxStartLine}` + (isRequest ? ' (Request-URI too long)' : ''),
      isRequest ? 414 : 513,
    );
  } else if (badAt < startEnd) {
    isRequest = looksLikeRequest(startText);
    pending = new SipParseError(E.BAD_CHARACTER, `start line has a control character (code ${text.charCodeAt(badAt)}) at offset ${badAt}`, 400);
  } else {
    try {
      start = parseStartLine(startText);
      isRequest = start.kind === 'request';
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      isRequest = looksLikeRequest(startText);
      pending = err;
    }
  }
  if (partial) pending = null; // context for another error: the start line's own fault does not matter
  const fail = (code: SipParseErrorCode, message: string, status = 400): never => {
    const headers = Headers.fromCanonical(fields);
    if (pending !== null) throw new SipParseError(pending.code, pending.message, pending.status, headers, isRequest);
    throw new SipParseError(code, message, status, headers, isRequest);
  };

  NON_ASCII.lastIndex = plainEnd;
  const hasNonAscii = plainEnd < n && NON_ASCII.test(text);
  const headersStart = nl + 1;
  let contentLengths: string[] | null = null;
  let count = 0;
  let line = 1;
  let nVia = 0;
  let nFrom = 0;
  let nTo = 0;
  let nCallId = 0;
  let nCSeq = 0;
  let nMaxForwards = 0;
  let nContentType = 0;
  let p = headersStart;
  while (p < n) {
    line++;
    if (isWs(text.charCodeAt(p))) fail(E.BAD_HEADER, `line ${line} starts with whitespace but there is no header field before it to continue`);
    // the logical field: this line and its continuation lines
    let eol = text.indexOf('\n', p);
    if (eol < 0) eol = n;
    let next = eol + 1;
    const folded = next < n && isWs(text.charCodeAt(next));
    while (next < n && isWs(text.charCodeAt(next))) {
      eol = text.indexOf('\n', next);
      if (eol < 0) eol = n;
      next = eol + 1;
    }
    if (++count > limits.maxHeaderCount) fail(E.TOO_MANY_HEADERS, `more than ${limits.maxHeaderCount} header fields`, 513);
    if (eol - p > limits.maxHeaderLine) fail(E.HEADER_TOO_LONG, `header field at line ${line} is ${eol - p} bytes, over the limit of ${limits.maxHeaderLine}`, 513);
    if (next - headersStart > limits.maxHeaderBytes) fail(E.HEADERS_TOO_LARGE, `header section is over the limit of ${limits.maxHeaderBytes} bytes`, 513);
    if (badAt < next) {
      fail(E.BAD_CHARACTER, `header field at line ${line} has a control character (code ${text.charCodeAt(badAt)}) at offset ${badAt - p}`);
    }
    // name HCOLON value: a name spelt as one seen before is recognised in place, else read and learnt
    let colon = text.indexOf(':', p);
    let known = colon >= 0 && colon < eol ? knownName(text, p, colon) : null;
    if (known === null) {
      let q = p;
      while (q < eol && isTokenChar(text.charCodeAt(q))) q++;
      const nameEnd = q;
      while (q < eol && isWs(text.charCodeAt(q))) q++;
      if (nameEnd === p || text.charCodeAt(q) !== 0x3a) {
        fail(E.BAD_HEADER, `line ${line} is not a header field (expected name ":" value): ${show(text.slice(p, Math.min(eol, p + 60)).trimEnd())}`);
      }
      known = learnName(text, p, nameEnd);
      colon = q;
    }
    const name = known.name;
    let value = unfold(text, colon + 1, eol, folded);
    if (hasNonAscii) value = decodeWireText(value);
    if (known.list && value.indexOf(',') >= 0) {
      let elements: string[] = [];
      try {
        elements = splitHeaderList(value);
      } catch (err) {
        fail(E.BAD_LIST, `header ${displayHeaderName(name)} at line ${line}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (elements.length === 0) fields.push({ name, value: '' });
      for (const el of elements) fields.push({ name, value: el });
    } else {
      fields.push({ name, value });
    }
    switch (name) {
      case 'via': nVia++; break;
      case 'from': nFrom++; break;
      case 'to': nTo++; break;
      case 'call-id': nCallId++; break;
      case 'cseq': nCSeq++; break;
      case 'max-forwards': nMaxForwards++; break;
      case 'content-type': nContentType++; break;
      case 'content-length': (contentLengths ??= []).push(value); break;
    }
    p = next;
  }
  const headers = Headers.fromCanonical(fields);
  if (partial) return { message: toMessage(start, isRequest, headers), contentLength: null };
  if (pending !== null || start === null) return fail(E.BAD_START_LINE, 'bad start line');

  let contentLength: number | null = null;
  if (contentLengths !== null) {
    for (const v of contentLengths) {
      if (!CONTENT_LENGTH.test(v)) fail(E.BAD_CONTENT_LENGTH, `Content-Length ${show(v)} is not a non-negative integer of at most 15 digits`);
      const len = Number(v);
      if (contentLength !== null && len !== contentLength) fail(E.BAD_CONTENT_LENGTH, `Content-Length is given twice with different values (${contentLength} and ${len})`);
      contentLength = len;
    }
  }
  const message = toMessage(start, true, headers);

  // Every request and response carries Via, From, To, Call-ID, CSeq (§8.1.1; a missing
  // Max-Forwards is tolerated); From, To, Call-ID, CSeq, Max-Forwards, Content-Type at most once.
  const missing: string[] = [];
  if (nVia === 0) missing.push('Via');
  if (nFrom === 0) missing.push('From');
  if (nTo === 0) missing.push('To');
  if (nCallId === 0) missing.push('Call-ID');
  if (nCSeq === 0) missing.push('CSeq');
  if (missing.length > 0) {
    fail(E.MISSING_HEADER, `${isRequest ? 'request' : 'response'} lacks the mandatory header${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  const dup = nFrom > 1 ? 'from' : nTo > 1 ? 'to' : nCallId > 1 ? 'call-id' : nCSeq > 1 ? 'cseq' : nMaxForwards > 1 ? 'max-forwards' : nContentType > 1 ? 'content-type' : null;
  if (dup !== null) fail(E.DUPLICATE_HEADER, `header ${displayHeaderName(dup)} appears ${fields.filter((f) => f.name === dup).length} times; it may appear once`);
  const cseqText = headers.get('cseq') ?? '';
  let cseqMethod = '';
  try {
    cseqMethod = parseCSeq(cseqText).method;
  } catch (err) {
    fail(E.BAD_CSEQ, err instanceof Error ? err.message : String(err));
  }
  if (message.kind === 'request' && cseqMethod !== message.method) {
    fail(E.BAD_CSEQ, `CSeq method ${show(cseqMethod)} does not match the request method ${show(message.method)}`);
  }
  const maxForwards = headers.get('max-forwards');
  if (maxForwards !== undefined && !MAX_FORWARDS.test(maxForwards)) fail(E.BAD_MAX_FORWARDS, `Max-Forwards ${show(maxForwards)} is not a number`);
  return { message, contentLength };
}

const EMPTY = Buffer.alloc(0);

/** The message of a start line (with an empty body); without one, an empty shell for error context. */
function toMessage(start: StartLine | null, isRequest: boolean, headers: Headers): SipMessage {
  if (start?.kind === 'request') return { kind: 'request', method: start.method, uri: start.uri, headers, body: EMPTY };
  if (start?.kind === 'response') return { kind: 'response', status: start.status, reason: start.reason, headers, body: EMPTY };
  return isRequest ? { kind: 'request', method: '', uri: '', headers, body: EMPTY } : { kind: 'response', status: 0, reason: '', headers, body: EMPTY };
}

/**
 * Index of the first control character or bare CR (not part of CRLF) from `from`, or the length. A
 * control character escaped inside a quoted string (quoted-pair = "\" %x00-09 / %x0B-0C / %x0E-7F,
 * RFC 3261 §25.1; RFC 4475 §3.1.1.2 sends \NUL, \BEL and \DEL in a display name) is valid and not
 * counted; CR and LF never are. Only reached when the section is not all plain text.
 */
function findBadChar(text: string, from: number): number {
  CONTROL.lastIndex = from;
  const m = CONTROL.exec(text);
  // from the line of the first one on, one pass that knows the quoted strings (linear, however
  // many escaped control characters a line holds)
  let bad = m === null ? text.length : unquotedControl(text, text.lastIndexOf('\n', m.index) + 1);
  for (let i = text.indexOf('\r', from); i >= 0 && i < bad; i = text.indexOf('\r', i + 1)) {
    if (text.charCodeAt(i + 1) !== 10) bad = i;
  }
  return bad;
}

/**
 * Index of the first control character from `from` (a line start) that is not the escaped
 * character of a quoted-pair inside a quoted string, or the length. Quoted strings are followed
 * within a line: a continuation line starts outside any (a quoted string across a fold is not seen
 * as one, which is only stricter). CR and LF are never escaped (bare CRs are found by the caller).
 */
function unquotedControl(text: string, from: number): number {
  let inQuote = false;
  for (let k = from; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x0a) {
      inQuote = false;
    } else if (c === 0x22) {
      inQuote = !inQuote;
    } else if (c === 0x5c) {
      const d = text.charCodeAt(k + 1);
      if (inQuote && d !== 0x0a && d !== 0x0d) k++;
    } else if ((c < 0x20 && c !== 0x09 && c !== 0x0d) || c === 0x7f) {
      return k;
    }
  }
  return text.length;
}

/** A header field name as spelt on the wire (lower-cased), with what the parser needs to know of it. */
interface KnownName {
  /** the spelling, lower-cased: always a valid token */
  readonly lower: string;
  /** its canonical name */
  readonly name: string;
  /** a list header (LIST_HEADERS) */
  readonly list: boolean;
}

// The names of the spellings seen, in 256 slots chosen by length and end characters: a hit costs a
// comparison of the characters in place, with no scan for the end of the token, no slicing and no
// lower-casing. Since only tokens are learnt, a name equal to one (case aside) is a token too.
// Learnt strings are copied, so that they do not keep a whole message's text alive.
const NO_NAME: KnownName = { lower: '', name: '', list: false };
const nameSlots: KnownName[] = new Array<KnownName>(256).fill(NO_NAME);

function nameSlot(text: string, p: number, q: number): number {
  return ((q - p) * 31 + (text.charCodeAt(p) | 0x20) * 7 + (text.charCodeAt(q - 1) | 0x20)) & 255;
}

/** The learnt name spelt (case aside) as the field name before the colon at `colon`, or null. */
function knownName(text: string, p: number, colon: number): KnownName | null {
  let q = colon;
  while (q > p && isWs(text.charCodeAt(q - 1))) q--; // HCOLON = *( SP / HTAB ) ":"
  const len = q - p;
  if (len === 0) return null;
  const known = nameSlots[nameSlot(text, p, q)] ?? NO_NAME;
  if (known.lower.length !== len) return null;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(p + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20; // A-Z: exactly what toLowerCase does to a token
    if (c !== known.lower.charCodeAt(i)) return null;
  }
  return known;
}

/** Learns the field name text[p, q), a token; it takes the place of the name in its slot. */
function learnName(text: string, p: number, q: number): KnownName {
  const lower = Buffer.from(text.slice(p, q).toLowerCase(), 'latin1').toString('latin1');
  const name = canonicalHeaderName(lower);
  const known: KnownName = { lower, name, list: LIST_HEADERS.has(name) };
  nameSlots[nameSlot(text, p, q)] = known;
  return known;
}

/** The field value between `from` and `to`: trimmed, each line end + leading whitespace made one SP. */
function unfold(text: string, from: number, to: number, folded: boolean): string {
  let a = from;
  let b = to;
  while (a < b && isWs(text.charCodeAt(a))) a++;
  while (b > a && isSpace(text.charCodeAt(b - 1))) b--;
  const v = text.slice(a, b);
  if (!folded) return v;
  return v.replace(/[ \t]*\r?\n[ \t]+/g, ' ').trim();
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Finds the one Content-Length of a header section by a plain scan, for the stream framer when the
 * section failed to parse: null if absent, malformed or given with different values.
 */
export function scanContentLength(text: string): number | null {
  let found: number | null = null;
  for (const m of text.matchAll(/\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?(?=\n|$)/gi)) {
    const v = m[1] ?? '';
    if (!CONTENT_LENGTH.test(v)) return null;
    if (found !== null && Number(v) !== found) return null;
    found = Number(v);
  }
  return found;
}

const LF_CRLF = Buffer.from('\n\r\n', 'latin1');
const LF_LF = Buffer.from('\n\n', 'latin1');

/** Most bytes a header section (start line, header fields, their line ends) may take. */
export function maxHeadBytes(limits: SipLimits): number {
  return limits.maxStartLine + 2 + limits.maxHeaderBytes;
}

/**
 * The header section of `data` from `pos`, as latin1 text up to and including the line end of the
 * last header field, and `body`, the index after the empty line; null if there is no empty line
 * within `max + 3` bytes.
 */
export function readHead(data: Buffer, pos: number, max: number): { text: string; body: number } | null {
  const a = data.indexOf(LF_CRLF, pos);
  if (a >= 0 && a - pos <= max) {
    const text = data.toString('latin1', pos, a + 1);
    const b = text.indexOf('\n\n'); // an LF-only empty line may come first
    return b < 0 ? { text, body: a + 3 } : { text: text.slice(0, b + 1), body: pos + b + 2 };
  }
  const b = data.indexOf(LF_LF, pos);
  if (b >= 0 && b - pos <= max) return { text: data.toString('latin1', pos, b + 1), body: b + 2 };
  return null;
}

/** Parses what complete lines there are, for the context of an error; a limit fault wins. */
export function contextOf(data: Buffer, pos: number, end: number, limits: SipLimits): Head | SipParseError {
  let text = data.toString('latin1', pos, end);
  text = text.slice(0, text.lastIndexOf('\n') + 1);
  try {
    return parseHead(text, limits, true);
  } catch (err) {
    if (err instanceof SipParseError) return err;
    throw err;
  }
}
