// The structured pieces of SIP header values (RFC 3261 §7.3, §20, ABNF in §25.1), parsed on demand.
// Everything here is pure and throws SipParseError (status 400 unless said) on bad input.
//
//   quoted-string  = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
//   quoted-pair    = "\" (%x00-09 / %x0B-0C / %x0E-7F)
//   generic-param  = token [ EQUAL gen-value ];  gen-value = token / host / quoted-string
//   name-addr      = [ display-name ] LAQUOT addr-spec RAQUOT;  display-name = *(token LWS) / quoted-string
//   via-parm       = sent-protocol LWS sent-by *( SEMI via-params )
//   sent-protocol  = protocol-name SLASH protocol-version SLASH transport;  SLASH = SWS "/" SWS
//   CSeq           = 1*DIGIT LWS Method
//   media-type     = m-type SLASH m-subtype *(SEMI m-parameter)
//
// Header values reach this module already unfolded (the parser replaced each CRLF + WSP by SP).

import { isIPv6 } from 'node:net';
import { HOST, isToken, isWs, readQuoted, show, skipWs, syntaxError, tokenEnd } from './chars.ts';
import { SIP_PARSE_ERRORS } from './errors.ts';
import type { CSeq, NameAddr, Params, Via } from './message.ts';

export { parseUri, formatUri, sameUri, unescapeUriPart } from './uri.ts';
export { parseAuthField, formatAuthField } from './auth-field.ts';
export { isToken } from './chars.ts';

const E = SIP_PARSE_ERRORS;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Reads the quoted-string whose opening quote is at p: its unescaped text and the index after it. */
export function readQuotedString(s: string, p: number): { value: string; end: number } {
  const q = readQuoted(s, p);
  if (q === null) throw unclosedQuote(s, p, 0);
  return q;
}

/** The error for a quoted string at p of `s` with no closing quote, told within the text from `start`. */
function unclosedQuote(s: string, p: number, start: number): Error {
  return syntaxError(E.BAD_QUOTED_STRING, `quoted string starting at offset ${p - start} of ${show(s.slice(start))} has no closing quote`);
}

/** Puts `s` in double quotes, escaping `\` and `"`. CR, LF and NUL cannot be quoted (§25.1). */
export function quoteString(s: string): string {
  if (/[\r\n\0]/.test(s)) throw syntaxError(E.BAD_QUOTED_STRING, `cannot quote ${show(s)}: CR, LF and NUL are not allowed in a quoted string`);
  return '"' + s.replace(/[\\"]/g, '\\$&') + '"';
}

/** The text of a quoted-string without quotes and escapes; text that is not quoted is returned trimmed. */
export function unquoteString(s: string): string {
  const t = s.trim();
  if (t.charCodeAt(0) !== DQUOTE) return t;
  const q = readQuotedString(t, 0);
  if (q.end !== t.length) throw syntaxError(E.BAD_QUOTED_STRING, `unexpected text after the closing quote in ${show(s)}`);
  return q.value;
}

function isQuotedString(s: string): boolean {
  return s.charCodeAt(0) === DQUOTE && readQuoted(s, 0)?.end === s.length;
}

/** Characters taken in an unquoted parameter value: anything but separators, quotes, brackets, space. */
function isGenValueChar(c: number): boolean {
  return c > 0x20 && c !== 0x3b && c !== 0x2c && c !== DQUOTE && c !== 0x3c && c !== 0x3e && c !== 0x7f;
}

/**
 * Parses header parameters `;name=value;flag` (the leading ";" may be left out). Names are
 * lower-cased; values are kept as written, a quoted value with its quotes (quoting can matter, e.g.
 * RFC 3840 feature tags; use unquoteString); a flag has value null; a repeated name keeps its first
 * value. Whitespace around ";" and "=" is allowed (SEMI, EQUAL).
 */
export function parseParams(text: string): Params {
  return readParams(text, 0);
}

/**
 * The parameters from `start` to the end of `s`, read in place (no slice of the header value);
 * offsets in errors count from `start` and the text shown is what follows it, as if sliced.
 */
function readParams(s: string, start: number): Params {
  const params: Params = new Map();
  const n = s.length;
  let p = skipWs(s, start);
  let first = true;
  while (p < n) {
    if (s.charCodeAt(p) === 0x3b) p = skipWs(s, p + 1);
    else if (!first) throw syntaxError(E.BAD_PARAMS, `expected ";" at offset ${p - start} of parameters ${show(s.slice(start))}`);
    first = false;
    const nameEnd = tokenEnd(s, p);
    const name = s.slice(p, nameEnd).toLowerCase();
    p = skipWs(s, nameEnd);
    let value: string | null = null;
    if (s.charCodeAt(p) === 0x3d) {
      p = skipWs(s, p + 1);
      if (s.charCodeAt(p) === DQUOTE) {
        const q = readQuoted(s, p);
        if (q === null) throw unclosedQuote(s, p, start);
        value = s.slice(p, q.end);
        p = q.end;
      } else {
        const valueStart = p;
        while (p < n && isGenValueChar(s.charCodeAt(p))) p++;
        value = s.slice(valueStart, p);
      }
      p = skipWs(s, p);
    }
    if (name.length === 0) {
      if (value !== null || (p < n && s.charCodeAt(p) !== 0x3b)) {
        throw syntaxError(E.BAD_PARAMS, `expected a parameter name at offset ${nameEnd - start} of ${show(s.slice(start))}`);
      }
      continue; // an empty parameter (";;"): nothing to keep
    }
    if (p < n && s.charCodeAt(p) !== 0x3b) {
      throw syntaxError(E.BAD_PARAMS, `unexpected ${show(s[p] ?? '')} at offset ${p - start} of parameters ${show(s.slice(start))}`);
    }
    if (!params.has(name)) params.set(name, value);
  }
  return params;
}

/** Parameters that must start with ";" at p (after optional whitespace), as after a URI or a host. */
function trailingParams(s: string, p: number): Params {
  const q = skipWs(s, p);
  if (q >= s.length) return new Map();
  if (s.charCodeAt(q) !== 0x3b) throw syntaxError(E.BAD_PARAMS, `unexpected ${show(s[q] ?? '')} at offset ${q}: expected ";" and parameters`);
  return readParams(s, q);
}

/** Writes `;name=value;flag`. A value that is neither a plain gen-value nor already quoted is quoted. */
export function formatParams(params: Params): string {
  let out = '';
  for (const [name, value] of params) {
    if (!isToken(name)) throw syntaxError(E.BAD_PARAMS, `parameter name ${show(name)} is not a token`);
    out += ';' + name;
    if (value === null) continue;
    let plain = true;
    for (let i = 0; i < value.length && plain; i++) plain = isGenValueChar(value.charCodeAt(i));
    out += '=' + (plain || isQuotedString(value) ? value : quoteString(value));
  }
  return out;
}

/**
 * Splits a comma-separated header value into its trimmed elements: commas inside quoted strings
 * and inside <...> do not split (§7.3.1). Empty elements are dropped.
 */
export function splitHeaderList(value: string): string[] {
  const out: string[] = [];
  const n = value.length;
  let start = 0;
  if (value.indexOf('"') < 0 && value.indexOf('<') < 0) {
    for (;;) {
      const comma = value.indexOf(',', start);
      pushTrimmed(out, value, start, comma < 0 ? n : comma);
      if (comma < 0) return out;
      start = comma + 1;
    }
  }
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === BACKSLASH) i++;
      else if (c === DQUOTE) inQuote = false;
    } else if (c === DQUOTE) inQuote = true;
    else if (c === 0x3c) inAngle = true;
    else if (c === 0x3e) inAngle = false;
    else if (c === 0x2c && !inAngle) {
      pushTrimmed(out, value, start, i);
      start = i + 1;
    }
  }
  if (inQuote) throw syntaxError(E.BAD_LIST, `unterminated quoted string in list ${show(value)}`);
  if (inAngle) throw syntaxError(E.BAD_LIST, `"<" without ">" in list ${show(value)}`);
  pushTrimmed(out, value, start, n);
  return out;
}

function pushTrimmed(out: string[], s: string, a: number, b: number): void {
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  if (b > a) out.push(s.slice(a, b));
}

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/;
const QUOTE_OR_ANGLE = /["<>]/;

// Errors are made by functions rather than closures made on each call: most input is fine.
function badAddress(text: string, why: string): Error {
  return syntaxError(E.BAD_NAME_ADDR, `bad address ${show(text)}: ${why}`);
}

/**
 * Parses name-addr or addr-spec with header parameters (From, To, Contact, Route…). For a bare
 * addr-spec the `;params` belong to the header, not the URI (§20.10). The URI is kept as written.
 */
export function parseNameAddr(text: string): NameAddr {
  const s = text;
  const n = s.length;
  let p = skipWs(s, 0);
  let displayName: string | null = null;
  let uri: string;
  if (s.charCodeAt(p) === DQUOTE) {
    const q = readQuotedString(s, p);
    displayName = q.value;
    p = skipWs(s, q.end);
    if (s.charCodeAt(p) !== 0x3c) throw badAddress(text, 'a quoted display name must be followed by <URI>');
  }
  // name-addr when a "<" comes before any ";" (a ";" first starts the parameters of an addr-spec,
  // whose quoted values may hold a "<", as in +sip.instance="<urn:…>")
  const lt = s.indexOf('<', p);
  const semi = displayName === null ? s.indexOf(';', p) : -1;
  if (lt >= 0 && (semi < 0 || lt < semi)) {
    if (displayName === null) {
      const name = s.slice(p, lt).trim();
      if (QUOTE_OR_ANGLE.test(name)) throw badAddress(text, `display name ${show(name)} has a quote or angle bracket; quote it`);
      if (name !== '') displayName = name;
    }
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw badAddress(text, '"<" without ">"');
    uri = s.slice(lt + 1, gt).trim();
    p = gt + 1;
  } else {
    let end = s.indexOf(';', p);
    if (end < 0) end = n;
    uri = s.slice(p, end).trim();
    p = end;
  }
  if (!ABSOLUTE_URI.test(uri)) throw badAddress(text, `${show(uri)} is not an absolute URI (scheme:rest, no spaces)`);
  let params: Params;
  try {
    params = trailingParams(s, p);
  } catch (err) {
    throw badAddress(text, err instanceof Error ? err.message : String(err));
  }
  return { displayName, uri, params };
}

/** Writes a name-addr: always `<uri>`, a display name always quoted (safe for any text). */
export function formatNameAddr(na: NameAddr): string {
  if (!ABSOLUTE_URI.test(na.uri)) throw syntaxError(E.BAD_NAME_ADDR, `cannot write address: ${show(na.uri)} is not an absolute URI`);
  const addr = '<' + na.uri + '>';
  return (na.displayName !== null ? quoteString(na.displayName) + ' ' + addr : addr) + formatParams(na.params);
}

function badVia(text: string, why: string): Error {
  return syntaxError(E.BAD_VIA, `bad Via ${show(text)}: ${why}`);
}

/** Parses host [":" port] (sent-by of Via); the host as written, IPv6 kept in brackets. */
function parseSentBy(s: string, p: number): { host: string; port: number | null; end: number } {
  let end: number;
  if (s.charCodeAt(p) === 0x5b) {
    end = s.indexOf(']', p) + 1;
    if (end === 0 || !isIPv6(s.slice(p + 1, end - 1))) throw badVia(s, `bad IPv6 reference at offset ${p}`);
  } else {
    end = p;
    while (end < s.length && s.charCodeAt(end) < 128 && HOST[s.charCodeAt(end)] === 1) end++;
    if (end === p) throw badVia(s, `missing host at offset ${p}`);
  }
  const host = s.slice(p, end);
  let port: number | null = null;
  let q = skipWs(s, end);
  if (s.charCodeAt(q) === 0x3a) {
    q = skipWs(s, q + 1);
    const start = q;
    let value = 0;
    for (let c = s.charCodeAt(q); c >= 48 && c <= 57; c = s.charCodeAt(++q)) value = value * 10 + (c - 48);
    port = q > start && q - start <= 5 ? value : -1;
    if (port < 1 || port > 65535) throw badVia(s, `port ${show(s.slice(start, q))} is not a number in 1-65535`);
    end = q;
  }
  return { host, port, end };
}

/** Index after the token at p of a Via's sent-protocol; throws when there is none. */
function viaTokenEnd(s: string, p: number): number {
  const end = tokenEnd(s, p);
  if (end === p) throw badVia(s, `expected a token at offset ${p}`);
  return end;
}

/** Index after the "/" at p of a sent-protocol and the whitespace after it; throws when it is not there. */
function afterSlash(s: string, p: number): number {
  if (s.charCodeAt(p) !== 0x2f) throw badVia(s, `expected "/" at offset ${p} (protocol/version/transport)`);
  return skipWs(s, p + 1);
}

/** Transports as usually written (upper case), taken without slicing and upper-casing. */
const TRANSPORTS = ['UDP', 'TCP', 'TLS', 'WS', 'WSS', 'SCTP'];
const RPORT = /^[0-9]{1,5}$/;

/** Parses one via-parm (the parser has split the Via list). Transport upper-cased; host as written. */
export function parseVia(text: string): Via {
  const s = text;
  let p = skipWs(s, 0);
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport; the usual "SIP/2.0/" is
  // matched as a whole, which reads it exactly as the token-by-token path would
  let protocol = 'SIP/2.0';
  if (s.startsWith('SIP/2.0/', p)) {
    p = skipWs(s, p + 8);
  } else {
    const nameEnd = viaTokenEnd(s, p);
    const name = s.slice(p, nameEnd);
    p = afterSlash(s, skipWs(s, nameEnd));
    const versionEnd = viaTokenEnd(s, p);
    protocol = `${name.toUpperCase()}/${s.slice(p, versionEnd)}`;
    p = afterSlash(s, skipWs(s, versionEnd));
  }
  const transportEnd = viaTokenEnd(s, p);
  let transport: string | undefined;
  for (const t of TRANSPORTS) if (t.length === transportEnd - p && s.startsWith(t, p)) transport = t;
  transport ??= s.slice(p, transportEnd).toUpperCase();
  p = transportEnd;
  if (!isWs(s.charCodeAt(p))) throw badVia(s, `expected a space before the host at offset ${p}`);
  const sentBy = parseSentBy(s, skipWs(s, p));
  let params: Params;
  try {
    params = trailingParams(s, sentBy.end);
  } catch (err) {
    throw badVia(s, err instanceof Error ? err.message : String(err));
  }
  const rport = params.get('rport'); // RFC 3581: a flag in requests, a port in responses
  if (rport !== undefined && rport !== null && !RPORT.test(rport)) throw badVia(s, `rport ${show(rport)} is not a port`);
  return { protocol, transport, host: sentBy.host, port: sentBy.port, params };
}

/** Writes a via-parm: `SIP/2.0/UDP host:port;params`. */
export function formatVia(v: Via): string {
  const host = v.host.includes(':') && !v.host.startsWith('[') ? `[${v.host}]` : v.host;
  if (!/^[!-~]+\/[!-~]+$/.test(v.protocol) || !isToken(v.transport) || !/^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$/.test(host)) {
    throw syntaxError(E.BAD_VIA, `cannot write Via: protocol ${show(v.protocol)}, transport ${show(v.transport)} or host ${show(v.host)} is malformed`);
  }
  return `${v.protocol}/${v.transport} ${host}${v.port !== null ? ':' + String(v.port) : ''}${formatParams(v.params)}`;
}

/** Parses `CSeq: 1*DIGIT LWS Method`; the number must fit in 32 bits unsigned (§8.1.1.5). */
export function parseCSeq(text: string): CSeq {
  const s = text;
  let p = skipWs(s, 0);
  const start = p;
  while (p < s.length && s.charCodeAt(p) >= 48 && s.charCodeAt(p) <= 57) p++;
  const digits = s.slice(start, p);
  const seq = digits.length > 0 && digits.length <= 10 ? Number(digits) : -1;
  if (seq < 0 || seq > 0xffffffff) throw syntaxError(E.BAD_CSEQ, `bad CSeq ${show(text)}: the sequence number must be 0-4294967295`);
  if (!isWs(s.charCodeAt(p))) throw syntaxError(E.BAD_CSEQ, `bad CSeq ${show(text)}: expected a space and a method after the number`);
  p = skipWs(s, p);
  const end = tokenEnd(s, p);
  if (end === p || skipWs(s, end) !== s.length) throw syntaxError(E.BAD_CSEQ, `bad CSeq ${show(text)}: the method must be one token`);
  return { seq, method: s.slice(p, end) };
}

/**
 * Parses a Content-Type (media-type). Type and subtype are lower-cased; parameter names too, and
 * parameter values are unquoted (in MIME, quoting is not significant).
 */
export function parseContentType(text: string): { type: string; subtype: string; params: Params } {
  const s = text;
  let p = skipWs(s, 0);
  const typeEnd = tokenEnd(s, p);
  const type = s.slice(p, typeEnd);
  p = skipWs(s, typeEnd);
  const slash = s.charCodeAt(p) === 0x2f;
  p = skipWs(s, p + 1);
  const subEnd = tokenEnd(s, p);
  if (type === '' || !slash || subEnd === p) throw syntaxError(E.BAD_CONTENT_TYPE, `bad Content-Type ${show(text)}: expected type/subtype`);
  let params: Params;
  try {
    params = trailingParams(s, subEnd);
  } catch (err) {
    throw syntaxError(E.BAD_CONTENT_TYPE, `bad Content-Type ${show(text)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const [k, v] of params) if (v !== null) params.set(k, unquoteString(v));
  return { type: type.toLowerCase(), subtype: s.slice(p, subEnd).toLowerCase(), params };
}
