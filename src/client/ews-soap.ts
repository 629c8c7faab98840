// The three EWS operations the mailbox reader needs, as SOAP 1.1 text out and parsed elements in
// (EWS reference: FindItem, GetItem, UpdateItem; "EWS XML elements"). Pure, and browser-safe: the
// XML layer of src/xml is saxes (pure JavaScript) with Parley's limits and no DTDs.

import { childElement, childElements, childText, escapeXmlAttr, parseXml, XmlError } from '../xml/index.ts';
import type { XmlElement } from '../xml/index.ts';
import { ClientError } from './errors.ts';

export const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const M_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';
export const T_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';
export const E_NS = 'http://schemas.microsoft.com/exchange/services/2006/errors';

/** Skype for Business writes a missed conversation into Conversation History with this class. */
export const MISSED_CONVERSATION_CLASS = 'IPM.Note.Microsoft.Missed';
/** item:Preview and item:TextBody exist from Exchange 2013 on. */
export const REQUEST_SERVER_VERSION = 'Exchange2013';

export interface Mailer {
  name: string;
  address: string;
}

export interface MissedConversation {
  itemId: string;
  changeKey: string;
  subject: string;
  from: Mailer;
  receivedAt: Date;
  isRead: boolean;
  /** the first characters of the body, where the server keeps item:Preview (Exchange 2013+) */
  preview?: string;
}

export interface MailboxItem extends MissedConversation {
  itemClass: string;
  to: Mailer[];
  /** the body as text (from item:TextBody, the text body, or the HTML body with the tags removed) */
  bodyText: string;
  /** the HTML body, when the item has one */
  bodyHtml?: string;
}

const envelope = (body: string): string =>
  `<?xml version="1.0" encoding="utf-8"?>` +
  `<soap:Envelope xmlns:soap="${SOAP_NS}" xmlns:m="${M_NS}" xmlns:t="${T_NS}">` +
  `<soap:Header><t:RequestServerVersion Version="${REQUEST_SERVER_VERSION}"/></soap:Header>` +
  `<soap:Body>${body}</soap:Body></soap:Envelope>`;

const fields = (uris: readonly string[]): string => `<t:AdditionalProperties>${uris.map((u) => `<t:FieldURI FieldURI="${u}"/>`).join('')}</t:AdditionalProperties>`;
const SUMMARY_FIELDS = ['item:Subject', 'item:DateTimeReceived', 'message:From', 'message:IsRead', 'item:Preview'];

/** FindItem of the missed conversations in Conversation History, newest first, one page. */
export function findMissedRequest(max: number, offset: number): string {
  return envelope(
    `<m:FindItem Traversal="Shallow">` +
      `<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>${fields(SUMMARY_FIELDS)}</m:ItemShape>` +
      `<m:IndexedPageItemView MaxEntriesReturned="${max}" Offset="${offset}" BasePoint="Beginning"/>` +
      `<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="item:ItemClass"/><t:FieldURIOrConstant><t:Constant Value="${MISSED_CONVERSATION_CLASS}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>` +
      `<m:SortOrder><t:FieldOrder Order="Descending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>` +
      `<m:ParentFolderIds><t:DistinguishedFolderId Id="conversationhistory"/></m:ParentFolderIds>` +
      `</m:FindItem>`,
  );
}

/** GetItem of one item with its body (the best of HTML and text) and, where served, its text body. */
export function getItemRequest(itemId: string): string {
  return envelope(
    `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Best</t:BodyType>` +
      fields(['item:ItemClass', ...SUMMARY_FIELDS, 'item:Body', 'item:TextBody', 'message:ToRecipients']) +
      `</m:ItemShape><m:ItemIds><t:ItemId Id="${escapeXmlAttr(itemId)}"/></m:ItemIds></m:GetItem>`,
  );
}

/** UpdateItem setting message:IsRead (SetItemField). */
export function markReadRequest(itemId: string, changeKey: string, isRead: boolean): string {
  const key = changeKey === '' ? '' : ` ChangeKey="${escapeXmlAttr(changeKey)}"`;
  return envelope(
    `<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange>` +
      `<t:ItemId Id="${escapeXmlAttr(itemId)}"${key}/>` +
      `<t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>${isRead}</t:IsRead></t:Message></t:SetItemField></t:Updates>` +
      `</t:ItemChange></m:ItemChanges></m:UpdateItem>`,
  );
}

/**
 * The one response message of `operation` in a SOAP answer; throws ClientError EWS_ERROR for a
 * SOAP Fault (ResponseCode from its detail) or ResponseClass="Error", HTTP_FAILED when the text
 * is not an EWS answer at all.
 */
export function readResponseMessage(xml: string, operation: string): XmlElement {
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (cause) {
    if (!(cause instanceof XmlError)) throw cause;
    throw new ClientError('HTTP_FAILED', `the EWS answer to ${operation} is not XML: ${cause.message}`, { cause });
  }
  const body = root.ns === SOAP_NS && root.name === 'Envelope' ? childElement(root, SOAP_NS, 'Body') : undefined;
  if (body === undefined) throw new ClientError('HTTP_FAILED', `the EWS answer to ${operation} is not a SOAP 1.1 envelope`);
  const fault = childElement(body, SOAP_NS, 'Fault');
  if (fault !== undefined) {
    const detail = childElement(fault, '', 'detail');
    const code = (detail && childText(detail, E_NS, 'ResponseCode')?.trim()) || childText(fault, '', 'faultcode')?.trim().replace(/^.*:/, '') || 'ErrorInternalServerError';
    const message = (detail && childText(detail, E_NS, 'Message')) ?? childText(fault, '', 'faultstring') ?? '';
    throw new ClientError('EWS_ERROR', `EWS ${operation} failed: ${code}${message === '' ? '' : `: ${message}`}`, { responseCode: code });
  }
  const response = childElement(body, M_NS, `${operation}Response`);
  const messages = response && childElement(response, M_NS, 'ResponseMessages');
  const message = messages && childElement(messages, M_NS, `${operation}ResponseMessage`);
  if (message === undefined) throw new ClientError('HTTP_FAILED', `the EWS answer to ${operation} has no m:${operation}ResponseMessage`);
  if (message.attrs.get('ResponseClass') === 'Error') {
    const code = childText(message, M_NS, 'ResponseCode')?.trim() || 'ErrorInternalServerError';
    const text = childText(message, M_NS, 'MessageText') ?? '';
    throw new ClientError('EWS_ERROR', `EWS ${operation} failed: ${code}${text === '' ? '' : `: ${text}`}`, { responseCode: code });
  }
  return message;
}

/** The items of a FindItemResponseMessage (RootFolder/Items). */
export function readFoundItems(message: XmlElement): MissedConversation[] {
  const items = childElement(childElement(message, M_NS, 'RootFolder') ?? message, T_NS, 'Items');
  return (items?.children ?? []).filter((c) => c.ns === T_NS).map(readSummary);
}

/** The item of a GetItemResponseMessage. */
export function readGotItem(message: XmlElement): MailboxItem {
  const item = childElement(message, M_NS, 'Items')?.children.find((c) => c.ns === T_NS);
  if (item === undefined) throw new ClientError('HTTP_FAILED', 'the EWS answer to GetItem has no item');
  const summary = readSummary(item);
  const body = childElement(item, T_NS, 'Body');
  const isHtml = body?.attrs.get('BodyType') === 'HTML';
  const textBody = childText(item, T_NS, 'TextBody');
  const result: MailboxItem = {
    ...summary,
    itemClass: childText(item, T_NS, 'ItemClass')?.trim() ?? '',
    to: childElements(childElement(item, T_NS, 'ToRecipients') ?? item, T_NS, 'Mailbox').map(readMailer),
    bodyText: textBody ?? (isHtml ? htmlToText(body?.text ?? '') : body?.text ?? ''),
  };
  if (isHtml && body !== undefined) result.bodyHtml = body.text;
  return result;
}

/** The new ItemId and ChangeKey of an UpdateItemResponseMessage. */
export function readUpdatedId(message: XmlElement): { itemId: string; changeKey: string } {
  const item = childElement(message, M_NS, 'Items')?.children.find((c) => c.ns === T_NS);
  const id = item && childElement(item, T_NS, 'ItemId');
  return { itemId: id?.attrs.get('Id') ?? '', changeKey: id?.attrs.get('ChangeKey') ?? '' };
}

function readSummary(item: XmlElement): MissedConversation {
  const id = childElement(item, T_NS, 'ItemId');
  const itemId = id?.attrs.get('Id');
  if (itemId === undefined) throw new ClientError('HTTP_FAILED', `an EWS item (t:${item.name}) has no t:ItemId`);
  const from = childElement(childElement(item, T_NS, 'From') ?? item, T_NS, 'Mailbox');
  const received = childText(item, T_NS, 'DateTimeReceived')?.trim();
  const summary: MissedConversation = {
    itemId,
    changeKey: id?.attrs.get('ChangeKey') ?? '',
    subject: childText(item, T_NS, 'Subject') ?? '',
    from: from === undefined ? { name: '', address: '' } : readMailer(from),
    receivedAt: new Date(received === undefined ? Number.NaN : Date.parse(received)),
    isRead: childText(item, T_NS, 'IsRead')?.trim() === 'true',
  };
  const preview = childText(item, T_NS, 'Preview');
  if (preview !== undefined) summary.preview = preview;
  return summary;
}

function readMailer(mailbox: XmlElement): Mailer {
  const address = childText(mailbox, T_NS, 'EmailAddress')?.trim() ?? '';
  return { name: childText(mailbox, T_NS, 'Name')?.trim() || address, address };
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** A plain-text rendering of an HTML body: scripts and styles dropped, breaks kept, tags removed. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h[1-6])\s*>/gi, '\n')
    // table cells (a transcript's time | sender | text) stay apart on their line
    .replace(/<\/t[dh]\s*>/gi, '  ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ref: string) => {
      if (ref[0] !== '#') return ENTITIES[ref.toLowerCase()] ?? whole;
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    })
    .replace(/[ \t]+\n/g, '\n')
    .trim();
}
