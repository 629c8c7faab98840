// t:ExtendedFieldURI by PropertyTag (EWS reference, ExtendedFieldURI; MAPI tags from [MS-OXPROPS]):
// the MAPI properties a client asks in AdditionalProperties and Parley can answer from what it
// keeps. Gateways such as DavMail read folder counts, change times and message flags this way.
// Named properties (PropertySetId/PropertyName/PropertyId) are not kept: left out of the answer,
// as Exchange leaves out properties that are not set.
import type { XmlElement } from '../../xml/index.ts';
import { EwsError } from './codes.ts';
import { T_NS } from './names.ts';
import { attr, dateTime, el } from './write.ts';

/** MapiPropertyTypeType values (types.xsd) whose single values Parley writes */
const TYPES = new Set(['Integer', 'Long', 'Short', 'Boolean', 'SystemTime', 'String']);

export interface ExtendedRequest {
  /** the tag as the client wrote it: clients match the answer on their own spelling */
  tag: string;
  /** the tag's number */
  n: number;
  type: string;
}

/** A t:ExtendedFieldURI with a PropertyTag; undefined for named properties. */
export function readExtendedFieldUri(p: XmlElement): ExtendedRequest | undefined {
  if (p.ns !== T_NS || p.name !== 'ExtendedFieldURI') return undefined;
  const tag = p.attrs.get('PropertyTag');
  const type = p.attrs.get('PropertyType');
  if (type === undefined) throw new EwsError('ErrorSchemaValidation', 't:ExtendedFieldURI needs a PropertyType');
  if (tag === undefined) return undefined;
  const n = /^0x[0-9a-f]{1,4}$/i.test(tag) ? parseInt(tag, 16) : /^\d{1,5}$/.test(tag) ? Number(tag) : NaN;
  if (Number.isNaN(n) || n > 0xffff) throw new EwsError('ErrorInvalidPropertyRequest', `PropertyTag ${JSON.stringify(tag)} is not a 16-bit property id`);
  return { tag, n, type };
}

export type ExtendedValue = number | boolean | string;

/**
 * `<t:ExtendedProperty>` for each requested tag `valueOf` knows, in the order asked. A value is
 * written as the type the client named when that type fits it; a tag asked with a type that does
 * not fit is left out, as Exchange does not convert property types.
 */
export function extendedPropertiesXml(requests: readonly ExtendedRequest[], valueOf: (n: number) => { value: ExtendedValue; type: 'Integer' | 'Boolean' | 'SystemTime' | 'String' } | undefined): string {
  let out = '';
  for (const r of requests) {
    const known = valueOf(r.n);
    if (known === undefined || !TYPES.has(r.type)) continue;
    const numeric = r.type === 'Integer' || r.type === 'Long' || r.type === 'Short';
    if (known.type === 'Integer' ? !numeric : known.type !== r.type) continue;
    const text = known.type === 'SystemTime' ? dateTime(known.value as number) : String(known.value);
    out += `<t:ExtendedProperty><t:ExtendedFieldURI${attr('PropertyTag', r.tag)}${attr('PropertyType', r.type)}/>${el('t:Value', text)}</t:ExtendedProperty>`;
  }
  return out;
}
