// FolderId / DistinguishedFolderId (EWS reference, BaseFolderIdType) and the shape of folders we write.
import type { XmlElement } from '../../xml/index.ts';
import { childElement, childText } from '../../xml/index.ts';
import { MailboxError } from '../errors.ts';
import { getDistinguishedFolder, getFolder, isDistinguishedFolder } from '../folders.ts';
import type { FolderRecord } from '../folders.ts';
import { EwsError } from './codes.ts';
import { T_NS } from './names.ts';
import type { EwsContext } from './operation.ts';
import { attr, el } from './write.ts';

export type FolderTarget = { kind: 'id'; id: string } | { kind: 'distinguished'; name: string; mailbox: string | undefined };

/** The folder ids inside a container such as m:FolderIds or m:ParentFolderIds. */
export function readFolderIds(container: XmlElement | undefined, what: string): FolderTarget[] {
  if (container === undefined) throw new EwsError('ErrorSchemaValidation', `${what} is required`);
  const targets = container.children.map((c) => readFolderId(c));
  if (targets.length === 0) throw new EwsError('ErrorSchemaValidation', `${what} must name at least one folder`);
  return targets;
}

export function readFolderId(c: XmlElement): FolderTarget {
  if (c.ns === T_NS && c.name === 'FolderId') return { kind: 'id', id: c.attrs.get('Id') ?? '' };
  if (c.ns === T_NS && c.name === 'DistinguishedFolderId') {
    const mailbox = childElement(c, T_NS, 'Mailbox');
    return { kind: 'distinguished', name: c.attrs.get('Id') ?? '', mailbox: mailbox && childText(mailbox, T_NS, 'EmailAddress')?.trim() };
  }
  throw new EwsError('ErrorSchemaValidation', `expected t:FolderId or t:DistinguishedFolderId, found ${c.name}`);
}

/** The folder of the caller's mailbox; throws MailboxError/EwsError answered per item. */
export function resolveFolder(ctx: EwsContext, target: FolderTarget): FolderRecord {
  if (target.kind === 'id') return getFolder(ctx.db, ctx.mailbox.id, target.id);
  if (target.mailbox !== undefined && target.mailbox.replace(/^(smtp|sip):/i, '').toLowerCase() !== ctx.mailbox.address) {
    throw new EwsError('ErrorAccessDenied', `you may open only your own mailbox (${ctx.mailbox.address})`);
  }
  // `root` (the non-IPM root) is served by the top of the information store: Parley keeps no hidden folders
  const name = target.name === 'root' ? 'msgfolderroot' : target.name;
  if (!isDistinguishedFolder(name)) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${JSON.stringify(target.name)} folder`);
  return getDistinguishedFolder(ctx.db, ctx.mailbox.id, name);
}

export type BaseShape = 'IdOnly' | 'Default' | 'AllProperties';

export function readBaseShape(shape: XmlElement | undefined, what: string): BaseShape {
  const base = shape && childText(shape, T_NS, 'BaseShape')?.trim();
  if (base === 'IdOnly' || base === 'Default' || base === 'AllProperties') return base;
  throw new EwsError('ErrorSchemaValidation', `${what} needs a t:BaseShape of IdOnly, Default or AllProperties`);
}

/** t:Folder in schema order: FolderId, ParentFolderId, FolderClass, DisplayName, TotalCount, ChildFolderCount, UnreadCount. */
export function folderXml(f: FolderRecord, shape: BaseShape): string {
  const id = `<t:FolderId${attr('Id', f.id)}${attr('ChangeKey', f.changeKey)}/>`;
  if (shape === 'IdOnly') return `<t:Folder>${id}</t:Folder>`;
  const all = shape === 'AllProperties';
  return (
    `<t:Folder>${id}` +
    (all && f.parentId !== null ? `<t:ParentFolderId${attr('Id', f.parentId)}/>` : '') +
    (all ? el('t:FolderClass', f.folderClass) : '') +
    el('t:DisplayName', f.displayName) +
    el('t:TotalCount', f.totalCount) +
    el('t:ChildFolderCount', f.childFolderCount) +
    el('t:UnreadCount', f.unreadCount) +
    `</t:Folder>`
  );
}
