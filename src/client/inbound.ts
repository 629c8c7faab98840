// Incoming bytes to SIP messages: a StreamFramer on stream transports (RFC 3261 §18.3), one
// message per frame on WebSocket (RFC 7118 §5.1). A request too broken to process but still
// answerable gets the parser's status (400, 413, 505…) back, as a UAS must (§8.2).

import { createRequest, parseMessage, SipParseError, StreamFramer } from '../sip/pure.ts';
import type { SipMessage, SipResponse } from '../sip/pure.ts';
import { buildResponse } from './requests.ts';

export interface InboundHandlers {
  message(message: SipMessage): void;
  /** a response to send back for an unparseable request */
  reply(response: SipResponse): void;
  /** a CRLFCRLF ping from the peer: answer with a CRLF pong */
  ping(): void;
  /** a CRLF pong to our ping */
  pong(): void;
  error(error: Error, fatal: boolean): void;
}

export class Inbound {
  readonly #framer: StreamFramer | null;
  readonly #handlers: InboundHandlers;

  constructor(framing: 'stream' | 'message', handlers: InboundHandlers) {
    this.#framer = framing === 'stream' ? new StreamFramer() : null;
    this.#handlers = handlers;
  }

  push(data: Buffer): void {
    if (this.#framer === null) {
      this.#frame(data);
      return;
    }
    for (const event of this.#framer.push(data)) {
      if (event.type === 'message') this.#handlers.message(event.message);
      else if (event.type === 'ping') this.#handlers.ping();
      else if (event.type === 'pong') this.#handlers.pong();
      else this.#parseError(event.error, event.fatal);
    }
  }

  #frame(data: Buffer): void {
    // Line ends alone carry no message: RFC 5626's keep-alives read for WebSocket, as some servers
    // do (a CRLFCRLF ping, a CRLF pong); other blank frames are dropped.
    if (data.every((b) => b === 0x0d || b === 0x0a || b === 0x20)) {
      const text = data.toString('latin1');
      if (text === '\r\n') this.#handlers.pong();
      else if (text === '\r\n\r\n') this.#handlers.ping();
      return;
    }
    let message: SipMessage;
    try {
      message = parseMessage(data);
    } catch (error) {
      this.#parseError(error, false);
      return;
    }
    this.#handlers.message(message);
  }

  #parseError(error: unknown, fatal: boolean): void {
    if (error instanceof SipParseError && error.isRequest && error.headers?.has('via') === true) {
      const request = createRequest('UNKNOWN', '', error.headers);
      try {
        this.#handlers.reply(buildResponse(request, error.status));
      } catch {
        // the connection is going away
      }
    }
    this.#handlers.error(error instanceof Error ? error : new Error(String(error)), fatal);
  }
}
