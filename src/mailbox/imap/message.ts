// The Internet message an IMAP mailbox gets for a DeliveryItem: text and HTML as
// multipart/alternative (nodemailer's MailComposer, the MIME builder Parley's outbound mail already
// uses), Message-ID = the item's InternetMessageId (the idempotence key the connector searches for
// before it appends), and the item class in `Content-Class` (RFC 3282's header, which MIME readers
// of the Microsoft family copy to the item's PidNameContentClass: [MS-OXCMAIL] 2.2.3.2.15; a mail
// client shows it with the headers), the header Parley's own count of Missed Conversations searches
// (SEARCH HEADER Content-Class, imap/connector.ts).
import type MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { DeliveryItem } from '../connector.ts';
import type { Mailer } from '../items.ts';

/** The header that carries the item class (IPM.Note.Microsoft.Missed, …Conversation, IPM.Note). */
export const CLASS_HEADER = 'Content-Class';

export async function itemMessage(item: DeliveryItem): Promise<Buffer> {
  // loaded by the first item written: only IMAP mailboxes need it (memory)
  const { default: Composer }: { default: typeof MailComposer } = await import('nodemailer/lib/mail-composer/index.js');
  const address = (m: Mailer) => (m.name !== undefined && m.name !== '' ? { name: m.name, address: m.address } : m.address);
  const composer = new Composer({
    from: address(item.from),
    to: item.to.map(address),
    subject: item.subject,
    text: item.bodyText,
    html: item.bodyHtml,
    messageId: item.internetMessageId,
    date: item.sentAt,
    headers: { [CLASS_HEADER]: item.itemClass },
  });
  return new Promise((resolve, reject) => composer.compile().build((error, message) => (error ? reject(error) : resolve(message))));
}
