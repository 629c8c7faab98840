// How a Conversation History item looks to the web client (and `parley chat`): pure, from the
// mailbox item. Transcript bodies are untrusted HTML (IM clients wrote them): `html` is always the
// transcripts' allow-list sanitiser's output (src/offline/html.ts), never the stored markup.

import type { ItemRecord, Mailer } from '../mailbox/index.ts';
import { MISSED_CLASS } from '../mailbox/index.ts';
import { escapeHtml, htmlToText, sanitizeHtml, transcriptPreview } from '../offline/index.ts';

export interface ConversationSummary {
  id: string;
  kind: 'missed' | 'conversation';
  subject: string;
  /** the other person */
  with: { address: string; displayName: string | null };
  /** ISO 8601 */
  received: string;
  unread: boolean;
  preview: string;
}

export interface ConversationDetail extends ConversationSummary {
  /** sanitised HTML fragment, safe to put in an element */
  html: string;
  text: string;
}

/** The person the conversation was with: the sender of a missed conversation, the recipient of the user's own copy. */
function otherParty(item: ItemRecord, owner: string): Mailer | undefined {
  if (item.from !== null && item.from.address.toLowerCase() !== owner) return item.from;
  return item.to.find((m) => m.address.toLowerCase() !== owner) ?? item.from ?? undefined;
}

/** The address (lower case, '' when none) whose display name summaryOf asks for. */
export function otherPartyAddress(item: ItemRecord, owner: string): string {
  return (otherParty(item, owner)?.address ?? '').toLowerCase();
}

/**
 * `displayName`: the directory's, when it knows the person; else the name the item carries, unless
 * that is only the address again (transcripts name a person without a display name by address).
 */
export function summaryOf(item: ItemRecord, owner: string, displayName: (address: string) => string | null | undefined): ConversationSummary {
  const other = otherParty(item, owner);
  const address = otherPartyAddress(item, owner);
  const named = other?.name !== undefined && other.name !== '' && other.name.toLowerCase() !== address ? other.name : null;
  return {
    id: item.id,
    kind: item.itemClass === MISSED_CLASS ? 'missed' : 'conversation',
    subject: item.subject,
    with: { address, displayName: (address === '' ? null : displayName(address)) ?? named },
    received: new Date(item.receivedAt).toISOString(),
    unread: !item.isRead,
    preview: transcriptPreview(textOf(item)),
  };
}

export function detailOf(item: ItemRecord, owner: string, displayName: (address: string) => string | null | undefined): ConversationDetail {
  const text = textOf(item);
  const html = item.bodyHtml !== null && item.bodyHtml !== '' ? sanitizeHtml(item.bodyHtml) : escapeHtml(text).replace(/\n/g, '<br>\n');
  return { ...summaryOf(item, owner, displayName), html, text };
}

function textOf(item: ItemRecord): string {
  if (item.bodyText !== null && item.bodyText !== '') return item.bodyText;
  return item.bodyHtml === null ? '' : htmlToText(item.bodyHtml);
}
