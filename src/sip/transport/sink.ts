import type { SipParseError } from '../errors.ts';
import type { SipMessage } from '../message.ts';
import type { Flow } from './flow.ts';

/** What a listener hands upward. Listeners only move bytes and frame them; they decide nothing. */
export interface TransportSink {
  onMessage(message: SipMessage, flow: Flow): void;
  /** a message that could not be parsed; `fatal` when the flow can no longer be framed */
  onParseError(error: SipParseError, flow: Flow): void;
  onFlowClosed(flow: Flow): void;
}
