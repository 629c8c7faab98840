// UpdateItem (EWS reference, "UpdateItem operation"): ConflictResolution, ItemChanges/ItemChange
// with ItemId and Updates. Parley sets message:IsRead and item:Subject (SetItemField), and clears
// item:Subject (DeleteItemField). Response: Items with the new ItemId/ChangeKey, then ConflictResults.
import type { XmlElement } from '../../../xml/index.ts';
import { childElement, childText } from '../../../xml/index.ts';
import { getItem, updateItem } from '../../items.ts';
import type { ItemChanges } from '../../items.ts';
import { responseMessages } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { itemIdXml } from '../item-xml.ts';
import { readItemId } from '../item-ids.ts';
import { M_NS, T_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const updateItemOperation: EwsOperation = {
  name: 'UpdateItem',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const resolution = request.attrs.get('ConflictResolution') ?? 'AutoResolve';
    if (!['NeverOverwrite', 'AutoResolve', 'AlwaysOverwrite'].includes(resolution)) throw new EwsError('ErrorSchemaValidation', `ConflictResolution ${JSON.stringify(resolution)} is not valid`);
    const container = childElement(request, M_NS, 'ItemChanges');
    if (container === undefined || container.children.length === 0) throw new EwsError('ErrorSchemaValidation', 'm:ItemChanges must hold at least one t:ItemChange');
    return responseOf(
      'UpdateItem',
      await responseMessages('UpdateItem', container.children, async (change) => {
        if (change.ns !== T_NS || change.name !== 'ItemChange') throw new EwsError('ErrorSchemaValidation', `expected t:ItemChange, found ${change.name}`);
        const idElement = childElement(change, T_NS, 'ItemId');
        if (idElement === undefined) throw new EwsError('ErrorInvalidRequest', 'Parley updates items by t:ItemId only');
        const ref = readItemId(idElement);
        const changes = readChanges(childElement(change, T_NS, 'Updates'));
        const current = await getItem(ctx.sql, ctx.mailbox.id, ref.id);
        if (resolution === 'NeverOverwrite' && ref.changeKey !== undefined && ref.changeKey !== current.changeKey) {
          throw new EwsError('ErrorIrresolvableConflict', 'the item changed since you read it (its ChangeKey differs); read it again');
        }
        const updated = await updateItem(ctx.sql, ctx.mailbox.id, ref.id, changes, ctx.now);
        return `<m:Items>${itemIdXml(updated)}</m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>`;
      }),
    );
  },
};

function readChanges(updates: XmlElement | undefined): ItemChanges {
  if (updates === undefined || updates.children.length === 0) throw new EwsError('ErrorSchemaValidation', 't:Updates must hold at least one change');
  const changes: ItemChanges = {};
  for (const u of updates.children) {
    const uri = childElement(u, T_NS, 'FieldURI')?.attrs.get('FieldURI');
    if (u.ns !== T_NS || !['SetItemField', 'AppendToItemField', 'DeleteItemField'].includes(u.name)) throw new EwsError('ErrorSchemaValidation', `unexpected ${u.name} in t:Updates`);
    if (uri !== 'message:IsRead' && uri !== 'item:Subject') throw new EwsError('ErrorInvalidPropertySet', `Parley can change message:IsRead and item:Subject only, not ${uri ?? 'that property'}`);
    if (u.name === 'AppendToItemField') throw new EwsError('ErrorInvalidPropertySet', `${uri} cannot be appended to`);
    if (u.name === 'DeleteItemField') {
      if (uri === 'message:IsRead') throw new EwsError('ErrorInvalidPropertySet', 'message:IsRead cannot be deleted');
      changes.subject = '';
      continue;
    }
    const holder = childElement(u, T_NS, 'Message') ?? childElement(u, T_NS, 'Item');
    if (holder === undefined) throw new EwsError('ErrorSchemaValidation', 't:SetItemField needs a t:Message with the new value');
    if (uri === 'item:Subject') changes.subject = childText(holder, T_NS, 'Subject') ?? '';
    else {
      const value = childText(holder, T_NS, 'IsRead')?.trim();
      if (value !== 'true' && value !== 'false' && value !== '1' && value !== '0') throw new EwsError('ErrorSchemaValidation', 't:IsRead must be true or false');
      changes.isRead = value === 'true' || value === '1';
    }
  }
  return changes;
}
