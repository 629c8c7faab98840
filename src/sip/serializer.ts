// Writing a SIP message to bytes (RFC 3261 §7): the start line, each header field on its own line
// with its display spelling, a Content-Length that is always right for the body (any written by
// the application is replaced), the empty line, the body. Header text is written as UTF-8.
//
// The serializer refuses (SIP_CANNOT_SERIALIZE) what would mis-frame on the wire: CR, LF or NUL (but
// an escaped one) in a value, a header name or method that is not a token, a Request-URI with spaces, a bad status.

import { isToken, show } from './chars.ts';
import { SIP_PARSE_ERRORS, SipParseError } from './errors.ts';
import { displayHeaderName } from './message.ts';
import type { SipMessage } from './message.ts';

const E = SIP_PARSE_ERRORS;
// A NUL escaped as a quoted-pair ("\" NUL, RFC 3261 §25.1) is valid in a header value, and a response
// copies From and To as received (RFC 4475 §3.1.1.2 sends one); any other NUL is refused.
const UNSAFE = /[\r\n]|(?<!\\)\0/;
const URI = /^[\x21-\x7e]+$/;

/** Display spellings of the names seen, which are few; only valid names are remembered. */
const display = new Map<string, string>();

function fieldName(name: string): string {
  let d = display.get(name);
  if (d === undefined) {
    if (!isToken(name)) throw refuse(`header name ${show(name)} is not a token`);
    d = displayHeaderName(name);
    if (display.size < 512) display.set(name, d);
  }
  return d;
}

function refuse(why: string): SipParseError {
  return new SipParseError(E.CANNOT_SERIALIZE, `cannot serialize the message: ${why}`, 500);
}

export function serialize(msg: SipMessage): Buffer {
  let head: string;
  if (msg.kind === 'request') {
    if (!isToken(msg.method)) throw refuse(`method ${show(msg.method)} is not a token`);
    if (!URI.test(msg.uri)) throw refuse(`Request-URI ${show(msg.uri)} is empty or has spaces or non-ASCII characters`);
    head = msg.method + ' ' + msg.uri + ' SIP/2.0\r\n';
  } else {
    if (!Number.isInteger(msg.status) || msg.status < 100 || msg.status > 699) throw refuse(`status ${msg.status} is not in 100-699`);
    if (UNSAFE.test(msg.reason)) throw refuse(`reason phrase ${show(msg.reason)} has CR, LF or NUL`);
    head = 'SIP/2.0 ' + String(msg.status) + ' ' + msg.reason + '\r\n';
  }
  for (const f of msg.headers) {
    if (f.name === 'content-length') continue;
    if (UNSAFE.test(f.value)) throw refuse(`header ${f.name} value ${show(f.value)} has CR, LF or NUL`);
    head += fieldName(f.name) + ': ' + f.value + '\r\n';
  }
  const body = msg.body;
  head += 'Content-Length: ' + String(body.length) + '\r\n\r\n';
  const headLength = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLength + body.length);
  // as many bytes as characters: all ASCII (the usual head), which latin1 copies as it is
  out.write(head, 0, headLength === head.length ? 'latin1' : 'utf8');
  body.copy(out, headLength);
  return out;
}

/** The serialized message as text (UTF-8), for tests and logs. */
export function serializeToString(msg: SipMessage): string {
  return serialize(msg).toString('utf8');
}
