// DeleteItem (EWS reference, "DeleteItem operation"): DeleteType HardDelete | SoftDelete |
// MoveToDeletedItems, ItemIds. SendMeetingCancellations / AffectedTaskOccurrences do not apply to messages.
import { childElement } from '../../../xml/index.ts';
import { deleteItem } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readItemIds } from '../item-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const deleteItemOperation: EwsOperation = {
  name: 'DeleteItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const mode = request.attrs.get('DeleteType');
    if (mode !== 'HardDelete' && mode !== 'SoftDelete' && mode !== 'MoveToDeletedItems') {
      throw new EwsError('ErrorSchemaValidation', `DeleteItem needs DeleteType HardDelete, SoftDelete or MoveToDeletedItems, not ${JSON.stringify(mode ?? '')}`);
    }
    const ids = readItemIds(childElement(request, M_NS, 'ItemIds'), 'm:ItemIds');
    return responseOf(
      'DeleteItem',
      await responseMessages('DeleteItem', ids, async (id) => {
        await deleteItem(ctx.sql, ctx.mailbox.id, id.id, mode, ctx.now, (tx) => ctx.quota.requireRoomToSoftDelete(tx, ctx.mailbox));
        return '';
      }),
    );
  },
};
