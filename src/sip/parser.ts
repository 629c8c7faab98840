// Parsing a whole SIP message from one datagram or one WebSocket message (RFC 3261 §7, §18.3;
// RFC 7118 §5.1). Bytes in, message out: no I/O. Stream transports use framing.ts instead.
//
// Decisions, for robustness without ever mis-framing:
// - CRLFs (and bare LFs) before the start line are skipped (§7.5); nothing but line ends is
//   SIP_EMPTY_MESSAGE, which a UDP transport drops silently as a keep-alive.
// - A bare LF ends a line as CRLF does (many embedded clients send it); a bare CR, NUL or other
//   control character in the header section is rejected, since parsers could disagree on it.
// - Without Content-Length the body is the rest of the datagram; with it, extra bytes are dropped and
//   missing bytes are an error (§18.3). The body is a view of `data`, not a copy.
// - Limits are checked before the work they bound, and every error is a SipParseError carrying the
//   headers read so far and whether the start line was a request, so the edge can answer it.

import { SIP_PARSE_ERRORS, SipParseError } from './errors.ts';
import { contextOf, maxHeadBytes, parseHead, readHead } from './head.ts';
import { DEFAULT_SIP_LIMITS } from './limits.ts';
import type { SipLimits } from './limits.ts';
import type { SipMessage } from './message.ts';

const E = SIP_PARSE_ERRORS;
/**
 * Parses one whole message. Throws SipParseError, never anything else; `limits` defaults to
 * DEFAULT_SIP_LIMITS.
 */
export function parseMessage(data: Buffer, limits: SipLimits = DEFAULT_SIP_LIMITS): SipMessage {
  const n = data.length;
  let pos = 0;
  while (pos < n && (data[pos] === 13 || data[pos] === 10)) pos++;
  if (pos === n) throw new SipParseError(E.EMPTY_MESSAGE, 'the message is empty (only line ends, or nothing)', 400);

  const max = maxHeadBytes(limits);
  const end = readHead(data, pos, max);
  if (end === null) {
    const over = n - pos > max;
    const ctx = contextOf(data, pos, Math.min(n, pos + max + 1), limits);
    if (ctx instanceof SipParseError) throw ctx;
    const headers = ctx.message.headers;
    const isRequest = ctx.message.kind === 'request';
    if (over) throw new SipParseError(E.HEADERS_TOO_LARGE, `header section is over the limit of ${max} bytes without an empty line`, 513, headers, isRequest);
    throw new SipParseError(E.TRUNCATED, 'the header section does not end with an empty line (message truncated?)', 400, headers, isRequest);
  }

  const head = parseHead(end.text, limits);
  const msg = head.message;
  const available = n - end.body;
  let length = available;
  if (head.contentLength !== null) {
    if (head.contentLength > limits.maxBody) {
      throw new SipParseError(E.BODY_TOO_LARGE, `Content-Length ${head.contentLength} is over the body limit of ${limits.maxBody} bytes`, 413, msg.headers, msg.kind === 'request');
    }
    if (head.contentLength > available) {
      throw new SipParseError(
        E.BAD_CONTENT_LENGTH,
        `Content-Length says ${head.contentLength} bytes but only ${available} follow the header section`,
        400,
        msg.headers,
        msg.kind === 'request',
      );
    }
    length = head.contentLength;
  } else if (available > limits.maxBody) {
    throw new SipParseError(E.BODY_TOO_LARGE, `body of ${available} bytes is over the limit of ${limits.maxBody}`, 413, msg.headers, msg.kind === 'request');
  }
  if (length > 0) msg.body = data.subarray(end.body, end.body + length);
  return msg;
}
