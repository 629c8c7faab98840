import type { Sql } from '../../storage/index.ts';
import type { XmlElement } from '../../xml/index.ts';
import type { Mailbox } from '../folders.ts';
import type { MailboxQuota } from '../quota.ts';
import type { EwsVersion } from './names.ts';

/** What an operation runs with: the authenticated user's own mailbox, nothing else. */
export interface EwsContext {
  readonly sql: Sql;
  readonly mailbox: Mailbox;
  readonly version: EwsVersion;
  readonly now: () => number;
  /** the organisation's SIP/mail domain: recipients there are local */
  readonly domain: string;
  /** whether a local user exists (for delivering sent mail to local recipients) */
  readonly userExists: (address: string) => Promise<boolean>;
  /** whether mail to this outside address can be queued for SMTP (a route exists) */
  readonly canSendOutside: (address: string) => boolean;
  /** the mailbox quotas: what may still be sent, received and soft-deleted */
  readonly quota: MailboxQuota;
}

/**
 * One EWS operation, one module (STYLE.md). It declares the body element it serves and the first
 * schema version that has it; `handle` returns the whole `<m:NameResponse>` element, with one
 * response message per requested item (errors per item, ResponseClass="Error"). It throws EwsError
 * only for what makes the whole request invalid (answered with a SOAP Fault).
 */
export interface EwsOperation {
  readonly name: string;
  readonly since: EwsVersion;
  handle(ctx: EwsContext, request: XmlElement): Promise<string>;
}
