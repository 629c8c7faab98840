// Instant Message Disposition Notification (RFC 5438) in message/cpim (RFC 3862): the wrapper of
// a message that asks for a display notification, the notification itself, and reading both.
// Pure; the CPIM parser is src/sip's (the one the router and the offline transcript use).
//
// A message asking for a display notification (§6.3, §7.1.1):
//   From: <sip:alice@parley.local>
//   To: <sip:bob@parley.local>
//   NS: imdn <urn:ietf:params:imdn>
//   imdn.Message-ID: 34jk324j              §6.3: unique, so the notification can name it
//   DateTime: 2026-12-06T12:16:49.000Z     §6.3: required with a disposition request
//   imdn.Disposition-Notification: display
//
//   Content-Type: text/plain;charset=utf-8
//
//   Hello
//
// The display notification (§7.2.1.1, §8.5) answers it in a CPIM of its own, with its own
// imdn.Message-ID, Content-Disposition: notification and a message/imdn+xml document naming the
// original message-id and <displayed/>. A notification never asks for one (§7.2.1.1).

import { cpimHeader, parseCpim } from '../sip/pure.ts';
import type { CpimHeader } from '../sip/pure.ts';
import { childElement, childText, escapeXmlText, parseXml } from '../xml/index.ts';

export const CPIM_TYPE = 'message/cpim';
export const IMDN_TYPE = 'message/imdn+xml';
const IMDN_URN = 'urn:ietf:params:imdn';
const IMDN_XML_NS = 'urn:ietf:params:xml:ns:imdn';

export interface CpimParties {
  /** the sender's URI, `sip:alice@parley.local` (the server checks it is the signed-in user) */
  from: string;
  to: string;
}

/** A message asking for a display notification: `text` of `contentType` wrapped in CPIM with the RFC 5438 headers. */
export function cpimWithDisplayRequest(parties: CpimParties, text: string, contentType: string, imdnMessageId: string, at: Date): string {
  return `${imdnHeaders(parties, imdnMessageId, at)}imdn.Disposition-Notification: display\r\n\r\nContent-Type: ${contentType}\r\n\r\n${text}`;
}

/** A display notification (§7.2.1.1) for the message `originalId`, in CPIM with its own `imdnMessageId`. */
export function displayNotification(parties: CpimParties, originalId: string, imdnMessageId: string, at: Date): string {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<imdn xmlns="${IMDN_XML_NS}">\n  <message-id>${escapeXmlText(originalId)}</message-id>\n  <datetime>${at.toISOString()}</datetime>\n  <display-notification>\n    <status>\n      <displayed/>\n    </status>\n  </display-notification>\n</imdn>\n`;
  return `${imdnHeaders(parties, imdnMessageId, at)}\r\nContent-Type: ${IMDN_TYPE}\r\nContent-Disposition: notification\r\n\r\n${xml}`;
}

function imdnHeaders(parties: CpimParties, imdnMessageId: string, at: Date): string {
  return `From: <${parties.from}>\r\nTo: <${parties.to}>\r\nNS: imdn <${IMDN_URN}>\r\nimdn.Message-ID: ${imdnMessageId}\r\nDateTime: ${at.toISOString()}\r\n`;
}

/** What a message/cpim body holds, as far as a chat client cares. */
export type CpimContent =
  | {
      kind: 'content';
      /** the encapsulated object's type and bytes */
      contentType: string;
      body: Uint8Array;
      imdnMessageId?: string;
      /** imdn.Disposition-Notification names `display` */
      displayNotificationRequested: boolean;
    }
  /** a disposition notification: `displayed` when its status is <displayed/> (§7.2.1.1) */
  | { kind: 'notification'; originalId: string; displayed: boolean };

/**
 * Reads a message/cpim body; undefined when it is not CPIM, or is an IMDN whose document cannot
 * be read. Namespaced headers are found through their NS declaration (§3.2: the prefix is the
 * sender's choice), `imdn.` when none is declared.
 */
export function readCpim(bytes: Uint8Array): CpimContent | undefined {
  const cpim = parseCpim(bytes);
  if (cpim === undefined) return undefined;
  const prefix = namespacePrefix(cpim.headers, IMDN_URN) ?? 'imdn';
  if (mediaType(cpim.contentType) === IMDN_TYPE) {
    const notification = readImdn(cpim.body);
    return notification === undefined ? undefined : { kind: 'notification', ...notification };
  }
  const id = cpimHeader(cpim.headers, `${prefix}.Message-ID`)?.trim();
  const dispositions = (cpimHeader(cpim.headers, `${prefix}.Disposition-Notification`) ?? '').split(',').map((d) => d.trim().toLowerCase());
  return {
    kind: 'content',
    contentType: cpim.contentType,
    body: cpim.body,
    ...(id === undefined || id === '' ? {} : { imdnMessageId: id }),
    displayNotificationRequested: dispositions.includes('display'),
  };
}

/** The type/subtype of a Content-Type value, lower case. */
export function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/** RFC 3862 §5.3: `NS: prefix <urn>`; the prefix declared for `urn`. */
function namespacePrefix(headers: readonly CpimHeader[], urn: string): string | undefined {
  for (const h of headers) {
    if (h.name.toLowerCase() !== 'ns') continue;
    const m = /^\s*([^\s<]*)\s*<([^>]*)>\s*$/.exec(h.value);
    if (m !== null && (m[2] as string).toLowerCase() === urn) return m[1] as string;
  }
  return undefined;
}

function readImdn(body: Uint8Array): { originalId: string; displayed: boolean } | undefined {
  try {
    const root = parseXml(body);
    if (root.ns !== IMDN_XML_NS || root.name !== 'imdn') return undefined;
    const originalId = childText(root, IMDN_XML_NS, 'message-id')?.trim();
    if (originalId === undefined || originalId === '') return undefined;
    const display = childElement(root, IMDN_XML_NS, 'display-notification');
    const status = display === undefined ? undefined : childElement(display, IMDN_XML_NS, 'status');
    const displayed = status !== undefined && childElement(status, IMDN_XML_NS, 'displayed') !== undefined;
    return { originalId, displayed };
  } catch {
    return undefined;
  }
}
