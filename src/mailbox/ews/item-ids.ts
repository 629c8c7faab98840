// t:ItemId (EWS reference, ItemId: Id and optional ChangeKey).
import type { XmlElement } from '../../xml/index.ts';
import { EwsError } from './codes.ts';
import { T_NS } from './names.ts';

export interface ItemIdRef {
  id: string;
  changeKey: string | undefined;
}

export function readItemId(c: XmlElement): ItemIdRef {
  if (c.ns !== T_NS || c.name !== 'ItemId') throw new EwsError('ErrorSchemaValidation', `expected t:ItemId, found ${c.name}`);
  const id = c.attrs.get('Id');
  if (id === undefined) throw new EwsError('ErrorSchemaValidation', 't:ItemId needs an Id attribute');
  return { id, changeKey: c.attrs.get('ChangeKey') };
}

export function readItemIds(container: XmlElement | undefined, what: string): ItemIdRef[] {
  if (container === undefined) throw new EwsError('ErrorSchemaValidation', `${what} is required`);
  const ids = container.children.map(readItemId);
  if (ids.length === 0) throw new EwsError('ErrorSchemaValidation', `${what} must name at least one item`);
  return ids;
}
