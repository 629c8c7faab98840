// What Parley sends to Microsoft Graph and what it makes of the answers: paths, query strings,
// the message JSON, the error shape and its classification. No I/O here (connector.ts does it).
// Each shape follows a page of Microsoft's documentation (README, "Mailboxes in Exchange Online
// through Microsoft Graph"): Create message in a mailFolder, List messages with $filter and
// $count, singleValueLegacyExtendedProperty, the error response, throttling.
import type { DeliveryItem } from '../connector.ts';
import { MailboxError } from '../errors.ts';
import { MISSED_CLASS } from '../missed.ts';
import { MSGFLAG_READ, PR_CLIENT_SUBMIT_TIME, PR_MESSAGE_DELIVERY_TIME, PR_MESSAGE_FLAGS } from '../ews/item-xml.ts';

export const DEFAULT_GRAPH_URL = 'https://graph.microsoft.com/v1.0';
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

/** PR_MESSAGE_CLASS: the item class, which Graph's message has no property for */
const PR_MESSAGE_CLASS = 0x001a;

/** An extended property id as Graph writes it: "{type} {proptag}" (singleValueLegacyExtendedProperty). */
function propertyId(type: 'Integer' | 'String' | 'SystemTime', tag: number): string {
  return `${type} 0x${tag.toString(16).toUpperCase().padStart(4, '0')}`;
}
export const MESSAGE_FLAGS_PROPERTY = propertyId('Integer', PR_MESSAGE_FLAGS);
export const MESSAGE_CLASS_PROPERTY = propertyId('String', PR_MESSAGE_CLASS);
export const CLIENT_SUBMIT_TIME_PROPERTY = propertyId('SystemTime', PR_CLIENT_SUBMIT_TIME);
export const DELIVERY_TIME_PROPERTY = propertyId('SystemTime', PR_MESSAGE_DELIVERY_TIME);

/** The app-only scope of the Graph at `graphUrl`: its resource (origin) with /.default (client credentials flow). */
export function graphScope(graphUrl: string): string {
  return `${new URL(graphUrl).origin}/.default`;
}

/** `/users/{userPrincipalName}`: the mailbox named by its address, `@` as it is (a path may hold it, and Graph's examples write it so). */
export function userPath(mailbox: string): string {
  return `/users/${encodeURIComponent(mailbox).replaceAll('%40', '@')}`;
}

/** `/users/{userPrincipalName}/mailFolders/{well-known name}` */
export function folderPath(mailbox: string, folder: string): string {
  return `${userPath(mailbox)}/mailFolders/${encodeURIComponent(folder)}`;
}

/** An OData string literal: single quotes doubled (an InternetMessageId may hold one). */
export function odataString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** `?…` that finds the message with this InternetMessageId in a folder, ids only. */
export function findByInternetMessageIdQuery(internetMessageId: string): string {
  return `?${new URLSearchParams({ $filter: `internetMessageId eq ${odataString(internetMessageId)}`, $select: 'id', $top: '1' })}`;
}

/** `?…` that counts the Missed Conversations of a folder (`@odata.count`), or the unread ones, returning at most one id. */
export function missedCountQuery(unreadOnly: boolean): string {
  const missed = `singleValueExtendedProperties/Any(ep: ep/id eq ${odataString(MESSAGE_CLASS_PROPERTY)} and ep/value eq ${odataString(MISSED_CLASS)})`;
  return `?${new URLSearchParams({ $filter: unreadOnly ? `${missed} and isRead eq false` : missed, $count: 'true', $select: 'id', $top: '1' })}`;
}

interface Recipient {
  emailAddress: { name?: string; address: string };
}

/** The message resource as Parley creates it (Create message in a mailFolder). */
export interface GraphMessage {
  subject: string;
  body: { contentType: 'html'; content: string };
  from: Recipient;
  toRecipients: Recipient[];
  isRead: boolean;
  internetMessageId: string;
  singleValueExtendedProperties: Array<{ id: string; value: string }>;
}

/**
 * The item as a received message: PR_MESSAGE_FLAGS set at creation (without MSGFLAG_UNSENT a
 * message made through Graph is not a draft), its class in PR_MESSAGE_CLASS, its sent and
 * received times in PR_CLIENT_SUBMIT_TIME and PR_MESSAGE_DELIVERY_TIME (Graph's sentDateTime and
 * receivedDateTime are read-only), the spool entry's id as internetMessageId.
 */
export function messageJson(item: DeliveryItem, deliveredAt: Date): GraphMessage {
  const recipient = (m: { name?: string; address: string }): Recipient => ({ emailAddress: m.name !== undefined && m.name !== '' ? { name: m.name, address: m.address } : { address: m.address } });
  return {
    subject: item.subject,
    body: { contentType: 'html', content: item.bodyHtml },
    from: recipient(item.from),
    toRecipients: item.to.map(recipient),
    isRead: item.isRead,
    internetMessageId: item.internetMessageId,
    singleValueExtendedProperties: [
      { id: MESSAGE_FLAGS_PROPERTY, value: String(item.isRead ? MSGFLAG_READ : 0) },
      { id: MESSAGE_CLASS_PROPERTY, value: item.itemClass },
      { id: CLIENT_SUBMIT_TIME_PROPERTY, value: item.sentAt.toISOString() },
      { id: DELIVERY_TIME_PROPERTY, value: deliveredAt.toISOString() },
    ],
  };
}

/** Graph's error response: `{"error": {"code", "message", "innerError"}}`. */
export interface GraphError {
  status: number;
  code: string;
  message: string;
}

export function parseGraphError(status: number, text: string): GraphError {
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string') return { status, code: error.code, message: typeof error.message === 'string' ? error.message : '' };
  } catch {
    // not JSON: a proxy's or load balancer's page
  }
  return { status, code: `HTTP ${status}`, message: text.slice(0, 200).replace(/\s+/g, ' ').trim() };
}

/**
 * What to do with a failed response: `token` — the access token expired or was revoked (get a new
 * one and send again); `retry` — busy, throttled or down (REMOTE_UNAVAILABLE); `refuse` — retrying
 * will not help (REMOTE_REFUSED).
 */
export function classifyGraphError(error: GraphError): 'token' | 'retry' | 'refuse' {
  if (error.status === 401 && error.code === 'InvalidAuthenticationToken') return 'token';
  if (error.status === 408 || error.status === 429 || error.status >= 500) return 'retry';
  return 'refuse';
}

/** Retry-After in ms: delay-seconds or an HTTP-date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The MailboxError for a failed Graph response, with what an administrator can do about a refusal. */
export function graphFailure(error: GraphError, context: { mailbox: string; clientId: string; graphUrl: string }): MailboxError {
  const said = `Graph answered ${error.status} ${error.code}${error.message !== '' ? `: ${error.message}` : ''}`;
  if (classifyGraphError(error) !== 'refuse') return new MailboxError('REMOTE_UNAVAILABLE', `${said} (for ${context.mailbox}; retried)`);
  if (error.status === 401 || error.status === 403) {
    return new MailboxError(
      'REMOTE_REFUSED',
      `${said}. The app ${context.clientId} may not write to the mailbox of ${context.mailbox}: grant it the Mail.ReadWrite application permission (with admin consent) and include this mailbox in its application access policy (New-ApplicationAccessPolicy -AccessRight RestrictAccess) or RBAC for Applications scope`,
    );
  }
  if (error.status === 404) {
    return new MailboxError('REMOTE_REFUSED', `${said}. ${context.mailbox} has no Exchange Online mailbox that ${context.graphUrl} can find: the SIP address must be the user's userPrincipalName or primary SMTP address, with a licensed mailbox`);
  }
  return new MailboxError('REMOTE_REFUSED', `${said} (for ${context.mailbox}; Parley's request was refused as it is, so it is not retried)`);
}
