import { ParleyError } from '../errors.ts';

/** Every code an OfflineError may carry, with the HTTP status the admin API answers it with. */
export const OFFLINE_ERROR_STATUS = {
  /** no spool entry with that id */
  ENTRY_NOT_FOUND: 404,
  /** the entry is not in a state that allows the operation (retry of a delivered entry…) */
  ENTRY_STATE: 409,
  /** a filter or argument is not valid (unknown state, bad date) */
  BAD_REQUEST: 400,
  /** a step that still needs the node:sqlite connection ran on PostgreSQL (transitional: see unmoved.ts) */
  NOT_ON_THIS_ENGINE: 501,
} as const;

export type OfflineErrorCode = keyof typeof OFFLINE_ERROR_STATUS;

export class OfflineError extends ParleyError {
  declare readonly code: OfflineErrorCode;
  readonly httpStatus: number;

  constructor(code: OfflineErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.httpStatus = OFFLINE_ERROR_STATUS[code];
  }
}
