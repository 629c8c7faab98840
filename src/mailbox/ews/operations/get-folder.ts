// GetFolder (EWS reference, "GetFolder operation"): FolderShape, FolderIds; one response message per id.
import { childElement } from '../../../xml/index.ts';
import { responseMessages } from '../batch.ts';
import { folderXml, readFolderIds, readFolderShape, resolveFolder } from '../folder-ids.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const getFolderOperation: EwsOperation = {
  name: 'GetFolder',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const shape = readFolderShape(childElement(request, M_NS, 'FolderShape'));
    const targets = readFolderIds(childElement(request, M_NS, 'FolderIds'), 'm:FolderIds');
    return responseOf(
      'GetFolder',
      await responseMessages('GetFolder', targets, async (target) => `<m:Folders>${folderXml(await resolveFolder(ctx, target), shape)}</m:Folders>`),
    );
  },
};
