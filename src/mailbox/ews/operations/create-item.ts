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
import { distinguishedFolderId, ensureMailbox, getDistinguishedFolder } from '../../folders.ts';
import type { FolderRecord } from '../../folders.ts';
import { createItem } from '../../items.ts';
import { queueExternal } from '../../smtp/outbound.ts';
import type { Mailer, NewItem } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderId, resolveFolder } from '../folder-ids.ts';
import { itemIdXml, readNewMessage } from '../item-xml.ts';
import { M_NS } from '../names.ts';
import type { EwsContext, EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';
import { WRITE, lockChangeLog } from '../../writes.ts';

type Disposition = 'SaveOnly' | 'SendOnly' | 'SendAndSaveCopy';

export const createItemOperation: EwsOperation = {
  name: 'CreateItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const disposition = request.attrs.get('MessageDisposition') ?? 'SaveOnly';
    if (disposition !== 'SaveOnly' && disposition !== 'SendOnly' && disposition !== 'SendAndSaveCopy') {
      throw new EwsError('ErrorSchemaValidation', `MessageDisposition must be SaveOnly, SendOnly or SendAndSaveCopy, not ${JSON.stringify(disposition)}`);
    }
    const saved = childElement(request, M_NS, 'SavedItemFolderId');
    const items = childElement(request, M_NS, 'Items');
    if (items === undefined || items.children.length === 0) throw new EwsError('ErrorSchemaValidation', 'm:Items must hold at least one item');
    return responseOf(
      'CreateItem',
      await responseMessages('CreateItem', items.children, (message) => createOne(ctx, disposition, saved, message)),
    );
  },
};

async function createOne(ctx: EwsContext, disposition: Disposition, saved: XmlElement | undefined, message: XmlElement): Promise<string> {
  const now = ctx.now();
  const item = readNewMessage(message, now);
  if (disposition === 'SaveOnly') {
    const folder = await savedFolder(ctx, saved, 'drafts');
    await ctx.quota.requireRoomToReceive(ctx.sql, ctx.mailbox);
    return `<m:Items>${itemIdXml(await createItem(ctx.sql, ctx.mailbox.id, folder.id, item, ctx.now))}</m:Items>`;
  }
  const sender: Mailer = { address: ctx.mailbox.address };
  const recipients = [...(item.to ?? []), ...(item.cc ?? [])];
  if (recipients.length === 0) throw new EwsError('ErrorInvalidRequest', 'a message to send needs at least one recipient');
  const addresses = recipients.map((r) => r.address.replace(/^(smtp|sip):/i, '').toLowerCase());
  const isLocal = (a: string) => a.endsWith(`@${ctx.domain}`);
  const unknown: string[] = [];
  for (const a of addresses) if (isLocal(a) && !(await ctx.userExists(a))) unknown.push(a);
  if (unknown.length > 0) throw new EwsError('ErrorInvalidRequest', `no such user in the organisation: ${unknown.join(', ')}`);
  const local = addresses.filter(isLocal);
  const outside = addresses.filter((a) => !isLocal(a));
  const unroutable = outside.filter((a) => !ctx.canSendOutside(a));
  if (unroutable.length > 0) throw new EwsError('ErrorInvalidRequest', `Parley has no SMTP route for ${unroutable.join(', ')}`);
  const sent: NewItem = { ...item, from: sender, sentAt: now, receivedAt: now };
  const messageId = item.internetMessageId ?? `<${randomUUID()}@${ctx.domain}>`;
  await ctx.sql.transaction(async (tx) => {
    // the locks in their order (writes.ts): it may make the recipients' mailboxes
    await lockChangeLog(tx);
    const inTx = { ...ctx, sql: tx };
    await ctx.quota.requireRoomToSend(tx, ctx.mailbox);
    for (const address of new Set(local)) await ctx.quota.requireRoomToReceiveAt(tx, address);
    if (outside.length > 0) {
      const message = { from: sender, to: [...(item.to ?? [])], cc: [...(item.cc ?? [])], subject: item.subject ?? '', html: item.bodyHtml ?? null, text: item.bodyText ?? null, messageId, date: now };
      await queueExternal(tx, sender.address, outside, message, now);
    }
    const copyFolder = disposition === 'SendAndSaveCopy' ? await savedFolder(inTx, saved, 'sentitems') : undefined;
    for (const address of new Set(local)) {
      const mailbox = await ensureMailbox(tx, address, ctx.now);
      const inbox = await distinguishedFolderId(tx, mailbox.id, 'inbox');
      // outside the sender's own mailbox only plain notes arrive: a client cannot forge IM history items in another mailbox
      await createItem(tx, mailbox.id, inbox, { ...sent, itemClass: 'IPM.Note', isRead: false, internetMessageId: null }, ctx.now);
    }
    if (copyFolder) await createItem(tx, ctx.mailbox.id, copyFolder.id, { ...sent, isRead: true, internetMessageId: messageId }, ctx.now);
  }, WRITE);
  return '<m:Items/>';
}

async function savedFolder(ctx: EwsContext, saved: XmlElement | undefined, fallback: 'drafts' | 'sentitems'): Promise<FolderRecord> {
  const target = saved?.children[0];
  if (saved !== undefined && (target === undefined || saved.children.length > 1)) throw new EwsError('ErrorSchemaValidation', 'm:SavedItemFolderId must hold one folder id');
  return target === undefined ? getDistinguishedFolder(ctx.sql, ctx.mailbox.id, fallback) : resolveFolder(ctx, readFolderId(target));
}
