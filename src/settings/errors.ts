import { ParleyError } from '../errors.ts';

/** Every code a SettingsError may carry, with the HTTP status the admin API will answer it with. */
export const SETTINGS_ERROR_STATUS = {
  /** an Identity is not Global, Site:<name> or Tag:<name> (or not allowed for that noun) */
  BAD_IDENTITY: 400,
  /** a TimeSpan is not hh:mm:ss or d.hh:mm:ss, or out of the property's range */
  BAD_TIMESPAN: 400,
  /** a value does not fit the property */
  BAD_VALUE: 400,
  /** no settings instance with that Identity */
  UNKNOWN_IDENTITY: 404,
  /** New- of an instance that exists */
  IDENTITY_EXISTS: 409,
  /** a per-user policy still granted to users */
  POLICY_IN_USE: 409,
} as const;

export type SettingsErrorCode = keyof typeof SETTINGS_ERROR_STATUS;

export class SettingsError extends ParleyError {
  declare readonly code: SettingsErrorCode;
  readonly httpStatus: number;

  constructor(code: SettingsErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.httpStatus = SETTINGS_ERROR_STATUS[code];
  }
}
