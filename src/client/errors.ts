// Errors of the client SDK: one table of stable codes, one class. A failure that came from a SIP
// final response carries its status and reason so the caller can tell 403 from 404 from 503.

import { ParleyError } from '../errors.ts';

/** Every code a ClientError can carry, with what it means. */
export const CLIENT_ERROR_CODES = {
  INVALID_ARGUMENT: 'an option or argument is malformed (server URL, AOR, target URI…)',
  NOT_CONNECTED: 'the user agent has no open connection; call connect() first',
  CONNECT_FAILED: 'the connection to the server could not be opened',
  DISCONNECTED: 'the connection closed before the request completed, or is lost (and perhaps being restored: autoReconnect)',
  TIMEOUT: 'no final response arrived within requestTimeoutMs (RFC 3261 §17.1.2.2, Timer F)',
  AUTH_FAILED: 'the server rejected the credentials, or offered no usable digest challenge',
  REGISTER_FAILED: 'the registrar answered REGISTER with a non-2xx final response',
  SUBSCRIBE_FAILED: 'the notifier answered SUBSCRIBE with a non-2xx final response, or the subscription could not be kept (RFC 6665 §4.1.2)',
  PUBLISH_FAILED: 'the presence server answered PUBLISH with a non-2xx final response, or a refresh of the publication failed (RFC 3903 §6)',
  INVALID_BODY: 'a NOTIFY body (message-summary, provisioning, presence, resource list) does not parse or lacks a required field',
  NO_EWS_URL: 'no EWS URL is known: give the ewsUrl option, or watch provisioning first',
  HTTP_FAILED: 'the HTTP request to EWS failed: a network error or timeout, or an answer that is not an EWS SOAP response',
  EWS_ERROR: 'EWS answered with an error ResponseCode (a SOAP fault or ResponseClass="Error"); see responseCode',
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

export interface ClientErrorDetails {
  /** SIP status of the final response that caused the failure (HTTP status for EWS), when there was one */
  status?: number;
  reason?: string;
  /** the EWS ResponseCode (ErrorItemNotFound, ErrorAccessDenied…) of an EWS_ERROR */
  responseCode?: string;
  cause?: unknown;
}

export class ClientError extends ParleyError {
  declare readonly code: ClientErrorCode;
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly responseCode: string | undefined;

  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.reason = details.reason;
    this.responseCode = details.responseCode;
  }
}
