// m:Restriction (EWS reference, Restriction): IsEqualTo, IsNotEqualTo, Contains, Exists, And, Or,
// Not, over the FieldURIs Parley can search, and the MAPI properties (t:ExtendedFieldURI with a
// PropertyTag, named in a field table as `tag:0x3613`) that stand for them. Anything else is
// ErrorUnsupportedPathForQuery or a schema error.
import type { XmlElement } from '../../xml/index.ts';
import { childElement } from '../../xml/index.ts';
import type { ItemField, ItemFilter } from '../items.ts';
import { EwsError } from './codes.ts';
import { readExtendedFieldUri } from './extended.ts';
import { T_NS } from './names.ts';

const ITEM_FIELDS: Record<string, ItemField> = {
  'item:ItemClass': 'itemClass',
  'item:Subject': 'subject',
  'message:IsRead': 'isRead',
  'message:InternetMessageId': 'internetMessageId',
  'message:ConversationTopic': 'conversationTopic',
};

/** A parsed restriction over any set of fields (items, or folders with `folder:DisplayName`). */
export type Restriction<F> =
  | { op: 'eq' | 'ne'; field: F; value: string }
  | { op: 'contains'; field: F; value: string }
  /** t:Exists: whether the property is set */
  | { op: 'exists'; field: F }
  | { op: 'and' | 'or'; filters: Restriction<F>[] }
  | { op: 'not'; filter: Restriction<F> };

export function readRestriction<F>(restriction: XmlElement | undefined, fields: Record<string, F>): Restriction<F> | undefined {
  if (restriction === undefined) return undefined;
  const [only, ...rest] = restriction.children;
  if (only === undefined || rest.length > 0) throw new EwsError('ErrorSchemaValidation', 'm:Restriction must hold exactly one search expression');
  return expression(only, fields, 0);
}

export function readItemRestriction(restriction: XmlElement | undefined): ItemFilter | undefined {
  const parsed = readRestriction(restriction, ITEM_FIELDS);
  return parsed === undefined ? undefined : toItemFilter(parsed);
}

function toItemFilter(r: Restriction<ItemField>): ItemFilter {
  switch (r.op) {
    case 'eq':
    case 'ne':
      if (r.field === 'isRead' && !['true', 'false', '1', '0'].includes(r.value)) throw new EwsError('ErrorSchemaValidation', `message:IsRead compares with true or false, not ${JSON.stringify(r.value)}`);
      return { op: r.op, field: r.field, value: r.field === 'isRead' ? r.value === 'true' || r.value === '1' : r.value };
    case 'contains':
      return r;
    case 'exists':
      throw new EwsError('ErrorUnsupportedPathForQuery', 'Parley does not support t:Exists on items');
    case 'and':
    case 'or':
      return { op: r.op, filters: r.filters.map(toItemFilter) };
    case 'not':
      return { op: 'not', filter: toItemFilter(r.filter) };
  }
}

const MAX_NESTING = 16;

function expression<F>(e: XmlElement, fields: Record<string, F>, depth: number): Restriction<F> {
  if (depth > MAX_NESTING) throw new EwsError('ErrorInvalidRequest', `the restriction nests deeper than ${MAX_NESTING} levels`);
  if (e.ns !== T_NS) throw new EwsError('ErrorSchemaValidation', `unexpected {${e.ns}}${e.name} in the restriction`);
  switch (e.name) {
    case 'And':
    case 'Or':
      return { op: e.name === 'And' ? 'and' : 'or', filters: e.children.map((c) => expression(c, fields, depth + 1)) };
    case 'Not': {
      const [inner] = e.children;
      if (inner === undefined || e.children.length !== 1) throw new EwsError('ErrorSchemaValidation', 't:Not must hold one expression');
      return { op: 'not', filter: expression(inner, fields, depth + 1) };
    }
    case 'IsEqualTo':
    case 'IsNotEqualTo': {
      const field = fieldOf(e, fields);
      const constant = childElement(childElement(e, T_NS, 'FieldURIOrConstant') ?? e, T_NS, 'Constant');
      const value = constant?.attrs.get('Value');
      if (value === undefined) throw new EwsError('ErrorSchemaValidation', `t:${e.name} needs t:FieldURIOrConstant/t:Constant with a Value (Parley does not compare two properties)`);
      return { op: e.name === 'IsEqualTo' ? 'eq' : 'ne', field, value };
    }
    case 'Contains': {
      const field = fieldOf(e, fields);
      const value = childElement(e, T_NS, 'Constant')?.attrs.get('Value');
      if (value === undefined) throw new EwsError('ErrorSchemaValidation', 't:Contains needs a t:Constant with a Value');
      return { op: 'contains', field, value };
    }
    case 'Exists':
      return { op: 'exists', field: fieldOf(e, fields) };
    default:
      throw new EwsError('ErrorUnsupportedPathForQuery', `Parley does not support the search expression t:${e.name}`);
  }
}

/** The name of a MAPI property in a field table: `tag:0x` and four lower-case hex digits. */
export const tagField = (n: number): string => `tag:0x${n.toString(16).padStart(4, '0')}`;

function fieldOf<F>(e: XmlElement, fields: Record<string, F>): F {
  const extended = childElement(e, T_NS, 'ExtendedFieldURI');
  const tag = extended && readExtendedFieldUri(extended);
  const uri = tag !== undefined ? tagField(tag.n) : childElement(e, T_NS, 'FieldURI')?.attrs.get('FieldURI');
  if (uri === undefined) throw new EwsError('ErrorUnsupportedPathForQuery', `t:${e.name} must compare a t:FieldURI or a t:ExtendedFieldURI with a PropertyTag (indexed and named properties are not searchable in Parley)`);
  const field = Object.hasOwn(fields, uri) ? fields[uri] : undefined;
  if (field === undefined) throw new EwsError('ErrorUnsupportedPathForQuery', `Parley cannot search on ${uri}; it can search on ${Object.keys(fields).join(', ')}`);
  return field;
}
