// What a recorded MESSAGE is, as far as Conversation History cares. Pure: content type and bytes in.
//
// - a typing notice (RFC 3994 application/im-iscomposing+xml), bare or in message/cpim: not part of
//   a transcript;
// - a disposition notification (RFC 5438 message/imdn+xml, always in message/cpim, §7.2.1.1): not
//   part of a transcript either, but a `displayed` one (§7.2.1.1, <display-notification><status>
//   <displayed/>) says its reader saw the message of that imdn.Message-ID;
// - anything else is text, possibly in CPIM asking for a display notification (§6.3:
//   `imdn.Disposition-Notification: display` with an `imdn.Message-ID`).
//
// Namespaced CPIM headers are found through their NS declaration (RFC 3862 §3.2: the prefix is the
// sender's choice), `imdn.` when none is declared.

import { cpimHeader, parseCpim } from '../sip/pure.ts';
import type { CpimHeader } from '../sip/pure.ts';
import { childElement, childText, parseXml } from '../xml/index.ts';

const CPIM_TYPE = 'message/cpim';
const IS_COMPOSING_TYPE = 'application/im-iscomposing+xml';
const IMDN_TYPE = 'message/imdn+xml';
const IMDN_URN = 'urn:ietf:params:imdn';
const IMDN_XML_NS = 'urn:ietf:params:xml:ns:imdn';

export type RecordedContent =
  | { kind: 'typing' }
  /** a disposition notification; `displayedId` is the original's imdn.Message-ID when it reports `displayed` */
  | { kind: 'report'; displayedId: string | undefined }
  /** text; `displayRequestId` is the imdn.Message-ID when a display notification is asked for */
  | { kind: 'text'; displayRequestId: string | undefined };

function mediaType(contentType: string | undefined): string {
  return (contentType?.split(';')[0] ?? '').trim().toLowerCase();
}

export function classify(contentType: string | undefined, body: Uint8Array): RecordedContent {
  const type = mediaType(contentType);
  if (type === IS_COMPOSING_TYPE) return { kind: 'typing' };
  if (type === IMDN_TYPE) return { kind: 'report', displayedId: displayedOf(body) };
  if (type !== CPIM_TYPE) return { kind: 'text', displayRequestId: undefined };
  const cpim = parseCpim(body);
  if (cpim === undefined) return { kind: 'text', displayRequestId: undefined };
  const inner = mediaType(cpim.contentType);
  if (inner === IS_COMPOSING_TYPE) return { kind: 'typing' };
  if (inner === IMDN_TYPE) return { kind: 'report', displayedId: displayedOf(cpim.body) };
  const prefix = namespacePrefix(cpim.headers) ?? 'imdn';
  const id = cpimHeader(cpim.headers, `${prefix}.Message-ID`)?.trim();
  const asked = (cpimHeader(cpim.headers, `${prefix}.Disposition-Notification`) ?? '').split(',').some((d) => d.trim().toLowerCase() === 'display');
  return { kind: 'text', displayRequestId: asked && id !== undefined && id !== '' ? id : undefined };
}

/** RFC 3862 §5.3: `NS: prefix <urn>`; the prefix declared for the IMDN URN. */
function namespacePrefix(headers: readonly CpimHeader[]): string | undefined {
  for (const h of headers) {
    if (h.name.toLowerCase() !== 'ns') continue;
    const m = /^\s*([^\s<]*)\s*<([^>]*)>\s*$/.exec(h.value);
    if (m !== null && (m[2] as string).toLowerCase() === IMDN_URN) return m[1] as string;
  }
  return undefined;
}

/** The original message-id of an IMDN document whose status is <displayed/>; undefined otherwise or when unreadable. */
function displayedOf(body: Uint8Array): string | undefined {
  try {
    const root = parseXml(body);
    if (root.ns !== IMDN_XML_NS || root.name !== 'imdn') return undefined;
    const id = childText(root, IMDN_XML_NS, 'message-id')?.trim();
    const display = childElement(root, IMDN_XML_NS, 'display-notification');
    const status = display === undefined ? undefined : childElement(display, IMDN_XML_NS, 'status');
    const displayed = status !== undefined && childElement(status, IMDN_XML_NS, 'displayed') !== undefined;
    return displayed && id !== undefined && id !== '' ? id : undefined;
  } catch {
    return undefined;
  }
}
