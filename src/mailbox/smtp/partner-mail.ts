// The MailboxConnector for a partner organisation's user (issue 15, the reference document's rule:
// offline messages across organisations travel as plain e-mail). Delivering an item queues it as an
// ordinary e-mail in the durable outbox (outbox.ts), which SmtpOutbound sends by the configured
// routes (a domain's server, else the smarthost, else the domain's MX hosts). Idempotent like every
// connector: the item's InternetMessageId is the outbox entry's delivery key, so a delivery repeated
// after a crash (queued, but the spool entry not yet marked delivered) finds the queued e-mail and
// queues nothing. The SMTP sending itself is at least once, as SMTP is: a process stopped after the
// partner's server answered 250 but before the entry was marked sent sends it again with the same
// Message-ID, by which the receiving side can tell.
import type { DeliveryItem, DeliveryResult, MailboxConnector } from '../connector.ts';
import { NOTE_CLASS } from '../connector.ts';
import { MailboxError } from '../errors.ts';
import type { MissedSummary } from '../missed.ts';
import type { Database } from '../../storage/index.ts';
import { noRouteReason, routeFor } from './outbound.ts';
import type { SmtpRoutes } from './outbound.ts';
import { enqueueOutboundOnce } from './outbox.ts';

export interface PartnerMailOptions {
  db: Database;
  /**
   * the routes SmtpOutbound sends by: an e-mail no route can carry (only with smtpRoutes.mx false:
   * MX routing reaches every domain) is refused, not queued; absent: every e-mail is queued
   * (SmtpOutbound fails what it cannot route, in the outbox and the entry's trace)
   */
  routes?: SmtpRoutes;
  now?: () => number;
}

export class PartnerMailConnector implements MailboxConnector {
  readonly #o: PartnerMailOptions;

  constructor(opts: PartnerMailOptions) {
    this.#o = opts;
  }

  /** Queues the item as an e-mail to `item.mailbox`, from `item.from`: its text and HTML as multipart/alternative. */
  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    if (item.internetMessageId.trim() === '') throw new MailboxError('INVALID_REQUEST', 'a delivery needs an InternetMessageId (its idempotence key)');
    // an e-mail to another organisation is plain mail: never an IM class (it would mean nothing there)
    if (item.itemClass !== NOTE_CLASS) throw new MailboxError('INVALID_REQUEST', `mail to another organisation is a plain ${NOTE_CLASS}, not ${item.itemClass}`);
    const rcpt = item.mailbox.toLowerCase();
    const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1);
    if (this.#o.routes !== undefined && routeFor(this.#o.routes, domain) === undefined) {
      throw new MailboxError('REMOTE_REFUSED', `${noRouteReason(domain)}; configure a route for ${domain}, a smarthost or MX routing, then retry the entry`);
    }
    const queued = await enqueueOutboundOnce(
      this.#o.db,
      item.internetMessageId,
      item.from.address,
      [rcpt],
      {
        from: item.from,
        to: [...item.to],
        cc: [],
        subject: item.subject,
        html: item.bodyHtml,
        text: item.bodyText,
        messageId: item.internetMessageId,
        date: item.sentAt.getTime(),
      },
      (this.#o.now ?? Date.now)(),
      item.traceId,
    );
    return { itemId: queued.id, created: queued.created };
  }

  /** A partner's mailbox is not ours to count: none of its items are Missed Conversations here. */
  async missedSummary(_mailbox: string): Promise<MissedSummary> {
    return { total: 0, unread: 0 };
  }
}
