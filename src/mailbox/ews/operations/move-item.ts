// MoveItem (EWS reference, "MoveItem operation"): ToFolderId, ItemIds. Within one mailbox the item
// keeps its id (Exchange may issue a new one; clients use the id in the answer) and gets a new ChangeKey.
import { childElement } from '../../../xml/index.ts';
import { moveItem } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderIds, resolveFolder } from '../folder-ids.ts';
import { itemIdXml } from '../item-xml.ts';
import { readItemIds } from '../item-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const moveItemOperation: EwsOperation = {
  name: 'MoveItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const [target, ...more] = readFolderIds(childElement(request, M_NS, 'ToFolderId'), 'm:ToFolderId');
    if (target === undefined || more.length > 0) throw new EwsError('ErrorSchemaValidation', 'm:ToFolderId must name one folder');
    const ids = readItemIds(childElement(request, M_NS, 'ItemIds'), 'm:ItemIds');
    return responseOf(
      'MoveItem',
      await responseMessages('MoveItem', ids, async (id) => `<m:Items>${itemIdXml(await moveItem(ctx.sql, ctx.mailbox.id, id.id, (await resolveFolder(ctx, target)).id, ctx.now))}</m:Items>`),
    );
  },
};
