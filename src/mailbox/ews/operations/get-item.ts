// GetItem (EWS reference, "GetItem operation"): ItemShape (BaseShape, IncludeMimeContent, BodyType, AdditionalProperties), ItemIds.
import { childElement } from '../../../xml/index.ts';
import { getItem } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { itemXml, readItemShape } from '../item-xml.ts';
import { readItemIds } from '../item-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const getItemOperation: EwsOperation = {
  name: 'GetItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const shape = readItemShape(childElement(request, M_NS, 'ItemShape'), false);
    const ids = readItemIds(childElement(request, M_NS, 'ItemIds'), 'm:ItemIds');
    return responseOf(
      'GetItem',
      await responseMessages('GetItem', ids, async (id) => `<m:Items>${itemXml(await getItem(ctx.sql, ctx.mailbox.id, id.id), shape, false, ctx.domain)}</m:Items>`),
    );
  },
};
