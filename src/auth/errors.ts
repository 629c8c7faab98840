// Errors of sign-in administration: a stable code and the HTTP status the admin API answers with
// (`parley admin` exits 2 for 400, 1 otherwise).
import { ParleyError } from '../errors.ts';

export const AUTH_ERRORS = {
  /** -Source is not an IP address (nor an IPv6 /64 prefix as Get-CsAuthLockout shows it) */
  BAD_SOURCE: 400,
  /** Clear-CsAuthLockout needs -Identity or -Source */
  MISSING_TARGET: 400,
  /** nothing is recorded for that source or account */
  NOT_LOCKED: 404,
} as const;

export type AuthErrorCode = keyof typeof AUTH_ERRORS;

export class AuthError extends ParleyError {
  declare readonly code: AuthErrorCode;
  readonly httpStatus: number;

  constructor(code: AuthErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.httpStatus = AUTH_ERRORS[code];
  }
}
