// Header fields of the event framework (RFC 6665 §8.2) as presence reads them. Pure.

import { parseContentType, SipParseError } from '../sip/index.ts';

/** The one event package Parley serves (RFC 3856 §6.1). */
export const PRESENCE_EVENT = 'presence';

/**
 * The package of an Event header (RFC 6665 §8.2.1: `Event: presence;id=x`), lower-cased, or
 * undefined when there is none. Template packages (`presence.winfo`) are other packages.
 */
export function eventPackage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const name = value.split(';')[0]?.trim().toLowerCase();
  return name === '' ? undefined : name;
}

/** Expires as delta-seconds (RFC 3261 §20.19): undefined when absent, null when malformed. */
export function expiresOf(value: string | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!/^\d{1,10}$/.test(text)) return null;
  return Math.min(Number.parseInt(text, 10), 2 ** 32 - 1);
}

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
  if (accept.length === 0) return true;
  const ranges = accept.flatMap((a) => a.split(',')).map((r) => (r.split(';')[0] ?? '').trim().toLowerCase()).filter((r) => r !== '');
  if (ranges.length === 0) return true;
  return ranges.some((r) => r === 'application/pidf+xml' || r === 'application/*' || r === '*/*');
}
