// Errors of the client SDK: one table of stable codes, one class. A failure that came from a SIP
// final response carries its status and reason so the caller can tell 403 from 404 from 503.

import { ParleyError } from '../errors.ts';

/** Every code a ClientError can carry, with what it means. */
export const CLIENT_ERROR_CODES = {
  INVALID_ARGUMENT: 'an option or argument is malformed (server URL, AOR, target URI…)',
  NOT_CONNECTED: 'the user agent has no open connection; call connect() first',
  CONNECT_FAILED: 'the connection to the server could not be opened',
  DISCONNECTED: 'the connection closed before the request completed',
  TIMEOUT: 'no final response arrived within requestTimeoutMs (RFC 3261 §17.1.2.2, Timer F)',
  AUTH_FAILED: 'the server rejected the credentials, or offered no usable digest challenge',
  REGISTER_FAILED: 'the registrar answered REGISTER with a non-2xx final response',
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

export interface ClientErrorDetails {
  /** SIP status of the final response that caused the failure, when there was one */
  status?: number;
  reason?: string;
  cause?: unknown;
}

export class ClientError extends ParleyError {
  declare readonly code: ClientErrorCode;
  readonly status: number | undefined;
  readonly reason: string | undefined;

  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.reason = details.reason;
  }
}
