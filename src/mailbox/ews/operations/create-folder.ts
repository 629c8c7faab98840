// CreateFolder (EWS reference, "CreateFolder operation"): ParentFolderId, Folders (t:Folder with
// DisplayName and optional FolderClass). Answers with the new FolderId per folder.
import { childElement, childText } from '../../../xml/index.ts';
import { createFolder } from '../../folders.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { ID_ONLY_FOLDER, folderXml, readFolderIds, resolveFolder } from '../folder-ids.ts';
import { M_NS, T_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const createFolderOperation: EwsOperation = {
  name: 'CreateFolder',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const [parent, ...more] = readFolderIds(childElement(request, M_NS, 'ParentFolderId'), 'm:ParentFolderId');
    if (parent === undefined || more.length > 0) throw new EwsError('ErrorSchemaValidation', 'm:ParentFolderId must name one folder');
    const folders = childElement(request, M_NS, 'Folders');
    if (folders === undefined || folders.children.length === 0) throw new EwsError('ErrorSchemaValidation', 'm:Folders must hold at least one folder');
    return responseOf(
      'CreateFolder',
      await responseMessages('CreateFolder', folders.children, async (f) => {
        if (f.ns !== T_NS || f.name !== 'Folder') throw new EwsError('ErrorInvalidRequest', `Parley creates mail folders (t:Folder) only, not t:${f.name}`);
        const name = childText(f, T_NS, 'DisplayName');
        if (name === undefined) throw new EwsError('ErrorInvalidRequest', 'a folder needs a t:DisplayName');
        const folderClass = childText(f, T_NS, 'FolderClass')?.trim() || 'IPF.Note';
        const created = await createFolder(ctx.sql, ctx.mailbox.id, (await resolveFolder(ctx, parent)).id, name, folderClass, ctx.now);
        return `<m:Folders>${folderXml(created, ID_ONLY_FOLDER)}</m:Folders>`;
      }),
    );
  },
};
