// FolderId / DistinguishedFolderId (EWS reference, BaseFolderIdType) and the shape of folders we write.
import type { XmlElement } from '../../xml/index.ts';
import { childElement, childText } from '../../xml/index.ts';
import { MailboxError } from '../errors.ts';
import { getDistinguishedFolder, getFolder, isDistinguishedFolder } from '../folders.ts';
import type { FolderRecord } from '../folders.ts';
import { EwsError } from './codes.ts';
import { T_NS } from './names.ts';
import type { EwsContext } from './operation.ts';
import { extendedPropertiesXml, readExtendedFieldUri } from './extended.ts';
import type { ExtendedRequest } from './extended.ts';
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
export async function resolveFolder(ctx: EwsContext, target: FolderTarget): Promise<FolderRecord> {
  if (target.kind === 'id') return getFolder(ctx.sql, ctx.mailbox.id, target.id);
  if (target.mailbox !== undefined && target.mailbox.replace(/^(smtp|sip):/i, '').toLowerCase() !== ctx.mailbox.address) {
    throw new EwsError('ErrorAccessDenied', `you may open only your own mailbox (${ctx.mailbox.address})`);
  }
  // `root` (the non-IPM root) is served by the top of the information store: Parley keeps no hidden folders
  const name = target.name === 'root' ? 'msgfolderroot' : target.name;
  if (!isDistinguishedFolder(name)) throw new MailboxError('FOLDER_NOT_FOUND', `the mailbox has no ${JSON.stringify(target.name)} folder`);
  return getDistinguishedFolder(ctx.sql, ctx.mailbox.id, name);
}

export type BaseShape = 'IdOnly' | 'Default' | 'AllProperties';

export function readBaseShape(shape: XmlElement | undefined, what: string): BaseShape {
  const base = shape && childText(shape, T_NS, 'BaseShape')?.trim();
  if (base === 'IdOnly' || base === 'Default' || base === 'AllProperties') return base;
  throw new EwsError('ErrorSchemaValidation', `${what} needs a t:BaseShape of IdOnly, Default or AllProperties`);
}

/** m:FolderShape: the base shape, and the folder properties and MAPI properties added to it. */
export interface FolderShape {
  base: BaseShape;
  additional: ReadonlySet<string>;
  extended: readonly ExtendedRequest[];
}

export const ID_ONLY_FOLDER: FolderShape = { base: 'IdOnly', additional: new Set(), extended: [] };

const FOLDER_FIELDS = new Set(['folder:FolderId', 'folder:ParentFolderId', 'folder:FolderClass', 'folder:DisplayName', 'folder:TotalCount', 'folder:ChildFolderCount', 'folder:UnreadCount']);

export function readFolderShape(shape: XmlElement | undefined): FolderShape {
  const base = readBaseShape(shape, 'm:FolderShape');
  const additional = new Set<string>();
  const extended: ExtendedRequest[] = [];
  for (const p of (shape && childElement(shape, T_NS, 'AdditionalProperties'))?.children ?? []) {
    const uri = p.ns === T_NS && p.name === 'FieldURI' ? p.attrs.get('FieldURI') : undefined;
    if (uri !== undefined && FOLDER_FIELDS.has(uri)) additional.add(uri);
    const ext = readExtendedFieldUri(p);
    if (ext !== undefined) extended.push(ext);
    // other folder properties (permissions, effective rights, managed folder information) are not kept: left out
  }
  return { base, additional, extended };
}

// MAPI folder properties ([MS-OXPROPS]) answered through t:ExtendedFieldURI
const PR_DISPLAY_NAME = 0x3001;
const PR_LAST_MODIFICATION_TIME = 0x3008;
const PR_CONTENT_COUNT = 0x3602;
const PR_CONTENT_UNREAD = 0x3603;
const PR_SUBFOLDERS = 0x360a;
const PR_CONTAINER_CLASS = 0x3613;
/** the time of the last change to the folder's contents: what gateways use as a folder's sync tag */
const PR_LOCAL_COMMIT_TIME_MAX = 0x670a;

function folderProperty(f: FolderRecord, n: number) {
  switch (n) {
    case PR_DISPLAY_NAME:
      return { value: f.displayName, type: 'String' } as const;
    case PR_LAST_MODIFICATION_TIME:
    case PR_LOCAL_COMMIT_TIME_MAX:
      return { value: f.lastModifiedAt, type: 'SystemTime' } as const;
    case PR_CONTENT_COUNT:
      return { value: f.totalCount, type: 'Integer' } as const;
    case PR_CONTENT_UNREAD:
      return { value: f.unreadCount, type: 'Integer' } as const;
    case PR_SUBFOLDERS:
      return { value: f.childFolderCount > 0, type: 'Boolean' } as const;
    case PR_CONTAINER_CLASS:
      return { value: f.folderClass, type: 'String' } as const;
    default:
      return undefined;
  }
}

/** t:Folder in schema order: FolderId, ParentFolderId, FolderClass, DisplayName, TotalCount, ChildFolderCount, ExtendedProperty*, UnreadCount. */
export function folderXml(f: FolderRecord, shape: FolderShape): string {
  const id = `<t:FolderId${attr('Id', f.id)}${attr('ChangeKey', f.changeKey)}/>`;
  const all = shape.base === 'AllProperties';
  const def = all || shape.base === 'Default';
  const wants = (uri: string, inDefault: boolean) => shape.additional.has(uri) || all || (def && inDefault);
  return (
    `<t:Folder>${id}` +
    (wants('folder:ParentFolderId', false) && f.parentId !== null ? `<t:ParentFolderId${attr('Id', f.parentId)}/>` : '') +
    (wants('folder:FolderClass', false) ? el('t:FolderClass', f.folderClass) : '') +
    (wants('folder:DisplayName', true) ? el('t:DisplayName', f.displayName) : '') +
    (wants('folder:TotalCount', true) ? el('t:TotalCount', f.totalCount) : '') +
    (wants('folder:ChildFolderCount', true) ? el('t:ChildFolderCount', f.childFolderCount) : '') +
    extendedPropertiesXml(shape.extended, (n) => folderProperty(f, n)) +
    (wants('folder:UnreadCount', true) ? el('t:UnreadCount', f.unreadCount) : '') +
    `</t:Folder>`
  );
}
