// The EWS service without HTTP: a parsed envelope and an authenticated user in, a SOAP response out.
// Tests drive it in-process; route.ts puts it on the HTTP port.
import type { Sql } from '../../storage/index.ts';
import type { XmlElement } from '../../xml/index.ts';
import { childElement, childText } from '../../xml/index.ts';
import { canImpersonate } from '../impersonation.ts';
import { ensureMailbox } from '../folders.ts';
import { MailboxQuota } from '../quota.ts';
import { EwsError } from './codes.ts';
import { faultEnvelope, readEnvelope, responseEnvelope } from './envelope.ts';
import { ACCEPTED_VERSIONS, T_NS } from './names.ts';
import type { EwsVersion } from './names.ts';
import type { EwsOperation } from './operation.ts';
import { convertIdOperation } from './operations/convert-id.ts';
import { createFolderOperation } from './operations/create-folder.ts';
import { createItemOperation } from './operations/create-item.ts';
import { deleteFolderOperation } from './operations/delete-folder.ts';
import { deleteItemOperation } from './operations/delete-item.ts';
import { findFolderOperation } from './operations/find-folder.ts';
import { findItemOperation } from './operations/find-item.ts';
import { getFolderOperation } from './operations/get-folder.ts';
import { getItemOperation } from './operations/get-item.ts';
import { moveItemOperation } from './operations/move-item.ts';
import { getEventsOperation } from './operations/get-events.ts';
import { subscribeOperation } from './operations/subscribe.ts';
import { syncFolderItemsOperation } from './operations/sync-folder-items.ts';
import { unsubscribeOperation } from './operations/unsubscribe.ts';
import { updateItemOperation } from './operations/update-item.ts';

export const EWS_OPERATIONS: readonly EwsOperation[] = [
  getFolderOperation,
  findFolderOperation,
  createFolderOperation,
  deleteFolderOperation,
  createItemOperation,
  getItemOperation,
  findItemOperation,
  updateItemOperation,
  deleteItemOperation,
  moveItemOperation,
  syncFolderItemsOperation,
  subscribeOperation,
  getEventsOperation,
  unsubscribeOperation,
  convertIdOperation,
];

export interface EwsServiceOptions {
  sql: Sql;
  /** the organisation's domain: recipients there are local */
  domain: string;
  userExists: (address: string) => Promise<boolean>;
  /** whether outside mail can be queued for SMTP; default: never */
  canSendOutside?: (address: string) => boolean;
  /** the mailbox quotas (and their refusal counters); default: DEFAULT_MAILBOX_QUOTA, counted apart per call */
  quota?: MailboxQuota;
  now?: () => number;
  operations?: readonly EwsOperation[];
}

export interface EwsAnswer {
  /** 200, or 500 for a SOAP Fault (SOAP 1.1 §6.2) */
  status: number;
  xml: string;
  /** the operation, for the log */
  operation: string | undefined;
  /** the fault's ResponseCode, for the log */
  fault: string | undefined;
  /** the mailbox served: the caller's, or the impersonated user's */
  mailbox: string | undefined;
}

/** Answers one request of the authenticated user `address` (the user's mailbox is made on first use). */
export async function answerEws(opts: EwsServiceOptions, address: string, root: XmlElement): Promise<EwsAnswer> {
  let version: EwsVersion = 'Exchange2016';
  let operation: string | undefined;
  try {
    const request = readEnvelope(root);
    version = request.version;
    operation = request.operation.name;
    const actingAs = request.impersonation === undefined ? address : await impersonated(opts, address, request.impersonation);
    const op = (opts.operations ?? EWS_OPERATIONS).find((o) => o.name === request.operation.name);
    if (op === undefined) throw new EwsError('ErrorInvalidRequest', `Parley does not support the EWS operation ${request.operation.name}`);
    if (ACCEPTED_VERSIONS.indexOf(op.since) > ACCEPTED_VERSIONS.indexOf(version)) {
      throw new EwsError('ErrorInvalidServerVersion', `${op.name} needs RequestServerVersion ${op.since} or later`);
    }
    const ctx = {
      sql: opts.sql,
      mailbox: await ensureMailbox(opts.sql, actingAs, opts.now),
      version,
      now: opts.now ?? Date.now,
      domain: opts.domain,
      userExists: opts.userExists,
      canSendOutside: opts.canSendOutside ?? (() => false),
      quota: opts.quota ?? new MailboxQuota(),
    };
    return { status: 200, xml: responseEnvelope(version, await op.handle(ctx, request.operation)), operation, fault: undefined, mailbox: actingAs };
  } catch (error) {
    if (!(error instanceof EwsError)) throw error;
    return { status: 500, xml: faultEnvelope(version, error.code, error.message), operation, fault: error.code, mailbox: undefined };
  }
}

/** A SOAP Fault for a request whose XML could not be read at all. */
export function faultForUnreadable(code: 'ErrorSchemaValidation' | 'ErrorInvalidRequest' | 'ErrorInternalServerError', message: string): string {
  return faultEnvelope('Exchange2016', code, message);
}

/**
 * ExchangeImpersonation/ConnectingSID (EWS reference): PrimarySmtpAddress, SmtpAddress or
 * PrincipalName of a local user. Only accounts given the right may use it; SID is not supported.
 */
async function impersonated(opts: EwsServiceOptions, caller: string, header: XmlElement): Promise<string> {
  if (!(await canImpersonate(opts.sql, caller))) throw new EwsError('ErrorImpersonationDenied', `${caller} does not have the right to impersonate other accounts`);
  const sid = childElement(header, T_NS, 'ConnectingSID');
  const target = sid && (childText(sid, T_NS, 'PrimarySmtpAddress') ?? childText(sid, T_NS, 'SmtpAddress') ?? childText(sid, T_NS, 'PrincipalName'));
  if (target === undefined || target.trim() === '') throw new EwsError('ErrorInvalidRequest', 'ExchangeImpersonation needs t:ConnectingSID with t:PrimarySmtpAddress, t:SmtpAddress or t:PrincipalName');
  const address = target.trim().replace(/^(smtp|sip):/i, '').toLowerCase();
  if (!(await opts.userExists(address))) throw new EwsError('ErrorNonExistentMailbox', `there is no user ${address} to impersonate`);
  return address;
}
