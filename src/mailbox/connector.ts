// How the offline-IM pipeline reaches a mailbox (ARCHITECTURE.md: "The offline pipeline knows
// mailboxes only through a MailboxConnector"). The embedded store is one implementation; an
// external EWS server and SMTP (a partner organisation's user: smtp/partner-mail.ts) are others.
//
// What goes where (MISSION.md; issue 15): the IM classes (Missed, Conversation) only into
// Conversation History; into the Inbox only a plain note — a partner's offline messages are
// "Message from … while you were offline", never a Missed Conversation. Every connector checks an
// item with deliveryItemError before it writes anything.

import type { Database } from '../storage/index.ts';
import { transaction } from '../storage/index.ts';
import { MailboxError } from './errors.ts';
import { distinguishedFolderId, ensureMailbox } from './folders.ts';
import { createItem, findItemByInternetMessageId } from './items.ts';
import type { Mailer } from './items.ts';
import { CONVERSATION_CLASS, MISSED_CLASS, missedConversationSummary } from './missed.ts';
import type { MissedSummary } from './missed.ts';
import { MailboxQuota } from './quota.ts';
import type { QuotaRefusal } from './quota.ts';
import { mailboxSizeOf } from './usage.ts';

/** A plain message: what the Inbox takes from the offline pipeline (a partner's offline messages). */
export const NOTE_CLASS = 'IPM.Note';

/** The item classes of instant messaging: Conversation History's, never the Inbox's. */
const IM_CLASSES: ReadonlySet<string> = new Set([MISSED_CLASS, CONVERSATION_CLASS]);

export interface DeliveryItem {
  /** the recipient mailbox, `alice@parley.local` (a partner's connector: the partner user's address) */
  mailbox: string;
  folder: 'conversationhistory' | 'inbox';
  /** `IPM.Note.Microsoft.Missed` or `IPM.Note.Microsoft.Conversation` (Conversation History), `IPM.Note` (Inbox) */
  itemClass: string;
  /** the idempotence key: one id gives at most one item per mailbox */
  internetMessageId: string;
  subject: string;
  from: Mailer;
  to: readonly Mailer[];
  bodyHtml: string;
  bodyText: string;
  sentAt: Date;
  isRead: boolean;
  /** the trace (spool entry id) that records what becomes of the item past the connector: an e-mail's SMTP attempts */
  traceId?: string;
}

/** Why a connector must not deliver `item` (a permanent INVALID_REQUEST), or undefined when it may. */
export function deliveryItemError(item: DeliveryItem): MailboxError | undefined {
  if (item.internetMessageId.trim() === '') return new MailboxError('INVALID_REQUEST', 'a delivery needs an InternetMessageId (its idempotence key)');
  if (item.folder === 'inbox' && item.itemClass !== NOTE_CLASS) {
    return new MailboxError('INVALID_REQUEST', `the offline pipeline puts only plain notes (${NOTE_CLASS}) in an Inbox, not ${item.itemClass}`);
  }
  if (item.folder === 'conversationhistory' && !IM_CLASSES.has(item.itemClass)) {
    return new MailboxError('INVALID_REQUEST', `Conversation History takes only ${[...IM_CLASSES].join(' and ')} items, not ${item.itemClass}`);
  }
  return undefined;
}

export interface DeliveryResult {
  itemId: string;
  /** false when an earlier delivery with the same InternetMessageId already made the item */
  created: boolean;
}

/** The result of one delivery of a batch: batches fail item by item. */
export type DeliveryOutcome = { ok: true; result: DeliveryResult } | { ok: false; error: unknown };

export interface MailboxConnector {
  /**
   * Stores the item in the recipient's mailbox, idempotently: a second call with the same
   * `internetMessageId` returns the earlier item and creates nothing (and nothing goes to Drafts).
   * Rejects with a MailboxError (or a transport error for remote connectors) when it cannot.
   */
  deliver(item: DeliveryItem): Promise<DeliveryResult>;
  /** Several deliveries at once, where the connector can do better than one by one (one transaction). */
  deliverMany?(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]>;
  /** How many Missed Conversations the mailbox holds, and how many are unread (for RFC 3842 message-summary). */
  missedSummary(mailbox: string): Promise<MissedSummary>;
  /**
   * Whether the mailbox may take more — to receive: below its ProhibitSendReceiveQuota; its owner
   * to send: below ProhibitSendQuota — counting `pendingBytes` that are on their way to it but not
   * in it yet. Synchronous and cheap: the offline spool asks before each 202. Absent (or
   * undefined) when the connector cannot tell: a remote Exchange applies its own quotas.
   */
  checkQuota?(mailbox: string, direction: 'send' | 'receive', pendingBytes: number): QuotaRefusal | undefined;
}

/**
 * How long checkQuota trusts a mailbox size it read: the spool asks twice per offline MESSAGE
 * (recipient and sender), and a lookup costs about 4 µs, 4 % of a core at 5,000 messages a second.
 * Deliveries through this connector refresh the size at once; EWS and SMTP writes are seen within
 * this time, which lets a mailbox take what arrives in that second past its quota at most.
 */
const SIZE_TTL_MS = 1_000;

/**
 * The connector to Parley's own mailbox store. It delivers whatever the quota: what it is handed
 * was admitted against the quota when the spool accepted it (checkQuota), and must not be lost.
 */
export class EmbeddedMailboxConnector implements MailboxConnector {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #userExists: (address: string) => boolean;
  readonly #quota: MailboxQuota;
  /** sizes read by checkQuota, and when (one entry per user at most) */
  readonly #sizes = new Map<string, { size: number; readAt: number }>();

  /** `userExists` guards against making mailboxes for addresses that are not users. */
  constructor(opts: { db: Database; userExists: (address: string) => boolean; quota?: MailboxQuota; now?: () => number }) {
    this.#db = opts.db;
    this.#userExists = opts.userExists;
    this.#quota = opts.quota ?? new MailboxQuota();
    this.#now = opts.now ?? Date.now;
  }

  checkQuota(mailbox: string, direction: 'send' | 'receive', pendingBytes: number): QuotaRefusal | undefined {
    const now = Date.now();
    let known = this.#sizes.get(mailbox);
    if (known === undefined || now - known.readAt >= SIZE_TTL_MS) {
      known = { size: mailboxSizeOf(this.#db, mailbox), readAt: now };
      this.#sizes.set(mailbox, known);
    }
    const size = known.size + pendingBytes;
    return direction === 'receive' ? this.#quota.checkReceive(mailbox, size) : this.#quota.checkSend(mailbox, size);
  }

  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    return this.#deliver(item);
  }

  /** One transaction (one fsync) for the whole batch; each item in its own savepoint, so one failure spoils no other. */
  async deliverMany(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    return transaction(this.#db, () =>
      items.map((item): DeliveryOutcome => {
        try {
          return { ok: true, result: this.#deliver(item) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
  }

  async missedSummary(mailbox: string): Promise<MissedSummary> {
    return missedConversationSummary(this.#db, mailbox);
  }

  #deliver(item: DeliveryItem): DeliveryResult {
    // the size changes now: the next checkQuota reads it again
    this.#sizes.delete(item.mailbox);
    const invalid = deliveryItemError(item);
    if (invalid !== undefined) throw invalid;
    if (!this.#userExists(item.mailbox)) throw new MailboxError('MAILBOX_NOT_FOUND', `there is no user ${item.mailbox}, so no mailbox to deliver to`);
    const db = this.#db;
    return transaction(db, () => {
      const mailbox = ensureMailbox(db, item.mailbox, this.#now);
      const earlier = findItemByInternetMessageId(db, mailbox.id, item.internetMessageId);
      if (earlier !== undefined) return { itemId: earlier.id, created: false };
      const created = createItem(
        db,
        mailbox.id,
        distinguishedFolderId(db, mailbox.id, item.folder),
        {
          itemClass: item.itemClass,
          subject: item.subject,
          bodyHtml: item.bodyHtml,
          bodyText: item.bodyText,
          from: item.from,
          to: item.to,
          sentAt: item.sentAt.getTime(),
          receivedAt: this.#now(),
          isRead: item.isRead,
          internetMessageId: item.internetMessageId,
          conversationTopic: item.subject,
        },
        this.#now,
      );
      return { itemId: created.id, created: true };
    });
  }
}
