import { ParleyError } from '../errors.ts';

/** Every code a MailboxError may carry; EWS maps each to its ResponseCode (ews/codes.ts). */
export type MailboxErrorCode =
  /** no item with that id in this mailbox */
  | 'ITEM_NOT_FOUND'
  /** no folder with that id or distinguished name in this mailbox */
  | 'FOLDER_NOT_FOUND'
  /** the id names something in another user's mailbox */
  | 'ACCESS_DENIED'
  /** the id is not one we could have issued */
  | 'ID_MALFORMED'
  /** a folder with that display name already exists under the same parent */
  | 'FOLDER_EXISTS'
  /** a distinguished folder (Inbox, Conversation History…) cannot be deleted */
  | 'DISTINGUISHED_FOLDER'
  /** no live pull subscription with that id */
  | 'SUBSCRIPTION_NOT_FOUND'
  /** a remote mailbox server (EWS) could not be reached or was busy: try again later */
  | 'REMOTE_UNAVAILABLE'
  /** a remote mailbox server refused the request (credentials, rights, unknown mailbox): retrying will not help */
  | 'REMOTE_REFUSED'
  /** the request is well-formed but asks for something that cannot be done (e.g. delete a distinguished folder) */
  | 'INVALID_REQUEST'
  /** the mailbox address is not a valid address or no such user exists */
  | 'MAILBOX_NOT_FOUND'
  /** a mailbox quota (quota.ts) forbids it: the mailbox is full, or its owner's is */
  | 'QUOTA_EXCEEDED';

export class MailboxError extends ParleyError {
  declare readonly code: MailboxErrorCode;
  /**
   * A remote server said when to come back (HTTP Retry-After, RFC 9110 §10.2.3): epoch ms before
   * which another attempt is pointless. The spool's next attempt waits at least until then.
   */
  readonly retryAt: number | undefined;

  constructor(code: MailboxErrorCode, message: string, options?: ErrorOptions & { retryAt?: number }) {
    super(code, message, options);
    this.retryAt = options?.retryAt;
  }
}
