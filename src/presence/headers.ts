// Header fields as presence reads them (RFC 3856, RFC 3903). Pure. The event framework's own
// (Event, Expires, Accept) are in src/events/headers.ts.

import { acceptsType } from '../events/index.ts';
import { parseContentType, SipParseError } from '../sip/index.ts';
import { PIDF_TYPE } from './pidf.ts';

/** The event package of presence (RFC 3856 §6.1), the only one Parley accepts in PUBLISH. */
export const PRESENCE_EVENT = 'presence';

/** `type/subtype` lower-cased, or undefined when the value does not parse. */
export function mediaTypeOf(value: string): string | undefined {
  try {
    const ct = parseContentType(value);
    return `${ct.type}/${ct.subtype}`.toLowerCase();
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

/** RFC 3856 §6.7: without Accept, PIDF is assumed; otherwise PIDF (or a wildcard) must be listed. */
export function acceptsPidf(accept: readonly string[]): boolean {
  return acceptsType(accept, PIDF_TYPE);
}
