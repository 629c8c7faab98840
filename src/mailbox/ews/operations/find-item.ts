// FindItem (EWS reference, "FindItem operation"): Traversal Shallow, ItemShape, IndexedPageItemView,
// Restriction, SortOrder (item:DateTimeReceived), ParentFolderIds. RootFolder carries
// IndexedPagingOffset, TotalItemsInView and IncludesLastItemInRange.
import type { XmlElement } from '../../../xml/index.ts';
import { childElement } from '../../../xml/index.ts';
import { findItems } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderIds, resolveFolder } from '../folder-ids.ts';
import { readExtendedFieldUri } from '../extended.ts';
import { itemXml, readItemShape } from '../item-xml.ts';
import { M_NS, T_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { readIndexedView, rootFolderAttrs, sliceOf } from '../paging.ts';
import { readItemRestriction } from '../restriction.ts';
import { responseOf } from '../write.ts';

export const findItemOperation: EwsOperation = {
  name: 'FindItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const traversal = request.attrs.get('Traversal');
    if (traversal !== 'Shallow') throw new EwsError('ErrorInvalidRequest', `Parley's FindItem supports Traversal="Shallow" only, not ${JSON.stringify(traversal ?? '')}`);
    const shape = readItemShape(childElement(request, M_NS, 'ItemShape'), true);
    for (const other of ['FractionalPageItemView', 'CalendarView', 'ContactsView', 'GroupBy', 'DistinguishedGroupBy']) {
      if (childElement(request, M_NS, other)) throw new EwsError('ErrorInvalidRequest', `Parley's FindItem does not support m:${other}; use m:IndexedPageItemView`);
    }
    const view = readIndexedView(childElement(request, M_NS, 'IndexedPageItemView'));
    const filter = readItemRestriction(childElement(request, M_NS, 'Restriction'));
    const { order, sort } = readSortOrder(childElement(request, M_NS, 'SortOrder'));
    const parents = readFolderIds(childElement(request, M_NS, 'ParentFolderIds'), 'm:ParentFolderIds');
    return responseOf(
      'FindItem',
      await responseMessages('FindItem', parents, async (parent) => {
        const folder = await resolveFolder(ctx, parent);
        const { total } = await findItems(ctx.sql, ctx.mailbox.id, folder.id, { filter, order, max: 0 });
        const { start, count } = sliceOf(view, total);
        const page = count === 0 ? [] : (await findItems(ctx.sql, ctx.mailbox.id, folder.id, { filter, order, sort, offset: start, max: count })).items;
        return `<m:RootFolder${rootFolderAttrs(view, total, start, page.length)}><t:Items>${page.map((i) => itemXml(i, shape, true)).join('')}</t:Items></m:RootFolder>`;
      }),
    );
  },
};

/**
 * m:SortOrder/t:FieldOrder: Parley sorts by one field, item:DateTimeReceived (newest first by
 * default) or the MAPI properties PR_MESSAGE_DELIVERY_TIME (the same) and PR_INTERNET_ARTICLE_NUMBER
 * (the order items were stored in, by which IMAP gateways such as DavMail list a folder).
 */
function readSortOrder(sort: XmlElement | undefined): { order: 'asc' | 'desc'; sort: 'received' | 'article' } {
  if (sort === undefined) return { order: 'desc', sort: 'received' };
  const [first, ...rest] = sort.children;
  if (first === undefined) return { order: 'desc', sort: 'received' };
  if (rest.length > 0) throw new EwsError('ErrorUnsupportedPathForSortGroup', 'Parley sorts by one field, item:DateTimeReceived');
  const extended = childElement(first, T_NS, 'ExtendedFieldURI');
  const tag = extended && readExtendedFieldUri(extended);
  const uri = childElement(first, T_NS, 'FieldURI')?.attrs.get('FieldURI');
  const by = tag?.n === PR_INTERNET_ARTICLE_NUMBER ? 'article' : tag?.n === PR_MESSAGE_DELIVERY_TIME || (tag === undefined && uri === 'item:DateTimeReceived') ? 'received' : undefined;
  if (by === undefined) throw new EwsError('ErrorUnsupportedPathForSortGroup', `Parley cannot sort by ${uri ?? extended?.attrs.get('PropertyTag') ?? 'that property'}; it sorts by item:DateTimeReceived or the article number (PropertyTag 0x0e23)`);
  const direction = first.attrs.get('Order') ?? 'Ascending';
  if (direction !== 'Ascending' && direction !== 'Descending') throw new EwsError('ErrorSchemaValidation', `Order must be Ascending or Descending, not ${JSON.stringify(direction)}`);
  return { order: direction === 'Ascending' ? 'asc' : 'desc', sort: by };
}

const PR_MESSAGE_DELIVERY_TIME = 0x0e06;
const PR_INTERNET_ARTICLE_NUMBER = 0x0e23;
