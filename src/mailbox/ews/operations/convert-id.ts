// ConvertId (EWS reference, "ConvertId operation"): DestinationFormat, SourceIds of t:AlternateId
// (Format, Id, Mailbox). Parley issues one form of id, so an EwsId (or EwsLegacyId) of the caller's
// own folder or item converts to itself; the answer's Mailbox is the primary address of the
// mailbox that holds it, whatever the request named. DavMail relies on that: it converts the id of
// the root folder with a placeholder Mailbox to learn the signed-in user's address.
// Store ids (EntryId, HexEntryId, StoreId, OwaId) and public folder ids do not exist in Parley:
// each such source id is answered ErrorUnsupportedTypeForConversion.
import { MailboxError } from '../../errors.ts';
import { requireFolderId } from '../../folders.ts';
import { getItem } from '../../items.ts';
import { childElement } from '../../../xml/index.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { M_NS, T_NS } from '../names.ts';
import type { EwsContext, EwsOperation } from '../operation.ts';
import { attr, responseOf } from '../write.ts';

/** IdFormatType (types.xsd) */
const FORMATS = new Set(['EwsLegacyId', 'EwsId', 'EntryId', 'HexEntryId', 'StoreId', 'OwaId']);
/** the formats Parley's one kind of id stands for */
const OWN_FORMATS = new Set(['EwsId', 'EwsLegacyId']);

type Source = { kind: 'alternate'; format: string; id: string } | { kind: 'public'; name: string };

export const convertIdOperation: EwsOperation = {
  name: 'ConvertId',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const destination = request.attrs.get('DestinationFormat') ?? '';
    if (!FORMATS.has(destination)) throw new EwsError('ErrorSchemaValidation', `DestinationFormat must be one of ${[...FORMATS].join(', ')}, not ${JSON.stringify(destination)}`);
    const container = childElement(request, M_NS, 'SourceIds');
    if (container === undefined || container.children.length === 0) throw new EwsError('ErrorSchemaValidation', 'm:SourceIds must hold at least one t:AlternateId');
    const sources = container.children.map(readSource);
    return responseOf('ConvertId', await responseMessages('ConvertId', sources, (source) => converted(ctx, source, destination)));
  },
};

function readSource(c: { ns: string; name: string; attrs: ReadonlyMap<string, string> }): Source {
  if (c.ns === T_NS && c.name === 'AlternateId') {
    const format = c.attrs.get('Format') ?? '';
    const id = c.attrs.get('Id');
    if (!FORMATS.has(format)) throw new EwsError('ErrorSchemaValidation', `t:AlternateId Format must be one of ${[...FORMATS].join(', ')}, not ${JSON.stringify(format)}`);
    if (id === undefined || c.attrs.get('Mailbox') === undefined) throw new EwsError('ErrorSchemaValidation', 't:AlternateId needs the Id and Mailbox attributes');
    return { kind: 'alternate', format, id };
  }
  if (c.ns === T_NS && (c.name === 'AlternatePublicFolderId' || c.name === 'AlternatePublicFolderItemId')) return { kind: 'public', name: c.name };
  throw new EwsError('ErrorSchemaValidation', `m:SourceIds holds t:AlternateId, t:AlternatePublicFolderId or t:AlternatePublicFolderItemId, not ${c.name}`);
}

async function converted(ctx: EwsContext, source: Source, destination: string): Promise<string> {
  if (source.kind === 'public') throw new EwsError('ErrorUnsupportedTypeForConversion', `Parley has no public folders (t:${source.name})`);
  if (!OWN_FORMATS.has(source.format)) throw new EwsError('ErrorUnsupportedTypeForConversion', `Parley converts EwsId and EwsLegacyId ids only, not ${source.format}`);
  if (!OWN_FORMATS.has(destination)) throw new EwsError('ErrorUnsupportedTypeForConversion', `Parley converts to EwsId or EwsLegacyId only, not ${destination}`);
  await requireOwnId(ctx, source.id);
  return `<m:AlternateId xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="t:AlternateIdType"${attr('Format', destination)}${attr('Id', source.id)}${attr('Mailbox', ctx.mailbox.address)}/>`;
}

/** The id names a folder or an item of the caller's mailbox; otherwise the store's error (not found, another mailbox's, malformed). */
async function requireOwnId(ctx: EwsContext, id: string): Promise<void> {
  try {
    await requireFolderId(ctx.sql, ctx.mailbox.id, id);
  } catch (error) {
    if (!(error instanceof MailboxError) || error.code !== 'FOLDER_NOT_FOUND') throw error;
    await getItem(ctx.sql, ctx.mailbox.id, id);
  }
}
