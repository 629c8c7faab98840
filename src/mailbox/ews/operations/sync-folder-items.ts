// SyncFolderItems (EWS reference, "SyncFolderItems operation"): ItemShape, SyncFolderId, SyncState,
// Ignore, MaxChangesReturned (1-512). Answers SyncState, IncludesLastItemInRange, then Changes with
// t:Create, t:Update, t:Delete and t:ReadFlagChange in log order. The SyncState is bound to its folder.
import { childElement, childText } from '../../../xml/index.ts';
import { changeFloor, folderChangesSince, lastChange } from '../../changes.ts';
import type { FolderRecord } from '../../folders.ts';
import { getItem } from '../../items.ts';
import { MailboxError } from '../../errors.ts';
import { responseMessage } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderIds, resolveFolder } from '../folder-ids.ts';
import { itemXml, readItemShape } from '../item-xml.ts';
import { readItemIds } from '../item-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsContext, EwsOperation } from '../operation.ts';
import { attr, el, responseOf } from '../write.ts';

export const syncFolderItemsOperation: EwsOperation = {
  name: 'SyncFolderItems',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const shape = readItemShape(childElement(request, M_NS, 'ItemShape'), true);
    const [target, ...more] = readFolderIds(childElement(request, M_NS, 'SyncFolderId'), 'm:SyncFolderId');
    if (target === undefined || more.length > 0) throw new EwsError('ErrorSchemaValidation', 'm:SyncFolderId must name one folder');
    const maxText = childText(request, M_NS, 'MaxChangesReturned')?.trim() ?? '';
    const max = /^\d{1,3}$/.test(maxText) ? Number(maxText) : NaN;
    if (!(max >= 1 && max <= 512)) throw new EwsError('ErrorSchemaValidation', `m:MaxChangesReturned must be 1 to 512, not ${JSON.stringify(maxText)}`);
    const ignoreElement = childElement(request, M_NS, 'Ignore');
    const ignore = new Set(ignoreElement === undefined || ignoreElement.children.length === 0 ? [] : readItemIds(ignoreElement, 'm:Ignore').map((i) => i.id));
    const state = childText(request, M_NS, 'SyncState')?.trim() ?? '';
    return responseOf('SyncFolderItems', [
      await responseMessage('SyncFolderItems', async () => {
        const folder = await resolveFolder(ctx, target);
        const window = await folderChangesSince(ctx.sql, folder.id, await readSyncState(ctx, folder, state), max, ignore);
        let changes = '';
        for (const c of window.changes) changes += await changeXml(ctx, c.kind, c.itemId, shape);
        return `${el('m:SyncState', writeSyncState(folder, window.last))}${el('m:IncludesLastItemInRange', !window.more)}<m:Changes>${changes}</m:Changes>`;
      }),
    ]);
  },
};

async function changeXml(ctx: EwsContext, kind: string, itemId: string, shape: ReturnType<typeof readItemShape>): Promise<string> {
  if (kind === 'delete') return `<t:Delete><t:ItemId${attr('Id', itemId)}/></t:Delete>`;
  let item;
  try {
    item = await getItem(ctx.sql, ctx.mailbox.id, itemId);
  } catch (error) {
    if (error instanceof MailboxError && error.code === 'ITEM_NOT_FOUND') return ''; // gone since; its Delete follows in a later window
    throw error;
  }
  if (kind === 'read') return `<t:ReadFlagChange><t:ItemId${attr('Id', item.id)}${attr('ChangeKey', item.changeKey)}/>${el('t:IsRead', item.isRead)}</t:ReadFlagChange>`;
  const tag = kind === 'create' ? 't:Create' : 't:Update';
  return `<${tag}>${itemXml(item, shape, true)}</${tag}>`;
}

/** base64url of `v1.<folder id>.<log position>`: opaque to clients, checked against the folder. */
function writeSyncState(folder: FolderRecord, last: number): string {
  return Buffer.from(`v1.${folder.id}.${last}`).toString('base64url');
}

async function readSyncState(ctx: EwsContext, folder: FolderRecord, text: string): Promise<number> {
  if (text === '') return 0;
  const parts = Buffer.from(text, 'base64url').toString('utf8').split('.');
  const [version, folderId, seq] = parts;
  const position = Number(seq);
  if (parts.length !== 3 || version !== 'v1' || folderId !== folder.id || !Number.isSafeInteger(position) || position < 0 || position > (await lastChange(ctx.sql))) {
    throw new EwsError('ErrorInvalidSyncStateData', 'the SyncState is not one Parley issued for this folder; synchronise again without a SyncState');
  }
  // a SyncState from before the compacted part of the log would miss what was compacted away
  if (position > 0 && position < (await changeFloor(ctx.sql))) throw new EwsError('ErrorInvalidSyncStateData', 'the SyncState is older than the change log Parley keeps (retention.changeLog); synchronise again without a SyncState');
  return position;
}

