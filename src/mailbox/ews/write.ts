// Writing EWS responses. Every value passes through the escapers of src/xml.
import { escapeXmlAttr, escapeXmlText } from '../../xml/index.ts';
import type { EwsError } from './codes.ts';

/** `<t:Name>value</t:Name>`, escaped; nothing when the value is undefined or null. */
export function el(qname: string, value: string | number | boolean | null | undefined): string {
  if (value === undefined || value === null) return '';
  return `<${qname}>${escapeXmlText(String(value))}</${qname}>`;
}

/** ` Name="value"`, escaped. */
export function attr(name: string, value: string | number | boolean): string {
  return ` ${name}="${escapeXmlAttr(String(value))}"`;
}

/** xs:dateTime in UTC, as Exchange writes it (no fraction). */
export function dateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One response message of a batch: ResponseClass, then MessageText/ResponseCode in schema order, then `inner`. */
export function successMessage(name: string, inner = ''): string {
  return `<m:${name}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${inner}</m:${name}ResponseMessage>`;
}

export function errorMessage(name: string, error: EwsError, inner = ''): string {
  return `<m:${name}ResponseMessage ResponseClass="Error">${el('m:MessageText', error.message)}<m:ResponseCode>${error.code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>${inner}</m:${name}ResponseMessage>`;
}

/** `<m:NameResponse><m:ResponseMessages>…</m:ResponseMessages></m:NameResponse>` */
export function responseOf(name: string, messages: readonly string[]): string {
  return `<m:${name}Response><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:${name}Response>`;
}
