import { ParleyError } from '../errors.ts';

/** Every code a DirectoryError may carry, with the HTTP status the admin API answers it with. */
export const DIRECTORY_ERROR_STATUS = {
  /** the text is not a SIP address we accept (the message says which part and why) */
  BAD_ADDRESS: 400,
  BAD_DISPLAY_NAME: 400,
  /** the password is empty */
  WEAK_PASSWORD: 400,
  USER_EXISTS: 409,
  USER_NOT_FOUND: 404,
  /** a site identity is not `Site:<name>` or `<name>` with a valid name */
  BAD_SITE_NAME: 400,
  SITE_EXISTS: 409,
  SITE_NOT_FOUND: 404,
  /** a site still has users (or settings instances); the message says how many */
  SITE_IN_USE: 409,
  /** a stored row cannot be read (hand-edited database?); the message says how to repair it */
  CORRUPT_RECORD: 500,
} as const;

export type DirectoryErrorCode = keyof typeof DIRECTORY_ERROR_STATUS;

export class DirectoryError extends ParleyError {
  declare readonly code: DirectoryErrorCode;
  readonly httpStatus: number;

  constructor(code: DirectoryErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.httpStatus = DIRECTORY_ERROR_STATUS[code];
  }
}
