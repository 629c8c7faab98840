// EWS ResponseCodes we answer with (EWS reference, ResponseCode), and how store errors map to them.
import { ParleyError } from '../../errors.ts';
import { MailboxError } from '../errors.ts';
import type { MailboxErrorCode } from '../errors.ts';

export type EwsResponseCode =
  | 'ErrorItemNotFound'
  | 'ErrorFolderNotFound'
  | 'ErrorAccessDenied'
  | 'ErrorInvalidIdMalformed'
  | 'ErrorInvalidRequest'
  | 'ErrorSchemaValidation'
  | 'ErrorFolderExists'
  | 'ErrorDeleteDistinguishedFolder'
  | 'ErrorInvalidServerVersion'
  | 'ErrorInvalidOperation'
  | 'ErrorNonExistentMailbox'
  | 'ErrorInvalidPropertyRequest'
  | 'ErrorUnsupportedPathForQuery'
  | 'ErrorInvalidPropertySet'
  | 'ErrorImpersonationDenied'
  | 'ErrorIrresolvableConflict'
  | 'ErrorInvalidSyncStateData'
  | 'ErrorSubscriptionNotFound'
  | 'ErrorInvalidWatermark'
  | 'ErrorUnsupportedPathForSortGroup'
  | 'ErrorInternalServerError'
  | 'ErrorQuotaExceeded'
  | 'ErrorUnsupportedTypeForConversion';

/** An error an EWS operation answers with: per item as ResponseClass="Error", or as a SOAP Fault for the whole request. */
export class EwsError extends ParleyError {
  declare readonly code: EwsResponseCode;

  constructor(code: EwsResponseCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

const FROM_MAILBOX: Record<MailboxErrorCode, EwsResponseCode> = {
  ITEM_NOT_FOUND: 'ErrorItemNotFound',
  FOLDER_NOT_FOUND: 'ErrorFolderNotFound',
  ACCESS_DENIED: 'ErrorAccessDenied',
  ID_MALFORMED: 'ErrorInvalidIdMalformed',
  FOLDER_EXISTS: 'ErrorFolderExists',
  DISTINGUISHED_FOLDER: 'ErrorDeleteDistinguishedFolder',
  SUBSCRIPTION_NOT_FOUND: 'ErrorSubscriptionNotFound',
  REMOTE_UNAVAILABLE: 'ErrorInternalServerError',
  REMOTE_REFUSED: 'ErrorInternalServerError',
  INVALID_REQUEST: 'ErrorInvalidRequest',
  MAILBOX_NOT_FOUND: 'ErrorNonExistentMailbox',
  // "Mailbox has exceeded maximum mailbox size" (EWS ResponseCode). Exchange reports a refused
  // SoftDelete as ErrorInternalServerError with an inner ErrorQuotaExceededOnDelete; clients know
  // ErrorQuotaExceeded, and the MessageText names the limit.
  QUOTA_EXCEEDED: 'ErrorQuotaExceeded',
};

/** The EwsError for anything an operation threw; unknown errors are rethrown (they are bugs). */
export function toEwsError(error: unknown): EwsError {
  if (error instanceof EwsError) return error;
  if (error instanceof MailboxError) return new EwsError(FROM_MAILBOX[error.code], error.message, { cause: error });
  throw error;
}
