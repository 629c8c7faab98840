import { ParleyError } from '../errors.ts';

/** Every code an AdminError may carry: all are usage errors (exit code 2, HTTP 400). */
export type AdminErrorCode =
  /** no cmdlet of that name; the message names the closest */
  | 'UNKNOWN_CMDLET'
  /** the cmdlet has no such parameter; the message lists the valid ones */
  | 'UNKNOWN_PARAMETER'
  /** a prefix that matches several parameters */
  | 'AMBIGUOUS_PARAMETER'
  /** a parameter given twice, or a positional argument with no place */
  | 'BAD_SYNTAX'
  /** a required parameter is missing, or a parameter without its value */
  | 'MISSING_PARAMETER'
  /** a value of the wrong type; the message names the parameter and the type */
  | 'BAD_VALUE';

export class AdminError extends ParleyError {
  declare readonly code: AdminErrorCode;
  readonly httpStatus = 400;

  constructor(code: AdminErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
