// t:Message as we write it (EWS reference, Message; properties in schema order: ItemType's, then
// MessageType's) and as we read it in CreateItem.
import type { XmlElement } from '../../xml/index.ts';
import { childElement, childElements, childText, escapeXmlText } from '../../xml/index.ts';
import type { ItemRecord, Mailer, NewItem } from '../items.ts';
import { itemToMime } from '../mime.ts';
import { EwsError } from './codes.ts';
import { extendedPropertiesXml, readExtendedFieldUri } from './extended.ts';
import type { ExtendedRequest } from './extended.ts';
import { readBaseShape } from './folder-ids.ts';
import type { BaseShape } from './folder-ids.ts';
import { T_NS } from './names.ts';
import { attr, dateTime, el } from './write.ts';

export interface ItemShape {
  base: BaseShape;
  bodyType: 'Best' | 'HTML' | 'Text';
  additional: Set<string>;
  /** MAPI properties asked by PropertyTag */
  extended: readonly ExtendedRequest[];
  /** IncludeMimeContent: the item as an Internet message, base64, before the ItemId */
  mime: boolean;
}

type Writer = (item: ItemRecord, shape: ItemShape) => string;

/** Every property we serve, by FieldURI, in schema order. */
const PROPERTIES: ReadonlyArray<readonly [string, Writer]> = [
  ['item:ParentFolderId', (i) => `<t:ParentFolderId${attr('Id', i.folderId)}/>`],
  ['item:ItemClass', (i) => el('t:ItemClass', i.itemClass)],
  ['item:Subject', (i) => el('t:Subject', i.subject)],
  ['item:Body', bodyXml],
  ['item:DateTimeReceived', (i) => el('t:DateTimeReceived', dateTime(i.receivedAt))],
  ['item:Size', (i) => el('t:Size', i.size)],
  ['item:IsDraft', () => el('t:IsDraft', false)],
  ['item:DateTimeSent', (i) => el('t:DateTimeSent', i.sentAt === null ? null : dateTime(i.sentAt))],
  ['item:DateTimeCreated', (i) => el('t:DateTimeCreated', dateTime(i.createdAt))],
  ['item:DisplayCc', (i) => el('t:DisplayCc', display(i.cc))],
  ['item:DisplayTo', (i) => el('t:DisplayTo', display(i.to))],
  ['item:HasAttachments', () => el('t:HasAttachments', false)],
  // t:ExtendedProperty comes here in ItemType's sequence; it is asked by tag, not by FieldURI
  ['', (i, shape) => extendedPropertiesXml(shape.extended, (n) => itemProperty(i, n))],
  ['item:LastModifiedTime', (i) => el('t:LastModifiedTime', dateTime(i.updatedAt))],
  ['message:ToRecipients', (i) => (i.to.length === 0 ? '' : `<t:ToRecipients>${i.to.map(mailboxXml).join('')}</t:ToRecipients>`)],
  ['message:CcRecipients', (i) => (i.cc.length === 0 ? '' : `<t:CcRecipients>${i.cc.map(mailboxXml).join('')}</t:CcRecipients>`)],
  ['message:ConversationTopic', (i) => el('t:ConversationTopic', i.conversationTopic)],
  ['message:From', (i) => (i.from === null ? '' : `<t:From>${mailboxXml(i.from)}</t:From>`)],
  ['message:InternetMessageId', (i) => el('t:InternetMessageId', i.internetMessageId)],
  ['message:IsRead', (i) => el('t:IsRead', i.isRead)],
];
const KNOWN = new Set(PROPERTIES.map(([uri]) => uri).filter((uri) => uri !== '').concat('item:ItemId'));
const DEFAULT = new Set(['item:ParentFolderId', 'item:ItemClass', 'item:Subject', 'item:Body', 'item:DateTimeReceived', 'item:Size', 'item:DateTimeSent', 'item:DateTimeCreated', 'item:DisplayCc', 'item:DisplayTo', 'item:HasAttachments', 'message:ToRecipients', 'message:From', 'message:IsRead']);

/** m:ItemShape: BaseShape, BodyType, AdditionalProperties (FieldURI only). FindItem may not ask for the body. */
export function readItemShape(shape: XmlElement | undefined, forFind: boolean): ItemShape {
  const base = readBaseShape(shape, 'm:ItemShape');
  const bodyType = shape && childText(shape, T_NS, 'BodyType')?.trim();
  const additional = new Set<string>();
  const extended: ExtendedRequest[] = [];
  const extra = shape && childElement(shape, T_NS, 'AdditionalProperties');
  for (const p of extra?.children ?? []) {
    const ext = readExtendedFieldUri(p);
    if (ext !== undefined) extended.push(ext);
    const uri = p.attrs.get('FieldURI');
    if (p.ns !== T_NS || p.name !== 'FieldURI' || uri === undefined) continue; // extended/indexed properties: not kept by Parley
    if (!KNOWN.has(uri)) continue; // a valid property Parley does not keep is left out, as Exchange leaves out unset ones
    if (forFind && uri === 'item:Body') throw new EwsError('ErrorInvalidPropertyRequest', 'FindItem cannot return item:Body; use GetItem');
    additional.add(uri);
  }
  const includeMime = shape && childText(shape, T_NS, 'IncludeMimeContent')?.trim();
  if (includeMime !== undefined && !['true', 'false', '1', '0'].includes(includeMime)) throw new EwsError('ErrorSchemaValidation', `t:IncludeMimeContent must be a boolean, not ${JSON.stringify(includeMime)}`);
  const mime = includeMime === 'true' || includeMime === '1';
  if (forFind && mime) throw new EwsError('ErrorInvalidPropertyRequest', 'FindItem cannot return the MIME content; use GetItem');
  return { base, bodyType: bodyType === 'HTML' || bodyType === 'Text' ? bodyType : 'Best', additional, extended, mime };
}

/** `domain` names the organisation in a Message-ID made for MIME content of an item that has none. */
export function itemXml(item: ItemRecord, shape: ItemShape, forFind = false, domain = 'localhost'): string {
  let out = '<t:Message>';
  if (shape.mime) out += `<t:MimeContent CharacterSet="UTF-8">${itemToMime(item, domain).toString('base64')}</t:MimeContent>`;
  out += `<t:ItemId${attr('Id', item.id)}${attr('ChangeKey', item.changeKey)}/>`;
  for (const [uri, write] of PROPERTIES) {
    const wanted = uri === '' || shape.additional.has(uri) || shape.base === 'AllProperties' || (shape.base === 'Default' && DEFAULT.has(uri));
    if (!wanted || (forFind && uri === 'item:Body')) continue;
    out += write(item, shape);
  }
  return `${out}</t:Message>`;
}

/** Only the id, as CreateItem and UpdateItem answer. */
export function itemIdXml(item: ItemRecord): string {
  return `<t:Message><t:ItemId${attr('Id', item.id)}${attr('ChangeKey', item.changeKey)}/></t:Message>`;
}

// MAPI message properties ([MS-OXPROPS]) answered through t:ExtendedFieldURI
const PR_SUBJECT = 0x0037;
const PR_MESSAGE_CLASS = 0x001a;
const PR_MESSAGE_SIZE = 0x0e08;
/** the message's number in the store: IMAP gateways use it as the UID */
const PR_INTERNET_ARTICLE_NUMBER = 0x0e23;
const PR_LAST_MODIFICATION_TIME = 0x3008;
const PR_CREATION_TIME = 0x3007;

function itemProperty(i: ItemRecord, n: number) {
  switch (n) {
    case PR_MESSAGE_CLASS:
      return { value: i.itemClass, type: 'String' } as const;
    case PR_SUBJECT:
      return { value: i.subject, type: 'String' } as const;
    case PR_CLIENT_SUBMIT_TIME:
      return i.sentAt === null ? undefined : ({ value: i.sentAt, type: 'SystemTime' } as const);
    case PR_MESSAGE_DELIVERY_TIME:
      return { value: i.receivedAt, type: 'SystemTime' } as const;
    case PR_MESSAGE_FLAGS:
      return { value: i.isRead ? MSGFLAG_READ : 0, type: 'Integer' } as const;
    case PR_MESSAGE_SIZE:
      return { value: i.size, type: 'Integer' } as const;
    case PR_INTERNET_ARTICLE_NUMBER:
      return { value: i.articleNumber, type: 'Integer' } as const;
    case PR_INTERNET_MESSAGE_ID:
      return i.internetMessageId === null ? undefined : ({ value: i.internetMessageId, type: 'String' } as const);
    case PR_CREATION_TIME:
      return { value: i.createdAt, type: 'SystemTime' } as const;
    case PR_LAST_MODIFICATION_TIME:
      return { value: i.updatedAt, type: 'SystemTime' } as const;
    default:
      return undefined;
  }
}

function bodyXml(item: ItemRecord, shape: ItemShape): string {
  const wantHtml = shape.bodyType === 'HTML' || (shape.bodyType === 'Best' && item.bodyHtml !== null);
  if (wantHtml) {
    const html = item.bodyHtml ?? `<html><body><pre>${escapeHtml(item.bodyText ?? '')}</pre></body></html>`;
    return `<t:Body BodyType="HTML">${escapeXmlText(html)}</t:Body>`;
  }
  const text = item.bodyText ?? htmlToText(item.bodyHtml ?? '');
  return `<t:Body BodyType="Text">${escapeXmlText(text)}</t:Body>`;
}

function mailboxXml(m: Mailer): string {
  return `<t:Mailbox>${el('t:Name', m.name ?? m.address)}${el('t:EmailAddress', m.address)}<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>`;
}

const display = (list: readonly Mailer[]): string => list.map((m) => m.name ?? m.address).join('; ');
const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
const htmlToText = (html: string): string =>
  html.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, '').replace(/<br\s*\/?>|<\/p>|<\/div>/gi, '\n').replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').trim();

/** The properties of a t:Message given to CreateItem. Read-only properties are ignored, as Exchange ignores unset ones. */
export function readNewMessage(message: XmlElement, now: number): NewItem {
  if (message.ns !== T_NS || (message.name !== 'Message' && message.name !== 'Item')) {
    throw new EwsError('ErrorInvalidRequest', `Parley stores messages only; t:${message.name} is not supported`);
  }
  // a message given as MIME (DavMail's IMAP APPEND, a client's "copy to Sent") would be stored
  // without its subject and body if the other properties were read alone: refused instead
  if (childElement(message, T_NS, 'MimeContent') !== undefined) throw new EwsError('ErrorInvalidRequest', 'Parley does not store messages given as t:MimeContent; give the message as properties (t:Subject, t:Body, t:From, t:ToRecipients)');
  const body = childElement(message, T_NS, 'Body');
  const bodyType = body?.attrs.get('BodyType');
  if (body !== undefined && bodyType !== 'HTML' && bodyType !== 'Text') throw new EwsError('ErrorSchemaValidation', 't:Body needs BodyType="HTML" or "Text"');
  const isRead = childText(message, T_NS, 'IsRead')?.trim();
  if (isRead !== undefined && !['true', 'false', '1', '0'].includes(isRead)) throw new EwsError('ErrorSchemaValidation', `t:IsRead must be a boolean, not ${JSON.stringify(isRead)}`);
  const ext = extendedProperties(message);
  const flags = ext.get(PR_MESSAGE_FLAGS);
  const from = childElement(message, T_NS, 'From') ?? childElement(message, T_NS, 'Sender');
  const fromMailbox = from && childElement(from, T_NS, 'Mailbox');
  return {
    itemClass: childText(message, T_NS, 'ItemClass')?.trim() || 'IPM.Note',
    subject: childText(message, T_NS, 'Subject') ?? '',
    bodyHtml: bodyType === 'HTML' ? body?.text ?? '' : null,
    bodyText: bodyType === 'Text' ? body?.text ?? '' : null,
    from: fromMailbox ? readMailer(fromMailbox) : null,
    to: recipients(message, 'ToRecipients'),
    cc: recipients(message, 'CcRecipients'),
    sentAt: time(ext.get(PR_CLIENT_SUBMIT_TIME)) ?? null,
    receivedAt: time(ext.get(PR_MESSAGE_DELIVERY_TIME)) ?? now,
    isRead: isRead === undefined && flags !== undefined ? (Number(flags) & MSGFLAG_READ) !== 0 : isRead === 'true' || isRead === '1',
    internetMessageId: childText(message, T_NS, 'InternetMessageId')?.trim() || ext.get(PR_INTERNET_MESSAGE_ID)?.trim() || null,
    conversationTopic: childText(message, T_NS, 'Subject') ?? null,
  };
}

function recipients(message: XmlElement, name: string): Mailer[] {
  const list = childElement(message, T_NS, name);
  return list === undefined ? [] : childElements(list, T_NS, 'Mailbox').map(readMailer);
}

function readMailer(mailbox: XmlElement): Mailer {
  const address = childText(mailbox, T_NS, 'EmailAddress')?.trim() ?? '';
  if (address === '') throw new EwsError('ErrorInvalidRequest', 'a t:Mailbox needs a t:EmailAddress');
  const name = childText(mailbox, T_NS, 'Name')?.trim();
  return name ? { address, name } : { address };
}

// MAPI properties a delivering gateway sets through t:ExtendedProperty, since EWS makes the
// matching first-class properties read-only ([MS-OXPROPS]): the submit and delivery times, the
// message flags (read, and without MSGFLAG_UNSENT so that the item is not a draft), the Internet Message-ID.
export const PR_CLIENT_SUBMIT_TIME = 0x0039;
export const PR_MESSAGE_DELIVERY_TIME = 0x0e06;
export const PR_MESSAGE_FLAGS = 0x0e07;
export const PR_INTERNET_MESSAGE_ID = 0x1035;
export const MSGFLAG_READ = 0x1;

function extendedProperties(message: XmlElement): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of childElements(message, T_NS, 'ExtendedProperty')) {
    const tag = childElement(p, T_NS, 'ExtendedFieldURI')?.attrs.get('PropertyTag');
    const value = childText(p, T_NS, 'Value');
    if (tag === undefined || value === undefined) continue; // named properties: not kept
    const n = /^0x[0-9a-f]{1,4}$/i.test(tag) ? parseInt(tag, 16) : /^\d{1,5}$/.test(tag) ? Number(tag) : NaN;
    if (!Number.isNaN(n)) out.set(n, value);
  }
  return out;
}

function time(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new EwsError('ErrorSchemaValidation', `${JSON.stringify(text)} is not an xs:dateTime`);
  return ms;
}
