// CreateItem (EWS reference, "CreateItem operation"): MessageDisposition, SavedItemFolderId, Items.
// SaveOnly stores the items in SavedItemFolderId (default Drafts). SendOnly and SendAndSaveCopy
// deliver to local recipients' Inbox (From is always the sender: no spoofing), and SendAndSaveCopy
// keeps a read copy in SavedItemFolderId (default Sent Items). Recipients outside the organisation
// go to the durable SMTP outbox when a route exists; without one the item fails before anything is
// stored. Sent messages answer with an empty m:Items, as Exchange does.
// Quotas (quota.ts): SaveOnly needs the caller's mailbox below ProhibitSendReceiveQuota; a send
// needs it below ProhibitSendQuota and every local recipient's below ProhibitSendReceiveQuota,
// checked before anything is stored; a refusal is ErrorQuotaExceeded for that item.
import { randomUUID } from 'node:crypto';
import type { XmlElement } from '../../../xml/index.ts';
import { childElement } from '../../../xml/index.ts';
import { transaction } from '../../../storage/index.ts';
import { ensureMailbox, getDistinguishedFolder } from '../../folders.ts';
import type { FolderRecord } from '../../folders.ts';
import { createItem } from '../../items.ts';
import { queueExternal } from '../../smtp/outbound.ts';
import type { Mailer, NewItem } from '../../items.ts';
import { responseMessage } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderId, resolveFolder } from '../folder-ids.ts';
import { itemIdXml, readNewMessage } from '../item-xml.ts';
import { M_NS } from '../names.ts';
import type { EwsContext, EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

type Disposition = 'SaveOnly' | 'SendOnly' | 'SendAndSaveCopy';

export const createItemOperation: EwsOperation = {
  name: 'CreateItem',
  since: 'Exchange2007_SP1',
  handle(ctx, request) {
    const disposition = request.attrs.get('MessageDisposition') ?? 'SaveOnly';
    if (disposition !== 'SaveOnly' && disposition !== 'SendOnly' && disposition !== 'SendAndSaveCopy') {
      throw new EwsError('ErrorSchemaValidation', `MessageDisposition must be SaveOnly, SendOnly or SendAndSaveCopy, not ${JSON.stringify(disposition)}`);
    }
    const saved = childElement(request, M_NS, 'SavedItemFolderId');
    const items = childElement(request, M_NS, 'Items');
    if (items === undefined || items.children.length === 0) throw new EwsError('ErrorSchemaValidation', 'm:Items must hold at least one item');
    return responseOf(
      'CreateItem',
      items.children.map((message) => responseMessage('CreateItem', () => createOne(ctx, disposition, saved, message))),
    );
  },
};

function createOne(ctx: EwsContext, disposition: Disposition, saved: XmlElement | undefined, message: XmlElement): string {
  const now = ctx.now();
  const item = readNewMessage(message, now);
  if (disposition === 'SaveOnly') {
    const folder = savedFolder(ctx, saved, 'drafts');
    ctx.quota.requireRoomToReceive(ctx.db, ctx.mailbox);
    return `<m:Items>${itemIdXml(createItem(ctx.db, ctx.mailbox.id, folder.id, item, ctx.now))}</m:Items>`;
  }
  const sender: Mailer = { address: ctx.mailbox.address };
  const recipients = [...(item.to ?? []), ...(item.cc ?? [])];
  if (recipients.length === 0) throw new EwsError('ErrorInvalidRequest', 'a message to send needs at least one recipient');
  const addresses = recipients.map((r) => r.address.replace(/^(smtp|sip):/i, '').toLowerCase());
  const isLocal = (a: string) => a.endsWith(`@${ctx.domain}`);
  const unknown = addresses.filter((a) => isLocal(a) && !ctx.userExists(a));
  if (unknown.length > 0) throw new EwsError('ErrorInvalidRequest', `no such user in the organisation: ${unknown.join(', ')}`);
  const local = addresses.filter(isLocal);
  const outside = addresses.filter((a) => !isLocal(a));
  const unroutable = outside.filter((a) => !ctx.canSendOutside(a));
  if (unroutable.length > 0) throw new EwsError('ErrorInvalidRequest', `Parley has no SMTP route for ${unroutable.join(', ')}`);
  const sent: NewItem = { ...item, from: sender, sentAt: now, receivedAt: now };
  const messageId = item.internetMessageId ?? `<${randomUUID()}@${ctx.domain}>`;
  transaction(ctx.db, () => {
    ctx.quota.requireRoomToSend(ctx.db, ctx.mailbox);
    for (const address of new Set(local)) ctx.quota.requireRoomToReceiveAt(ctx.db, address);
    if (outside.length > 0) {
      const message = { from: sender, to: [...(item.to ?? [])], cc: [...(item.cc ?? [])], subject: item.subject ?? '', html: item.bodyHtml ?? null, text: item.bodyText ?? null, messageId, date: now };
      queueExternal(ctx.db, sender.address, outside, message, now);
    }
    const copyFolder = disposition === 'SendAndSaveCopy' ? savedFolder(ctx, saved, 'sentitems') : undefined;
    for (const address of new Set(local)) {
      const mailbox = ensureMailbox(ctx.db, address, ctx.now);
      const inbox = getDistinguishedFolder(ctx.db, mailbox.id, 'inbox');
      // outside the sender's own mailbox only plain notes arrive: a client cannot forge IM history items in another mailbox
      createItem(ctx.db, mailbox.id, inbox.id, { ...sent, itemClass: 'IPM.Note', isRead: false, internetMessageId: null }, ctx.now);
    }
    if (copyFolder) createItem(ctx.db, ctx.mailbox.id, copyFolder.id, { ...sent, isRead: true, internetMessageId: messageId }, ctx.now);
  });
  return '<m:Items/>';
}

function savedFolder(ctx: EwsContext, saved: XmlElement | undefined, fallback: 'drafts' | 'sentitems'): FolderRecord {
  const target = saved?.children[0];
  if (saved !== undefined && (target === undefined || saved.children.length > 1)) throw new EwsError('ErrorSchemaValidation', 'm:SavedItemFolderId must hold one folder id');
  return target === undefined ? getDistinguishedFolder(ctx.db, ctx.mailbox.id, fallback) : resolveFolder(ctx, readFolderId(target));
}
