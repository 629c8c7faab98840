// FindFolder (EWS reference, "FindFolder operation"): Traversal Shallow|Deep, FolderShape,
// IndexedPageFolderView, Restriction (on folder:DisplayName), ParentFolderIds.
import { childElement } from '../../../xml/index.ts';
import type { FolderRecord } from '../../folders.ts';
import { listFolders } from '../../folders.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { folderXml, readFolderIds, readFolderShape, resolveFolder } from '../folder-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { readIndexedView, rootFolderAttrs, sliceOf } from '../paging.ts';
import { readRestriction, tagField } from '../restriction.ts';
import type { Restriction } from '../restriction.ts';
import { responseOf } from '../write.ts';

type FolderField = 'displayName' | 'folderClass';
// PR_DISPLAY_NAME and PR_CONTAINER_CLASS ([MS-OXPROPS]): DavMail lists mail folders by container class
const FOLDER_FIELDS: Record<string, FolderField> = { 'folder:DisplayName': 'displayName', 'folder:FolderClass': 'folderClass', [tagField(0x3001)]: 'displayName', [tagField(0x3613)]: 'folderClass' };

export const findFolderOperation: EwsOperation = {
  name: 'FindFolder',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const traversal = request.attrs.get('Traversal');
    if (traversal !== 'Shallow' && traversal !== 'Deep') {
      throw new EwsError('ErrorSchemaValidation', `FindFolder needs Traversal="Shallow" or "Deep" (Parley keeps no soft-deleted folders), not ${JSON.stringify(traversal ?? '')}`);
    }
    const shape = readFolderShape(childElement(request, M_NS, 'FolderShape'));
    if (childElement(request, M_NS, 'FractionalPageFolderView')) throw new EwsError('ErrorInvalidRequest', 'Parley supports IndexedPageFolderView only');
    const view = readIndexedView(childElement(request, M_NS, 'IndexedPageFolderView'));
    const restriction = readRestriction(childElement(request, M_NS, 'Restriction'), FOLDER_FIELDS);
    const parents = readFolderIds(childElement(request, M_NS, 'ParentFolderIds'), 'm:ParentFolderIds');
    return responseOf(
      'FindFolder',
      await responseMessages('FindFolder', parents, async (parent) => {
        const all = await listFolders(ctx.sql, ctx.mailbox.id, (await resolveFolder(ctx, parent)).id, traversal === 'Deep');
        const matching = restriction === undefined ? all : all.filter((f) => matches(f, restriction));
        const { start, count } = sliceOf(view, matching.length);
        const page = matching.slice(start, start + count);
        return `<m:RootFolder${rootFolderAttrs(view, matching.length, start, count)}><t:Folders>${page.map((f) => folderXml(f, shape)).join('')}</t:Folders></m:RootFolder>`;
      }),
    );
  },
};

/** String comparisons are case-insensitive, as Exchange compares display names. */
function matches(f: FolderRecord, r: Restriction<FolderField>): boolean {
  switch (r.op) {
    case 'eq':
      return f[r.field].toLowerCase() === r.value.toLowerCase();
    case 'ne':
      return f[r.field].toLowerCase() !== r.value.toLowerCase();
    case 'contains':
      return f[r.field].toLowerCase().includes(r.value.toLowerCase());
    case 'exists':
      return true; // every folder has a display name and a class
    case 'and':
      return r.filters.every((x) => matches(f, x));
    case 'or':
      return r.filters.some((x) => matches(f, x));
    case 'not':
      return !matches(f, r.filter);
  }
}
