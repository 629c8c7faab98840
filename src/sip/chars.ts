// Character classes of RFC 3261 §25.1 as lookup tables, and the small helpers every grammar file
// shares. Internal to src/sip: not exported from the index.

import { isUtf8 } from 'node:buffer';
import { SipParseError } from './errors.ts';
import type { SipParseErrorCode } from './errors.ts';

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A 128-entry table: 1 for each ASCII character in `chars`. */
export function charTable(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
export const TOKEN = charTable(ALNUM + "-.!%*_+`'~");
// unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
export const UNRESERVED = ALNUM + "-_.!~*'()";
// hostname characters (the underscore is not in §25.1 but is common in the wild)
export const HOST = charTable(ALNUM + '-._');

export const SP = 0x20;
export const HT = 0x09;

export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** True when `s` is a non-empty RFC 3261 token (method names, header names, parameter names…). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

export function isWs(c: number): boolean {
  return c === SP || c === HT;
}

export function skipWs(s: string, p: number): number {
  while (p < s.length && isWs(s.charCodeAt(p))) p++;
  return p;
}

/** Index after the run of token characters starting at p. */
export function tokenEnd(s: string, p: number): number {
  while (p < s.length && isTokenChar(s.charCodeAt(p))) p++;
  return p;
}

/** Input quoted for an error message: JSON escapes show control characters, long input is cut. */
export function show(s: string, max = 80): string {
  return JSON.stringify(s.length > max ? s.slice(0, max) + '…' : s);
}

/** A 400 SipParseError (or another status) for a grammar fault. */
export function syntaxError(code: SipParseErrorCode, message: string, status = 400): SipParseError {
  return new SipParseError(code, message, status);
}

/**
 * Reads the quoted-string whose opening quote is at p (§25.1: quoted-pair = "\" CHAR): its text
 * without quotes and escapes and the index after the closing quote; null when it is not closed.
 */
export function readQuoted(s: string, p: number): { value: string; end: number } | null {
  let value = '';
  let from = p + 1;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return { value: value + s.slice(from, i), end: i + 1 };
    if (c === 0x5c) {
      if (i + 1 >= s.length) break;
      value += s.slice(from, i);
      from = i + 1; // keep the escaped character itself
      i++;
    }
  }
  return null;
}

const NON_ASCII = /[\u0080-\u00ff]/;

/**
 * Header text is read from the wire as latin1 (one char per byte). Where bytes >= 0x80 appear they
 * are UTF-8 (RFC 3261 §7.3.1: TEXT-UTF8); a run that is not valid UTF-8 is taken as ISO-8859-1,
 * which is what old clients send in display names, so it is transcoded rather than mangled into
 * U+FFFD.
 */
export function decodeWireText(latin1: string): string {
  if (!NON_ASCII.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : latin1;
}

/** Bytes to text: UTF-8 when valid, else ISO-8859-1 (same rule as decodeWireText). */
export function decodeBytes(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/**
 * A copy of `text` that does not keep the message it came from alive. Header values are slices of
 * the whole message's text, so a short string kept for long (a transaction key for Timer J, a nonce
 * in the replay window) would otherwise pin the message: ~800 bytes instead of ~80 per REGISTER.
 * Prefixing makes a new string that V8 flattens (copies) on slicing; the slice then points into
 * that short copy only.
 */
export function detach(text: string): string {
  return (' ' + text).slice(1);
}
