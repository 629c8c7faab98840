// DeleteFolder (EWS reference, "DeleteFolder operation"): DeleteType, FolderIds.
// A distinguished folder answers ErrorDeleteDistinguishedFolder.
import { childElement } from '../../../xml/index.ts';
import { deleteFolder } from '../../folders.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderIds, resolveFolder } from '../folder-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const deleteFolderOperation: EwsOperation = {
  name: 'DeleteFolder',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const mode = request.attrs.get('DeleteType');
    if (mode !== 'HardDelete' && mode !== 'SoftDelete' && mode !== 'MoveToDeletedItems') {
      throw new EwsError('ErrorSchemaValidation', `DeleteFolder needs DeleteType HardDelete, SoftDelete or MoveToDeletedItems, not ${JSON.stringify(mode ?? '')}`);
    }
    const targets = readFolderIds(childElement(request, M_NS, 'FolderIds'), 'm:FolderIds');
    return responseOf(
      'DeleteFolder',
      await responseMessages('DeleteFolder', targets, async (target) => {
        await deleteFolder(ctx.sql, ctx.mailbox.id, (await resolveFolder(ctx, target)).id, mode);
        return '';
      }),
    );
  },
};
