// Presence errors: a stable code, and the status that answers it — SIP for BAD_PIDF, HTTP for the
// others (the user's block endpoint, the admin cmdlets and API).
import { ParleyError } from '../errors.ts';

export const PRESENCE_ERRORS = {
  /** the body is not a valid PIDF document for the publisher (400 with the reason as Warning) */
  BAD_PIDF: 400,
  /** the watcher named is not blocked by that user */
  NOT_BLOCKED: 404,
  /** a user cannot block themselves */
  SELF_BLOCK: 400,
  /** the member named is not on that user's contact list */
  NOT_A_CONTACT: 404,
  /** a partner's user may not be on this user's list: the federation decision refused it (the message says why and which cmdlet changes it) */
  PARTNER_REFUSED: 403,
  /** the contact list holds MAX_CONTACTS members already */
  CONTACT_LIST_FULL: 409,
  /** the user has blocked MAX_BLOCKS watchers already */
  BLOCK_LIST_FULL: 409,
  /** the cmdlet reads the live state of the running server: it needs --url (remote mode) */
  NEEDS_SERVER: 400,
} as const;

export type PresenceErrorCode = keyof typeof PRESENCE_ERRORS;

export class PresenceError extends ParleyError {
  declare readonly code: PresenceErrorCode;
  /** the SIP status (BAD_PIDF) */
  readonly status: number;
  /** the HTTP status (problem JSON; `parley admin` exits 2 for 400, 1 otherwise) */
  readonly httpStatus: number;

  constructor(code: PresenceErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.status = PRESENCE_ERRORS[code];
    this.httpStatus = PRESENCE_ERRORS[code];
  }
}
