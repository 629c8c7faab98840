// How the offline-IM pipeline reaches a mailbox (ARCHITECTURE.md: "The offline pipeline knows
// mailboxes only through a MailboxConnector"). The embedded store is one implementation; an
// external EWS server and SMTP (a partner organisation's user: smtp/partner-mail.ts) are others.
//
// What goes where (MISSION.md; issue 15): the IM classes (Missed, Conversation) only into
// Conversation History; into the Inbox only a plain note — a partner's offline messages are
// "Message from … while you were offline", never a Missed Conversation. Every connector checks an
// item with deliveryItemError before it writes anything.

import type { Sql } from '../storage/index.ts';
import { isUniqueViolation } from '../storage/index.ts';
import { runChecks } from './checks.ts';
import { MailboxError } from './errors.ts';
import { distinguishedFolderId, ensureMailbox, findMailbox } from './folders.ts';
import { createItem, findItemByInternetMessageId } from './items.ts';
import type { Mailer } from './items.ts';
import { CONVERSATION_CLASS, MISSED_CLASS, missedConversationSummary } from './missed.ts';
import type { MissedSummary } from './missed.ts';
import { MailboxQuota } from './quota.ts';
import type { QuotaRefusal } from './quota.ts';
import { mailboxSizeOf } from './usage.ts';
import { WRITE, lockChangeLog, lockMailbox } from './writes.ts';

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

/** One step of `parley mailbox test`: what was checked, whether it passed, and in words an administrator can act on. */
export interface ConnectorCheck {
  readonly step: 'sign-in' | 'mailbox' | 'folder' | 'write';
  readonly ok: boolean;
  readonly detail: string;
}

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
  /** `parley mailbox test`: signs in, finds the mailbox and the folder, and checks the right to write, without leaving anything behind; stops at the first failing step */
  check?(mailbox: string): Promise<ConnectorCheck[]>;
  /**
   * Whether the mailbox may take more — to receive: below its ProhibitSendReceiveQuota; its owner
   * to send: below ProhibitSendQuota — counting `pendingBytes` that are on their way to it but not
   * in it yet. Synchronous and cheap: the offline spool asks before each 202, in the one step that
   * also counts the message, from the sizes `loadQuota` read. Absent (or undefined) when the
   * connector cannot tell: a remote Exchange applies its own quotas.
   */
  checkQuota?(mailbox: string, direction: 'send' | 'receive', pendingBytes: number): QuotaRefusal | undefined;
  /**
   * Reads the sizes checkQuota answers from (unless read within the last second): the spool awaits
   * it before checkQuota. A mailbox checked without it counts as empty until its size has been read.
   */
  loadQuota?(mailboxes: readonly string[]): Promise<void>;
}

/**
 * How long a mailbox size read by loadQuota is trusted: the spool asks twice per offline MESSAGE
 * (recipient and sender); a lookup costs about 4 µs on SQLite (4 % of a core at 5,000 messages a
 * second) and a round trip on PostgreSQL. Deliveries through this connector read the size again at
 * the next check; EWS and SMTP writes (and other nodes' deliveries) are seen within this time,
 * which lets a mailbox take what arrives in that second past its quota at most.
 */
const SIZE_TTL_MS = 1_000;

/**
 * The connector to Parley's own mailbox store. It delivers whatever the quota: what it is handed
 * was admitted against the quota when the spool accepted it (checkQuota), and must not be lost.
 */
export class EmbeddedMailboxConnector implements MailboxConnector {
  readonly #sql: Sql;
  readonly #now: () => number;
  readonly #userExists: (address: string) => Promise<boolean>;
  readonly #quota: MailboxQuota;
  /** sizes read for checkQuota, and when (one entry per user at most) */
  readonly #sizes = new Map<string, { size: number; readAt: number }>();
  /** deliveries begun or ended per mailbox: a size read while one was under way is not kept */
  readonly #deliveries = new Map<string, number>();

  /** `userExists` guards against making mailboxes for addresses that are not users. */
  constructor(opts: { sql: Sql; userExists: (address: string) => Promise<boolean>; quota?: MailboxQuota; now?: () => number }) {
    this.#sql = opts.sql;
    this.#userExists = opts.userExists;
    this.#quota = opts.quota ?? new MailboxQuota();
    this.#now = opts.now ?? Date.now;
  }

  async loadQuota(mailboxes: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const mailbox of new Set(mailboxes)) {
      const known = this.#sizes.get(mailbox);
      if (known !== undefined && now - known.readAt < SIZE_TTL_MS) continue;
      for (let attempt = 1; ; attempt++) {
        const before = this.#deliveries.get(mailbox);
        const size = await mailboxSizeOf(this.#sql, mailbox);
        // a delivery began or ended meanwhile: read again (a few times; then it is as stale as SIZE_TTL_MS allows)
        if (before === this.#deliveries.get(mailbox) || attempt === 3) {
          this.#sizes.set(mailbox, { size, readAt: now });
          break;
        }
      }
    }
  }

  checkQuota(mailbox: string, direction: 'send' | 'receive', pendingBytes: number): QuotaRefusal | undefined {
    const known = this.#sizes.get(mailbox);
    if (known === undefined || Date.now() - known.readAt >= SIZE_TTL_MS) {
      // not loaded (the caller did not await loadQuota): read it for the next check
      this.loadQuota([mailbox]).catch(() => this.#sizes.delete(mailbox));
    }
    const size = (known?.size ?? 0) + pendingBytes;
    return direction === 'receive' ? this.#quota.checkReceive(mailbox, size) : this.#quota.checkSend(mailbox, size);
  }

  async deliver(item: DeliveryItem): Promise<DeliveryResult> {
    try {
      await this.#admissible(item);
      return await this.#sql.transaction((tx) => this.#storeOnce(tx, item), WRITE);
    } finally {
      this.#sizeChanged(item.mailbox);
    }
  }

  /** One transaction (one fsync) for the whole batch; each item in its own savepoint, so one failure spoils no other. */
  async deliverMany(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    // the directory is asked before the transaction opens: nothing but this batch's work waits on it
    const refused = await Promise.all(items.map((item) => this.#admissible(item).then(() => undefined, (error: unknown) => ({ error }))));
    try {
      return await this.#deliverAll(items, refused);
    } finally {
      for (const item of items) this.#sizeChanged(item.mailbox);
    }
  }

  #deliverAll(items: readonly DeliveryItem[], refused: ReadonlyArray<{ error: unknown } | undefined>): Promise<DeliveryOutcome[]> {
    return this.#sql.transaction(async (tx) => {
      const outcomes: DeliveryOutcome[] = [];
      for (const [index, item] of items.entries()) {
        const refusal = refused[index];
        if (refusal !== undefined) {
          outcomes.push({ ok: false, error: refusal.error });
          continue;
        }
        try {
          outcomes.push({ ok: true, result: await this.#storeOnce(tx, item) });
        } catch (error) {
          // PostgreSQL: the whole transaction lost a conflict and runs again; not this item's failure
          if (isSerializationFailure(error)) throw error;
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    }, WRITE);
  }

  async missedSummary(mailbox: string): Promise<MissedSummary> {
    return missedConversationSummary(this.#sql, mailbox);
  }

  /**
   * sign-in: none (Parley's own database); mailbox: a user of the directory; folder: its
   * Conversation History (made with the mailbox at the first delivery); write: a write transaction
   * on the mailbox, rolled back, so nothing is left behind.
   */
  async check(mailbox: string): Promise<ConnectorCheck[]> {
    return runChecks([
      { step: 'sign-in', run: async () => `the embedded store is Parley's own database (${this.#sql.engine}): no sign-in` },
      {
        step: 'mailbox',
        run: async () => {
          if (!(await this.#userExists(mailbox))) throw new MailboxError('MAILBOX_NOT_FOUND', `there is no user ${mailbox}, so no mailbox: add the user (parley user add ${mailbox}) or route the address to another mailbox server in the config's mailboxes`);
          return `${mailbox} is a user, so has a mailbox here`;
        },
      },
      {
        step: 'folder',
        run: async () => {
          const found = await findMailbox(this.#sql, mailbox);
          if (found === undefined) return 'the mailbox and its Conversation History are made at the first delivery';
          await distinguishedFolderId(this.#sql, found.id, 'conversationhistory');
          return 'found Conversation History (conversationhistory)';
        },
      },
      {
        step: 'write',
        run: async () => {
          const rolledBack = new Error('rolled back');
          try {
            await this.#sql.transaction(async (tx) => {
              await lockChangeLog(tx);
              const made = await ensureMailbox(tx, mailbox, this.#now);
              await lockMailbox(tx, made.id);
              await tx.run('UPDATE mailboxes SET created_at = created_at WHERE id = ?', [made.id]);
              throw rolledBack;
            }, WRITE);
          } catch (error) {
            if (error !== rolledBack) throw error;
          }
          return 'the database takes writes to the mailbox (checked in a transaction that was rolled back)';
        },
      },
    ]);
  }

  /** Throws when the item must not be delivered: malformed, or no such user. */
  async #admissible(item: DeliveryItem): Promise<void> {
    this.#sizeChanged(item.mailbox);
    const invalid = deliveryItemError(item);
    if (invalid !== undefined) throw invalid;
    if (!(await this.#userExists(item.mailbox))) throw new MailboxError('MAILBOX_NOT_FOUND', `there is no user ${item.mailbox}, so no mailbox to deliver to`);
  }

  /** The mailbox's size changes (a delivery begins or has ended): the next loadQuota reads it again. */
  #sizeChanged(mailbox: string): void {
    this.#sizes.delete(mailbox);
    this.#deliveries.set(mailbox, (this.#deliveries.get(mailbox) ?? 0) + 1);
  }

  /**
   * Stores the item unless its InternetMessageId already made one: exactly once, also when
   * another node delivers the same spool entry at the same moment (the unique index on the id
   * refuses the second; it then finds the first).
   */
  async #storeOnce(tx: Sql, item: DeliveryItem): Promise<DeliveryResult> {
    try {
      return await tx.transaction((sp) => this.#store(sp, item));
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const mailbox = await findMailbox(tx, item.mailbox);
      const earlier = mailbox && (await findItemByInternetMessageId(tx, mailbox.id, item.internetMessageId));
      if (earlier === undefined) throw error;
      return { itemId: earlier.id, created: false };
    }
  }

  async #store(tx: Sql, item: DeliveryItem): Promise<DeliveryResult> {
    // after the mailbox's other writers (writes.ts): a delivery of this id that committed meanwhile is found here
    await lockChangeLog(tx);
    const mailbox = await ensureMailbox(tx, item.mailbox, this.#now);
    await lockMailbox(tx, mailbox.id);
    const earlier = await findItemByInternetMessageId(tx, mailbox.id, item.internetMessageId);
    if (earlier !== undefined) return { itemId: earlier.id, created: false };
    const created = await createItem(
      tx,
      mailbox.id,
      await distinguishedFolderId(tx, mailbox.id, item.folder),
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
  }
}

/** PostgreSQL's serialization failure or deadlock: the engine runs the transaction again. */
function isSerializationFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}
