// Message framing on stream transports, TCP and TLS (RFC 3261 §18.3), with the CRLF keep-alives of
// RFC 5626 §3.5.1. Bytes in, events out; the transport owns the socket and answers a ping with CRLF.
//
// - Content-Length is mandatory on a stream: without it the framing is lost (fatal error).
// - Between messages, CRLF CRLF is a ping and a lone CRLF a pong. A lone CRLF at the very end of the
//   bytes received so far is reported as a pong at once rather than held back waiting for a second
//   CRLF: a client waiting for its pong must not be kept waiting. (So a ping split by the network
//   between its two CRLFs reads as two pongs; peers write a ping in one go.) Bare LFs are ignored.
// - A message whose header section is fine but whose Content-Length is over the body limit gives a
//   non-fatal 413 error at once and its body is skipped, so the connection goes on. So does a header
//   section that fails to parse when its one Content-Length can still be read.
// - An over-long line or header section is fatal as soon as the limit is passed, without waiting
//   for the rest; so is anything after which the next message cannot be found.
// - Each byte is searched once: the search for the end of a header section resumes where it
//   stopped, and bytes are kept in one growing buffer (amortised copying), never re-concatenated.

import { SIP_PARSE_ERRORS, SipParseError } from './errors.ts';
import { contextOf, looksLikeRequest, maxHeadBytes, parseHead, scanContentLength } from './head.ts';
import type { Head } from './head.ts';
import { DEFAULT_SIP_LIMITS } from './limits.ts';
import type { SipLimits } from './limits.ts';
import type { SipMessage } from './message.ts';

export type FrameEvent =
  | { type: 'message'; message: SipMessage }
  | { type: 'error'; error: SipParseError; fatal: boolean }
  | { type: 'ping' }
  | { type: 'pong' };

const E = SIP_PARSE_ERRORS;
const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
/** A buffer this large is released once it empties, so an idle connection holds little memory. */
const KEEP_BUFFER = 64 * 1024;

type State = 'idle' | 'head' | 'body' | 'skip' | 'closed';

export class StreamFramer {
  readonly #limits: SipLimits;
  readonly #maxHead: number;
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;
  #state: State = 'idle';
  /** head: how far the current header section has been searched, from its start */
  #scanned = 0;
  /** head: where the current line starts, from the start of the header section */
  #lineStart = 0;
  /** body: the message waiting for its body */
  #message: SipMessage | null = null;
  /** body: bytes of body awaited; skip: bytes still to drop */
  #need = 0;

  constructor(limits: SipLimits = DEFAULT_SIP_LIMITS) {
    this.#limits = limits;
    this.#maxHead = maxHeadBytes(limits);
  }

  /** Bytes held for a message not complete yet. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Bytes of memory the framer holds: its buffer, whatever part of it is in use (a buffer that
   * emptied is kept when it is not large). What a connection costs, for the transport's budget.
   */
  get held(): number {
    return this.#buf.length;
  }

  /** True while a message has begun to arrive and is not complete (its head, body or skipped body). */
  get midMessage(): boolean {
    return this.#state === 'head' || this.#state === 'body' || this.#state === 'skip' || (this.#state === 'idle' && this.#end > this.#start);
  }

  /** True after a fatal error: the connection should be closed; further input is ignored. */
  get closed(): boolean {
    return this.#state === 'closed';
  }

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.#state === 'closed' || chunk.length === 0) return events;
    const direct = this.#start === this.#end;
    let data: Buffer;
    if (direct) {
      data = chunk; // nothing held: read the chunk in place, keep only what is left over
    } else {
      this.#append(chunk);
      data = this.#buf.subarray(0, this.#end);
    }
    const pos = this.#run(data, direct ? 0 : this.#start, events);
    if (this.closed) {
      this.#buf = EMPTY;
      this.#start = this.#end = 0;
    } else if (direct) {
      if (pos < data.length) this.#append(data.subarray(pos));
    } else if (pos === this.#end) {
      this.#start = this.#end = 0;
      if (this.#buf.length > KEEP_BUFFER) this.#buf = EMPTY;
    } else {
      this.#start = pos;
    }
    return events;
  }

  #append(chunk: Buffer): void {
    const live = this.#end - this.#start;
    const need = live + chunk.length;
    if (this.#end + chunk.length > this.#buf.length) {
      if (need * 2 <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        // Doubling amortises the copies of a growing header section; a body's size is known, so
        // its buffer is made to fit (a slow sender's half-sent body holds no more than the body).
        const size = this.#state === 'body' ? Math.max(need, this.#need) : need * 2;
        const grown = Buffer.allocUnsafe(Math.max(size, 4096));
        this.#buf.copy(grown, 0, this.#start, this.#end);
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = live;
    }
    chunk.copy(this.#buf, this.#end);
    this.#end += chunk.length;
  }

  /** Reads events from data[pos…]; returns where it stopped (all read, or waiting for more). */
  #run(data: Buffer, pos: number, events: FrameEvent[]): number {
    const end = data.length;
    while (pos < end) {
      if (this.#state === 'idle') {
        const c = data[pos];
        if (c === LF) {
          pos++;
          continue;
        }
        if (c === CR) {
          if (pos + 1 >= end) return pos;
          if (data[pos + 1] === LF) {
            if (pos + 2 < end && data[pos + 2] === CR) {
              if (pos + 3 >= end) return pos; // CRLF CR: a ping or a pong, wait for one more byte
              if (data[pos + 3] === LF) {
                events.push({ type: 'ping' });
                pos += 4;
                continue;
              }
            }
            events.push({ type: 'pong' });
            pos += 2;
            continue;
          }
        }
        this.#state = 'head';
        this.#scanned = 0;
        this.#lineStart = 0;
      } else if (this.#state === 'head') {
        const next = this.#head(data, pos, events);
        if (next < 0) return pos;
        pos = next;
      } else if (this.#state === 'body') {
        if (end - pos < this.#need) return pos;
        const message = this.#message as SipMessage;
        message.body = Buffer.from(data.subarray(pos, pos + this.#need)); // a copy: the buffer is reused
        pos += this.#need;
        this.#message = null;
        this.#state = 'idle';
        events.push({ type: 'message', message });
      } else if (this.#state === 'skip') {
        const k = Math.min(this.#need, end - pos);
        pos += k;
        this.#need -= k;
        if (this.#need === 0) this.#state = 'idle';
      } else {
        return end;
      }
    }
    return pos;
  }

  /** Searches for the end of the header section starting at pos; -1 to wait for more bytes. */
  #head(data: Buffer, pos: number, events: FrameEvent[]): number {
    const end = data.length;
    const limits = this.#limits;
    let i = pos + this.#scanned;
    let lineStart = pos + this.#lineStart;
    for (;;) {
      const lf = data.indexOf(LF, i);
      const lineEnd = lf < 0 ? end : lf;
      const first = lineStart === pos;
      if (lineEnd - lineStart > (first ? limits.maxStartLine : limits.maxHeaderLine) + 1) {
        return this.#fatalLimit(data, pos, lineStart, events, first ? 'start' : 'line');
      }
      if (lineEnd - pos > this.#maxHead) return this.#fatalLimit(data, pos, lineStart, events, 'head');
      if (lf < 0 || lf + 1 >= end || (data[lf + 1] === CR && lf + 2 >= end)) {
        this.#scanned = (lf < 0 ? end : lf) - pos; // an LF is looked at again once the next bytes come
        this.#lineStart = lineStart - pos;
        return -1;
      }
      if (data[lf + 1] === LF) return this.#complete(data, pos, lf + 1, lf + 2, events);
      if (data[lf + 1] === CR && data[lf + 2] === LF) return this.#complete(data, pos, lf + 1, lf + 3, events);
      lineStart = i = lf + 1;
    }
  }

  #complete(data: Buffer, pos: number, headEnd: number, bodyStart: number, events: FrameEvent[]): number {
    const text = data.toString('latin1', pos, headEnd);
    let head: Head;
    try {
      head = parseHead(text, this.#limits);
    } catch (err) {
      const error = toParseError(err);
      const length = scanContentLength(text);
      if (length === null) return this.#fatal(error, events);
      events.push({ type: 'error', error, fatal: false });
      return this.#skip(bodyStart, length);
    }
    const { message, contentLength } = head;
    const isRequest = message.kind === 'request';
    if (contentLength === null) {
      const why = 'Content-Length is mandatory on a stream transport (RFC 3261 §18.3); the framing is lost';
      return this.#fatal(new SipParseError(E.MISSING_CONTENT_LENGTH, why, 400, message.headers, isRequest), events);
    }
    if (contentLength > this.#limits.maxBody) {
      const why = `Content-Length ${contentLength} is over the body limit of ${this.#limits.maxBody} bytes; the body is skipped`;
      events.push({ type: 'error', error: new SipParseError(E.BODY_TOO_LARGE, why, 413, message.headers, isRequest), fatal: false });
      return this.#skip(bodyStart, contentLength);
    }
    if (contentLength === 0) {
      this.#state = 'idle';
      events.push({ type: 'message', message });
    } else {
      this.#state = 'body';
      this.#message = message;
      this.#need = contentLength;
    }
    return bodyStart;
  }

  #skip(bodyStart: number, length: number): number {
    this.#state = length > 0 ? 'skip' : 'idle';
    this.#need = length;
    return bodyStart;
  }

  #fatalLimit(data: Buffer, pos: number, lineStart: number, events: FrameEvent[], what: 'start' | 'line' | 'head'): number {
    const ctx = contextOf(data, pos, lineStart, this.#limits);
    if (ctx instanceof SipParseError) return this.#fatal(ctx, events);
    const headers = ctx.message.headers;
    const limits = this.#limits;
    let error: SipParseError;
    if (what === 'start') {
      const isRequest = looksLikeRequest(data.toString('latin1', pos, Math.min(data.length, pos + 100)));
      const why = `start line is over the limit of ${limits.maxStartLine} bytes` + (isRequest ? ' (Request-URI too long)' : '');
      error = new SipParseError(E.START_LINE_TOO_LONG, why, isRequest ? 414 : 513, headers, isRequest);
    } else if (what === 'line') {
      const why = `a header field line is over the limit of ${limits.maxHeaderLine} bytes`;
      error = new SipParseError(E.HEADER_TOO_LONG, why, 513, headers, ctx.message.kind === 'request');
    } else {
      const why = `header section is over the limit of ${this.#maxHead} bytes without an empty line`;
      error = new SipParseError(E.HEADERS_TOO_LARGE, why, 513, headers, ctx.message.kind === 'request');
    }
    return this.#fatal(error, events);
  }

  #fatal(error: SipParseError, events: FrameEvent[]): number {
    this.#state = 'closed';
    this.#message = null;
    events.push({ type: 'error', error, fatal: true });
    return -1;
  }
}

function toParseError(err: unknown): SipParseError {
  if (err instanceof SipParseError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new SipParseError(E.BAD_HEADER, `header section could not be parsed: ${why}`, 400);
}
