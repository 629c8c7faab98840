import { SipParseError } from '../errors.ts';
import type { SipLimits } from '../limits.ts';
import type { SipMessage } from '../message.ts';
import { parseMessage } from '../parser.ts';
import type { Flow } from './flow.ts';

/** What a listener hands upward. Listeners only move bytes and frame them; they decide nothing. */
export interface TransportSink {
  onMessage(message: SipMessage, flow: Flow): void;
  /** a message that could not be parsed; `fatal` when the flow can no longer be framed */
  onParseError(error: SipParseError, flow: Flow): void;
  onFlowClosed(flow: Flow): void;
}

/** Message-framed transports (a UDP datagram, a WebSocket message): one unit is one SIP message. */
export function deliverUnit(bytes: Buffer, flow: Flow, limits: SipLimits, sink: TransportSink): void {
  let message: SipMessage;
  try {
    message = parseMessage(bytes, limits);
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    sink.onParseError(err, flow);
    return;
  }
  sink.onMessage(message, flow);
}
