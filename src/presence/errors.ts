// Presence errors: a stable code and the SIP status that answers it.
import { ParleyError } from '../errors.ts';

export const PRESENCE_ERRORS = {
  /** the body is not a valid PIDF document for the publisher (400 with the reason as Warning) */
  BAD_PIDF: 400,
} as const;

export type PresenceErrorCode = keyof typeof PRESENCE_ERRORS;

export class PresenceError extends ParleyError {
  declare readonly code: PresenceErrorCode;
  readonly status: number;

  constructor(code: PresenceErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.status = PRESENCE_ERRORS[code];
  }
}
