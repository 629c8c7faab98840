// Authorization / Proxy-Authorization and WWW-Authenticate / Proxy-Authenticate values
// (RFC 3261 §25.1, §22; Digest per RFC 2617 and RFC 7616):
//
//   challenge   = ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
//   credentials = ("Digest" LWS digest-response) / other-response
//   auth-param  = auth-param-name EQUAL ( token / quoted-string )
//
// Parsed values are unquoted. When formatting, the parameters that RFC 2617/7616 define as tokens
// stay unquoted (algorithm, nc, stale, charset, userhash, and qop in credentials); everything else,
// qop in a challenge included (a quoted list), is quoted.

import { isToken, isWs, readQuoted, show, skipWs, syntaxError, tokenEnd } from './chars.ts';
import { SIP_PARSE_ERRORS } from './errors.ts';
import type { AuthField } from './message.ts';

const E = SIP_PARSE_ERRORS;

/** What ends an unquoted value: white space, a comma, a quote or "=". */
function endsUnquoted(c: number): boolean {
  return c === 0x2c || c === 0x22 || c === 0x3d || isWs(c);
}

function bad(text: string, why: string): Error {
  return syntaxError(E.BAD_AUTH, `bad authentication header ${show(text)}: ${why}`);
}

/**
 * Parses `Scheme name=value, name="quoted value", …`. Names are lower-cased and must not repeat
 * (a repeated Digest parameter is an attack or a bug, never meaningful).
 */
export function parseAuthField(text: string): AuthField {
  const s = text;
  const n = s.length;
  let p = skipWs(s, 0);
  const schemeEnd = tokenEnd(s, p);
  if (schemeEnd === p) throw bad(text, 'it must start with an authentication scheme such as Digest');
  const scheme = s.slice(p, schemeEnd);
  const params = new Map<string, string>();
  p = schemeEnd;
  if (p < n && !isWs(s.charCodeAt(p))) throw bad(text, `expected a space after the scheme at offset ${p}`);
  p = skipWs(s, p);
  while (p < n) {
    if (s.charCodeAt(p) === 0x2c) {
      p = skipWs(s, p + 1); // an empty list element
      continue;
    }
    const nameEnd = tokenEnd(s, p);
    if (nameEnd === p) throw bad(text, `expected a parameter name at offset ${p}`);
    const name = s.slice(p, nameEnd).toLowerCase();
    p = skipWs(s, nameEnd);
    if (s.charCodeAt(p) !== 0x3d) throw bad(text, `parameter ${show(name)} has no "=" value (token68 credentials are not supported)`);
    p = skipWs(s, p + 1);
    let value: string;
    if (s.charCodeAt(p) === 0x22) {
      const q = readQuoted(s, p);
      if (q === null) throw bad(text, `the quoted value at offset ${p} has no closing quote`);
      value = q.value;
      p = q.end;
    } else {
      // a token per the grammar; leniently anything up to a comma or space but a quote or "="
      // (e.g. an unquoted uri=sip:…); "=" would be a token68 value (Basic, Bearer), not supported
      const start = p;
      while (p < n && !endsUnquoted(s.charCodeAt(p))) p++;
      if (p === start) throw bad(text, `parameter ${show(name)} has an empty value`);
      value = s.slice(start, p);
    }
    if (params.has(name)) throw bad(text, `parameter ${show(name)} is given twice`);
    params.set(name, value);
    p = skipWs(s, p);
    if (p < n && s.charCodeAt(p) !== 0x2c) throw bad(text, `expected "," at offset ${p}`);
  }
  return { scheme, params };
}

const TOKEN_PARAMS = new Set(['algorithm', 'nc', 'stale', 'charset', 'userhash']);

/**
 * Writes an auth field. `kind` decides how qop is written; by default a field with `response` or
 * `username` is credentials, anything else a challenge.
 */
export function formatAuthField(f: AuthField, kind?: 'challenge' | 'credentials'): string {
  if (!isToken(f.scheme)) throw bad(f.scheme, 'the scheme must be a token');
  const credentials = kind !== undefined ? kind === 'credentials' : f.params.has('response') || f.params.has('username');
  const parts: string[] = [];
  for (const [name, value] of f.params) {
    if (!isToken(name)) throw bad(name, 'a parameter name must be a token');
    const bare = TOKEN_PARAMS.has(name) || (name === 'qop' && credentials);
    if (bare && isToken(value)) parts.push(`${name}=${value}`);
    else {
      if (/[\r\n\0]/.test(value)) throw bad(value, `cannot write parameter ${name}: CR, LF and NUL are not allowed`);
      parts.push(`${name}="${value.replace(/[\\"]/g, '\\$&')}"`);
    }
  }
  return parts.length > 0 ? `${f.scheme} ${parts.join(', ')}` : f.scheme;
}
