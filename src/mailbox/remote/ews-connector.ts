// The MailboxConnector for a mailbox behind EWS: an external Exchange, or another Parley. The
// delivery is idempotent by InternetMessageId: FindItem first (message:InternetMessageId is
// searchable), CreateItem SaveOnly only when nothing was found. The item is written with the MAPI
// message flags of a received message (no MSGFLAG_UNSENT), so it is never a draft — the Skype for
// Business failure where Drafts filled with copies. The same CreateItem puts a partner's offline
// messages in the recipient's Inbox as a plain IPM.Note (folder inbox): FindItem looks there first.
// A service account delivers to every user with ExchangeImpersonation (the ApplicationImpersonation
// right), or to one mailbox as a delegate.
// Limits: one delivery per id at a time (the spool guarantees it); two racing deliveries of one id
// to a real Exchange could both create.
import { deliveryItemError } from '../connector.ts';
import { runChecks } from '../checks.ts';
import type { ConnectorCheck, DeliveryItem, DeliveryResult, MailboxConnector } from '../connector.ts';
import { MailboxError } from '../errors.ts';
import type { Mailer } from '../items.ts';
import { MISSED_CLASS } from '../missed.ts';
import type { MissedSummary } from '../missed.ts';
import { M_NS, SOAP_NS, T_NS } from '../ews/names.ts';
import type { EwsVersion } from '../ews/names.ts';
import { MSGFLAG_READ, PR_CLIENT_SUBMIT_TIME, PR_INTERNET_MESSAGE_ID, PR_MESSAGE_DELIVERY_TIME, PR_MESSAGE_FLAGS } from '../ews/item-xml.ts';
import { attr, el } from '../ews/write.ts';
import type { XmlElement } from '../../xml/index.ts';
import { XmlError, childElement, childText, escapeXmlText, parseXml } from '../../xml/index.ts';

export interface EwsConnectorOptions {
  /** e.g. https://mail.example.com/EWS/Exchange.asmx */
  url: string;
  username: string;
  password: string;
  /** impersonation (default): act as each recipient; delegate: open the recipient's folder with the account's own rights */
  access?: 'impersonation' | 'delegate';
  version?: EwsVersion;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Response codes that will not change by retrying. A full mailbox (ErrorQuotaExceeded) is not one:
 * it changes when its owner makes room, so it is retried until OfflineImMaxAge, as mail is (SMTP's
 * 452 4.2.2 "mailbox full" is a transient failure, RFC 3463) and as Parley's own SMTP answers it.
 */
const PERMANENT = new Set(['ErrorAccessDenied', 'ErrorImpersonationDenied', 'ErrorNonExistentMailbox', 'ErrorFolderNotFound', 'ErrorInvalidRequest', 'ErrorSchemaValidation', 'ErrorInvalidServerVersion', 'ErrorImpersonateUserDenied']);

export class EwsMailboxConnector implements MailboxConnector {
  readonly #opts: EwsConnectorOptions;

  constructor(opts: EwsConnectorOptions) {
    this.#opts = opts;
  }

  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    const invalid = deliveryItemError(item);
    if (invalid !== undefined) throw invalid;
    const folder = this.#folder(item);
    const found = await this.#call(
      item.mailbox,
      `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="1" Offset="0" BasePoint="Beginning"/>` +
        `<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:InternetMessageId"/><t:FieldURIOrConstant><t:Constant${attr('Value', item.internetMessageId)}/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>` +
        `<m:ParentFolderIds>${folder}</m:ParentFolderIds></m:FindItem>`,
    );
    const existing = firstItemId(childElement(childElement(found, M_NS, 'RootFolder') ?? found, T_NS, 'Items'));
    if (existing !== undefined) return { itemId: existing, created: false };
    const created = await this.#call(item.mailbox, `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>${folder}</m:SavedItemFolderId><m:Items>${messageXml(item)}</m:Items></m:CreateItem>`);
    const id = firstItemId(childElement(created, M_NS, 'Items'));
    if (id === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', 'the EWS server created the item but returned no ItemId');
    return { itemId: id, created: true };
  }

  /** Two counting FindItems (no items returned): Missed items, and the unread ones among them. */
  async missedSummary(mailbox: string): Promise<MissedSummary> {
    const folder = this.#folder({ mailbox, folder: 'conversationhistory' });
    const missed = `<t:IsEqualTo><t:FieldURI FieldURI="item:ItemClass"/><t:FieldURIOrConstant><t:Constant${attr('Value', MISSED_CLASS)}/></t:FieldURIOrConstant></t:IsEqualTo>`;
    const unread = `<t:And>${missed}<t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/><t:FieldURIOrConstant><t:Constant Value="false"/></t:FieldURIOrConstant></t:IsEqualTo></t:And>`;
    const count = async (restriction: string): Promise<number> => {
      const found = await this.#call(
        mailbox,
        `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="1" Offset="0" BasePoint="Beginning"/>` +
          `<m:Restriction>${restriction}</m:Restriction><m:ParentFolderIds>${folder}</m:ParentFolderIds></m:FindItem>`,
      );
      const total = Number(childElement(found, M_NS, 'RootFolder')?.attrs.get('TotalItemsInView'));
      if (!Number.isInteger(total) || total < 0) throw new MailboxError('REMOTE_UNAVAILABLE', 'the EWS server answered FindItem without TotalItemsInView');
      return total;
    };
    const [total, unreadCount] = await Promise.all([count(missed), count(unread)]);
    return { total, unread: unreadCount };
  }

  /**
   * sign-in and mailbox: a GetFolder of the mailbox's root as the recipient (impersonation) —
   * HTTP 401/403 is the account's credentials, an EWS error the right to act for the mailbox or
   * the mailbox itself; folder: a GetFolder of conversationhistory; write: a CreateItem there
   * (SaveOnly) and at once a DeleteItem HardDelete of it, so nothing is left behind.
   */
  async check(mailbox: string): Promise<ConnectorCheck[]> {
    const getFolder = (name: string) => this.#call(mailbox, `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>${this.#folder({ mailbox, folder: name })}</m:FolderIds></m:GetFolder>`);
    const right = this.#opts.access === 'delegate' ? `${this.#opts.username} needs full access (or folder permissions) to that mailbox` : `${this.#opts.username} needs the ApplicationImpersonation right (Exchange: New-ManagementRoleAssignment -Role ApplicationImpersonation; Parley: parley mailbox impersonation grant)`;
    let root: Promise<unknown> | undefined;
    return runChecks([
      {
        step: 'sign-in',
        run: async () => {
          root = getFolder('msgfolderroot').catch((error: unknown) => error);
          const answer = await root;
          if (answer instanceof MailboxError && /refused the credentials/.test(answer.message)) throw new MailboxError('REMOTE_REFUSED', `${answer.message}: check username and password (or passwordFile)`);
          if (answer instanceof MailboxError && /cannot reach|without a usable SOAP body/.test(answer.message)) throw answer;
          return `${this.#opts.url} accepted the credentials of ${this.#opts.username}`;
        },
      },
      {
        step: 'mailbox',
        run: async () => {
          const answer = await root;
          if (answer instanceof Error) throw new MailboxError('REMOTE_REFUSED', `${answer.message}: ${right}, and ${mailbox} must have a mailbox on that server`);
          return `opened the mailbox of ${mailbox} (${this.#opts.access === 'delegate' ? 'as a delegate' : 'ExchangeImpersonation'})`;
        },
      },
      {
        step: 'folder',
        run: async () => {
          await getFolder('conversationhistory');
          return 'found Conversation History (conversationhistory)';
        },
      },
      {
        step: 'write',
        run: async () => {
          const folder = this.#folder({ mailbox, folder: 'conversationhistory' });
          const created = await this.#call(mailbox, `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>${folder}</m:SavedItemFolderId><m:Items><t:Message>${el('t:ItemClass', 'IPM.Note')}${el('t:Subject', 'Parley mailbox test (deleted at once)')}</t:Message></m:Items></m:CreateItem>`);
          const id = firstItemId(childElement(created, M_NS, 'Items'));
          if (id === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', 'the EWS server created the test item but returned no ItemId');
          await this.#call(mailbox, `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId${attr('Id', id)}/></m:ItemIds></m:DeleteItem>`);
          return 'created an item in Conversation History and deleted it for good (DeleteItem HardDelete)';
        },
      },
    ]);
  }

  #folder(item: { mailbox: string; folder: string }): string {
    const mailbox = this.#opts.access === 'delegate' ? `<t:Mailbox>${el('t:EmailAddress', item.mailbox)}</t:Mailbox>` : '';
    return `<t:DistinguishedFolderId${attr('Id', item.folder)}>${mailbox}</t:DistinguishedFolderId>`;
  }

  /** One request; returns the single response message, or throws MailboxError REMOTE_UNAVAILABLE / REMOTE_REFUSED. */
  async #call(mailbox: string, operation: string): Promise<XmlElement> {
    const o = this.#opts;
    const impersonation = o.access === 'delegate' ? '' : `<t:ExchangeImpersonation><t:ConnectingSID>${el('t:PrimarySmtpAddress', mailbox)}</t:ConnectingSID></t:ExchangeImpersonation>`;
    const body =
      `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP_NS}" xmlns:m="${M_NS}" xmlns:t="${T_NS}"><s:Header>` +
      `<t:RequestServerVersion${attr('Version', o.version ?? 'Exchange2013')}/>${impersonation}</s:Header><s:Body>${operation}</s:Body></s:Envelope>`;
    let res: Response;
    try {
      res = await (o.fetch ?? fetch)(o.url, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', authorization: `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}` },
        body,
        signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
      });
    } catch (cause) {
      throw new MailboxError('REMOTE_UNAVAILABLE', `cannot reach the EWS server ${o.url}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401 || res.status === 403) throw new MailboxError('REMOTE_REFUSED', `the EWS server ${o.url} refused the credentials of ${o.username} (HTTP ${res.status})`);
    let root: XmlElement;
    try {
      root = parseXml(text);
    } catch (cause) {
      if (!(cause instanceof XmlError)) throw cause;
      const code = res.status >= 500 || res.status === 429 ? 'REMOTE_UNAVAILABLE' : 'REMOTE_REFUSED';
      throw new MailboxError(code, `the EWS server ${o.url} answered HTTP ${res.status} without a usable SOAP body (${cause.code})`, { cause });
    }
    const soapBody = childElement(root, SOAP_NS, 'Body');
    const fault = soapBody && childElement(soapBody, SOAP_NS, 'Fault');
    if (fault !== undefined) {
      const detail = childElement(fault, '', 'detail');
      const code = (detail && childText(detail, 'http://schemas.microsoft.com/exchange/services/2006/errors', 'ResponseCode')) ?? childText(fault, '', 'faultcode') ?? 'fault';
      throw new MailboxError(PERMANENT.has(code) ? 'REMOTE_REFUSED' : 'REMOTE_UNAVAILABLE', `the EWS server answered ${code}: ${childText(fault, '', 'faultstring') ?? ''}`);
    }
    const message = soapBody?.children[0]?.children[0]?.children[0];
    if (message === undefined) throw new MailboxError('REMOTE_UNAVAILABLE', `the EWS server ${o.url} answered HTTP ${res.status} without a response message`);
    const code = childText(message, M_NS, 'ResponseCode') ?? '';
    if (message.attrs.get('ResponseClass') === 'Error') {
      throw new MailboxError(PERMANENT.has(code) ? 'REMOTE_REFUSED' : 'REMOTE_UNAVAILABLE', `the EWS server answered ${code}: ${childText(message, M_NS, 'MessageText') ?? ''}`);
    }
    return message;
  }
}

function firstItemId(items: XmlElement | undefined): string | undefined {
  const item = items?.children[0];
  return item && childElement(item, T_NS, 'ItemId')?.attrs.get('Id');
}

/** t:Message in schema order: ItemClass, Subject, Body, ExtendedProperty*, ToRecipients, From, IsRead. */
function messageXml(item: DeliveryItem): string {
  const ext = (tag: number, type: string, value: string) => `<t:ExtendedProperty><t:ExtendedFieldURI${attr('PropertyTag', `0x${tag.toString(16).padStart(4, '0')}`)}${attr('PropertyType', type)}/>${el('t:Value', value)}</t:ExtendedProperty>`;
  const mailbox = (m: Mailer) => `<t:Mailbox>${el('t:Name', m.name)}${el('t:EmailAddress', m.address)}</t:Mailbox>`;
  const sent = item.sentAt.toISOString();
  return (
    `<t:Message>${el('t:ItemClass', item.itemClass)}${el('t:Subject', item.subject)}` +
    `<t:Body BodyType="HTML">${escapeXmlText(item.bodyHtml)}</t:Body>` +
    ext(PR_CLIENT_SUBMIT_TIME, 'SystemTime', sent) +
    ext(PR_MESSAGE_DELIVERY_TIME, 'SystemTime', new Date().toISOString()) +
    ext(PR_MESSAGE_FLAGS, 'Integer', String(item.isRead ? MSGFLAG_READ : 0)) +
    ext(PR_INTERNET_MESSAGE_ID, 'String', item.internetMessageId) +
    (item.to.length > 0 ? `<t:ToRecipients>${item.to.map(mailbox).join('')}</t:ToRecipients>` : '') +
    `<t:From>${mailbox(item.from)}</t:From>${el('t:IsRead', item.isRead)}</t:Message>`
  );
}
