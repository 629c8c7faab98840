// Messages about messages: a typing indication (RFC 3994) or a disposition notification (RFC 5438
// IMDN, "Seen") concerns a conversation happening now. Neither is kept for an offline recipient's
// mailbox, where it would show as a message of its own. Either may come bare or wrapped in
// message/cpim (RFC 3862), as IMDNs always are (RFC 5438 §7.2.1.1). Pure.

import { parseCpim } from '../sip/index.ts';

export const IS_COMPOSING_TYPE = 'application/im-iscomposing+xml';
export const IMDN_TYPE = 'message/imdn+xml';
const CPIM_TYPE = 'message/cpim';

export type Notice = 'typing' | 'disposition';

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase();
}

/** What kind of notice the message is, or undefined for a message to keep. */
export function noticeKind(contentType: string | undefined, body: Uint8Array): Notice | undefined {
  let type = mediaType(contentType);
  if (type === CPIM_TYPE) type = mediaType(parseCpim(body)?.contentType);
  if (type === IS_COMPOSING_TYPE) return 'typing';
  if (type === IMDN_TYPE) return 'disposition';
  return undefined;
}

/** The Warning text of the 480 for a notice to an offline recipient. */
export function noticeRefusal(notice: Notice, recipient: string): string {
  return notice === 'typing'
    ? `${recipient} is not signed in; typing notifications are not kept for later`
    : `${recipient} is not signed in; read receipts (message disposition notifications) are not kept for later`;
}
