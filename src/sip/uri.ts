// SIP and SIPS URIs (RFC 3261 §19.1, ABNF in §25.1):
//
//   SIP-URI      = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
//   SIPS-URI     = "sips:" [ userinfo ] hostport uri-parameters [ headers ]
//   userinfo     = ( user / telephone-subscriber ) [ ":" password ] "@"
//   user         = 1*( unreserved / escaped / user-unreserved )
//   user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
//   password     = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
//   hostport     = host [ ":" port ];  host = hostname / IPv4address / IPv6reference
//   uri-parameter = pname [ "=" pvalue ];  paramchar = param-unreserved / unreserved / escaped
//   param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
//   headers      = "?" header *( "&" header );  header = hname "=" hvalue
//   hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
//
// Parsing is lenient where it cannot mislead (non-ASCII characters and "=" inside parameter values
// are taken as written); formatting is strict (escapes everything outside the grammar).

import { isIPv6 } from 'node:net';
import { HOST, UNRESERVED, charTable, decodeBytes, show, syntaxError } from './chars.ts';
import { SIP_PARSE_ERRORS } from './errors.ts';
import type { Params, SipUri } from './message.ts';

const E = SIP_PARSE_ERRORS;

// What may stand unescaped when formatting (no "%": a literal percent is always escaped).
const USER_OUT = charTable(UNRESERVED + '&=+$,;?/');
const PASSWORD_OUT = charTable(UNRESERVED + '&=+$,');
const PARAM_OUT = charTable(UNRESERVED + '[]/:&+$');
const HEADER_OUT = charTable(UNRESERVED + '[]/?:+$');
// What parsing accepts: the same plus "%" escapes (checked when unescaping); parameter values also
// take a bare "=" (seen in the wild with base64 values).
const USER_IN = charTable(UNRESERVED + '&=+$,;?/%');
const PASSWORD_IN = charTable(UNRESERVED + '&=+$,%');
const PNAME_IN = charTable(UNRESERVED + '[]/:&+$%');
const PVALUE_IN = charTable(UNRESERVED + '[]/:&+$%=');
const HEADER_IN = charTable(UNRESERVED + '[]/?:+$%');

function bad(uri: string, why: string): Error {
  return syntaxError(E.BAD_URI, `bad SIP URI ${show(uri)}: ${why}`);
}

/** Index after the run of characters of `table` (any non-ASCII character counts as allowed). */
function runOf(s: string, p: number, end: number, table: Uint8Array): number {
  while (p < end) {
    const c = s.charCodeAt(p);
    if (c < 128 && table[c] !== 1) break;
    p++;
  }
  return p;
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Decodes %HH escapes (the bytes are UTF-8, or ISO-8859-1 when not valid UTF-8). */
export function unescapeUriPart(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      const h = i + 2 < s.length ? hex(s.charCodeAt(i + 1)) : -1;
      const l = h >= 0 ? hex(s.charCodeAt(i + 2)) : -1;
      if (l < 0) throw syntaxError(E.BAD_URI, `bad escape in URI part ${show(s)} at offset ${i}: "%" must be followed by two hex digits`);
      bytes.push(h * 16 + l);
      i += 2;
    } else if (c < 128) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(s.slice(i, i + 1), 'utf8')) bytes.push(b);
    }
  }
  return decodeBytes(Buffer.from(bytes));
}

const HEX = '0123456789ABCDEF';

/** Escapes every byte of the UTF-8 form of `s` that `safe` does not allow. */
function escapePart(s: string, safe: Uint8Array): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || safe[c] !== 1) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (const b of Buffer.from(s.slice(i), 'utf8')) {
    out += b < 128 && safe[b] === 1 ? String.fromCharCode(b) : '%' + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

function parsePort(s: string, from: number, to: number, uri: string): number {
  const digits = s.slice(from, to);
  if (!/^[0-9]{1,5}$/.test(digits)) throw bad(uri, `port ${show(digits)} is not a number`);
  const port = Number(digits);
  if (port < 1 || port > 65535) throw bad(uri, `port ${port} is outside 1-65535`);
  return port;
}

/** Parses host [":" port] at p; returns the host (IPv6 without brackets, lower-cased) and the end. */
function parseHostPort(s: string, p: number, uri: string): { host: string; port: number | null; end: number } {
  let host: string;
  if (s.charCodeAt(p) === 0x5b /* [ */) {
    const close = s.indexOf(']', p);
    if (close < 0) throw bad(uri, `IPv6 reference at offset ${p} has no closing "]"`);
    host = s.slice(p + 1, close).toLowerCase();
    if (!isIPv6(host)) throw bad(uri, `${show(host)} is not an IPv6 address`);
    p = close + 1;
  } else {
    const end = runOf(s, p, s.length, HOST);
    host = s.slice(p, end).toLowerCase();
    if (host.length === 0) throw bad(uri, `missing host at offset ${p}`);
    if (host.startsWith('.') || host.includes('..')) throw bad(uri, `host ${show(host)} has an empty label`);
    p = end;
  }
  let port: number | null = null;
  if (s.charCodeAt(p) === 0x3a /* : */) {
    let q = p + 1;
    while (q < s.length && s.charCodeAt(q) >= 48 && s.charCodeAt(q) <= 57) q++;
    port = parsePort(s, p + 1, q, uri);
    p = q;
  }
  return { host, port, end: p };
}

/**
 * Parses a `sip:` or `sips:` URI. Other schemes throw SIP_UNSUPPORTED_URI_SCHEME (status 416).
 * User, password, parameters and URI headers are unescaped; parameter names are lower-cased; a
 * parameter or URI header given twice keeps its first value.
 */
export function parseUri(text: string): SipUri {
  const uri = text.trim();
  const colon = uri.indexOf(':');
  const scheme = colon > 0 ? uri.slice(0, colon).toLowerCase() : '';
  if (scheme !== 'sip' && scheme !== 'sips') {
    if (/^[a-z][a-z0-9+.-]*$/.test(scheme)) {
      throw syntaxError(E.UNSUPPORTED_URI_SCHEME, `URI scheme ${show(scheme)} is not supported here (only sip and sips): ${show(uri)}`, 416);
    }
    throw bad(uri, 'it does not start with "sip:" or "sips:"');
  }
  const n = uri.length;
  let p = colon + 1;
  let user: string | null = null;
  let password: string | null = null;
  const at = uri.indexOf('@', p);
  if (at >= 0) {
    const userEnd = runOf(uri, p, at, USER_IN);
    if (userEnd === p) throw bad(uri, 'empty user part before "@"');
    if (userEnd < at && uri.charCodeAt(userEnd) !== 0x3a) throw bad(uri, `character ${show(uri[userEnd] ?? '')} at offset ${userEnd} is not allowed in the user part`);
    user = unescapeUriPart(uri.slice(p, userEnd));
    if (userEnd < at) {
      const passEnd = runOf(uri, userEnd + 1, at, PASSWORD_IN);
      if (passEnd < at) throw bad(uri, `character ${show(uri[passEnd] ?? '')} at offset ${passEnd} is not allowed in the password`);
      password = unescapeUriPart(uri.slice(userEnd + 1, at));
    }
    p = at + 1;
  }
  const hp = parseHostPort(uri, p, uri);
  p = hp.end;
  const params: Params = new Map();
  while (p < n && uri.charCodeAt(p) === 0x3b /* ; */) {
    const nameEnd = runOf(uri, p + 1, n, PNAME_IN);
    const name = unescapeUriPart(uri.slice(p + 1, nameEnd)).toLowerCase();
    let value: string | null = null;
    p = nameEnd;
    if (uri.charCodeAt(p) === 0x3d /* = */) {
      const valueEnd = runOf(uri, p + 1, n, PVALUE_IN);
      value = unescapeUriPart(uri.slice(p + 1, valueEnd));
      p = valueEnd;
    }
    if (name.length === 0) {
      if (value !== null) throw bad(uri, `parameter without a name at offset ${nameEnd}`);
      continue; // ";;" or a trailing ";": nothing to keep
    }
    if (!params.has(name)) params.set(name, value);
  }
  const headers = new Map<string, string>();
  if (p < n && uri.charCodeAt(p) === 0x3f /* ? */) {
    do {
      const nameEnd = runOf(uri, p + 1, n, HEADER_IN);
      if (nameEnd === p + 1 || uri.charCodeAt(nameEnd) !== 0x3d) throw bad(uri, `URI header at offset ${p + 1} must be name=value`);
      const valueEnd = runOf(uri, nameEnd + 1, n, HEADER_IN);
      const name = unescapeUriPart(uri.slice(p + 1, nameEnd));
      if (!headers.has(name)) headers.set(name, unescapeUriPart(uri.slice(nameEnd + 1, valueEnd)));
      p = valueEnd;
    } while (p < n && uri.charCodeAt(p) === 0x26 /* & */);
  }
  if (p < n) throw bad(uri, `unexpected character ${show(uri[p] ?? '')} at offset ${p}`);
  return { scheme, user, password, host: hp.host, port: hp.port, params, headers };
}

/** Writes a SIP URI, escaping what the grammar does not allow unescaped; IPv6 goes back in brackets. */
export function formatUri(uri: SipUri): string {
  let out = uri.scheme + ':';
  if (uri.user) {
    out += escapePart(uri.user, USER_OUT);
    if (uri.password !== null) out += ':' + escapePart(uri.password, PASSWORD_OUT);
    out += '@';
  }
  const v6 = uri.host.includes(':');
  if (v6 ? !isIPv6(uri.host.replace(/^\[(.*)\]$/, '$1')) : runOf(uri.host, 0, uri.host.length, HOST) !== uri.host.length || uri.host === '') {
    throw syntaxError(E.BAD_URI, `cannot write URI: host ${show(uri.host)} is not a host name or IP address`);
  }
  out += v6 && !uri.host.startsWith('[') ? `[${uri.host}]` : uri.host;
  if (uri.port !== null) {
    if (!Number.isInteger(uri.port) || uri.port < 1 || uri.port > 65535) throw syntaxError(E.BAD_URI, `cannot write URI: port ${uri.port} is outside 1-65535`);
    out += ':' + String(uri.port);
  }
  for (const [name, value] of uri.params) {
    out += ';' + escapePart(name, PARAM_OUT);
    if (value !== null) out += '=' + escapePart(value, PARAM_OUT);
  }
  let sep = '?';
  for (const [name, value] of uri.headers) {
    out += sep + escapePart(name, HEADER_OUT) + '=' + escapePart(value, HEADER_OUT);
    sep = '&';
  }
  return out;
}

/** URI parameters that make two SIP URIs differ when only one of them has it (RFC 3261 §19.1.4). */
const DECISIVE_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'] as const;

/**
 * RFC 3261 §19.1.4 URI comparison: scheme, user and password exactly, host case-insensitively (the
 * parser lower-cases it), the port only as written (an omitted port does not equal :5060), the
 * parameters user, ttl, method, maddr and transport when either URI has them, other parameters
 * when both have them (case-insensitively), and every URI header.
 */
export function sameUri(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme || a.user !== b.user || a.password !== b.password || a.host !== b.host || a.port !== b.port) return false;
  for (const name of DECISIVE_PARAMS) {
    if (a.params.has(name) !== b.params.has(name)) return false;
  }
  for (const [name, value] of a.params) {
    if (!b.params.has(name)) continue;
    if ((value ?? '').toLowerCase() !== (b.params.get(name) ?? '').toLowerCase()) return false;
  }
  if (a.headers.size !== b.headers.size) return false;
  for (const [name, value] of a.headers) if (b.headers.get(name) !== value) return false;
  return true;
}
