// Mailbox quotas with Exchange's semantics (Set-Mailbox / Set-MailboxDatabase parameters):
//   IssueWarningQuota         at or above it the mailbox is reported nearly full (Exchange mails its
//                             owner a warning; Parley shows it in `parley spooler quota`)
//   ProhibitSendQuota         at or above it the owner sends nothing: EWS CreateItem SendOnly /
//                             SendAndSaveCopy, and offline IM (its copy goes to their Conversation History)
//   ProhibitSendReceiveQuota  at or above it the mailbox receives nothing and nothing new is made in
//                             it: EWS sends from local users, SMTP from outside, offline IM (refused
//                             by the spool before its 202), and the owner's own CreateItem
//   RecoverableItemsQuota     at or above it (soft-deleted items' size) a SoftDelete is refused;
//                             HardDelete always works and frees space
// "At or above": a mailbox below a limit takes one more item even if that item crosses it, as
// Exchange does. The size is TotalItemSize (usage.ts): every item the user sees, counted as EWS
// reports an item's Size. Offline IM the spool has accepted is delivered whatever the quota
// (the spool admitted it against the quota, counting what was waiting: nothing accepted is lost).
//
// Defaults: Exchange's mailbox database defaults (IssueWarningQuota 1.9 GB, ProhibitSendQuota 2 GB,
// ProhibitSendReceiveQuota 2.3 GB) assume 100 mails of 50 KB a day, 5 MB a day. An IM user's
// mailbox here takes Missed Conversations and Conversation History items of a few KB, about 1 MB a
// day for a heavy user (100 conversations of 10 KB); the same 460 days of headroom is 460 MB, so
// 500 MB, with the warning and send limits at Exchange's ratios (80 %, 90 %). Exchange's
// RecoverableItemsQuota is 30 GB, purged after 14 days; Parley never purges soft-deleted items,
// so they are held to the mailbox's own size.
import { formatBytes } from '../bytes.ts';
import type { Sql } from '../storage/index.ts';
import { MailboxError } from './errors.ts';
import type { Mailbox } from './folders.ts';
import { mailboxSizeOf, mailboxUsage } from './usage.ts';

export interface MailboxQuotaLimits {
  /** bytes; Infinity for unlimited */
  issueWarningQuota: number;
  prohibitSendQuota: number;
  prohibitSendReceiveQuota: number;
  recoverableItemsQuota: number;
}

const MB = 1024 * 1024;
export const DEFAULT_MAILBOX_QUOTA: Readonly<MailboxQuotaLimits> = Object.freeze({
  issueWarningQuota: 400 * MB,
  prohibitSendQuota: 450 * MB,
  prohibitSendReceiveQuota: 500 * MB,
  recoverableItemsQuota: 500 * MB,
});

/** The limit that refused, by its Exchange name. */
export type MailboxQuotaLimit = 'ProhibitSendQuota' | 'ProhibitSendReceiveQuota' | 'RecoverableItemsQuota';

/** Get-MailboxStatistics StorageLimitStatus, with Exchange's names (MailboxDisabled: at ProhibitSendReceiveQuota). */
export type StorageLimitStatus = 'BelowLimit' | 'IssueWarning' | 'ProhibitSend' | 'MailboxDisabled';

/** Why a mailbox may not send or receive now. */
export interface QuotaRefusal {
  limit: MailboxQuotaLimit;
  /** the config key that sets it, for the administrator */
  setting: string;
  address: string;
  /** the size counted, and the limit, bytes */
  size: number;
  quota: number;
  /** one sentence for the user: whose mailbox, how full, which limit, what to do */
  message: string;
}

const SETTING: Record<MailboxQuotaLimit, keyof MailboxQuotaLimits> = {
  ProhibitSendQuota: 'prohibitSendQuota',
  ProhibitSendReceiveQuota: 'prohibitSendReceiveQuota',
  RecoverableItemsQuota: 'recoverableItemsQuota',
};

/** The limits of every embedded mailbox, and how often each refused (read by a later /metrics). */
export class MailboxQuota {
  readonly limits: Readonly<MailboxQuotaLimits>;
  /** refusals by EWS and SMTP since the start, per limit (the spool counts its own) */
  readonly refusals: Record<MailboxQuotaLimit, number> = { ProhibitSendQuota: 0, ProhibitSendReceiveQuota: 0, RecoverableItemsQuota: 0 };

  constructor(limits: Readonly<MailboxQuotaLimits> = DEFAULT_MAILBOX_QUOTA) {
    this.limits = limits;
  }

  status(size: number): StorageLimitStatus {
    if (size >= this.limits.prohibitSendReceiveQuota) return 'MailboxDisabled';
    if (size >= this.limits.prohibitSendQuota) return 'ProhibitSend';
    if (size >= this.limits.issueWarningQuota) return 'IssueWarning';
    return 'BelowLimit';
  }

  /** Whether a mailbox of `size` bytes may receive; the refusal when it may not. Pure. */
  checkReceive(address: string, size: number): QuotaRefusal | undefined {
    const quota = this.limits.prohibitSendReceiveQuota;
    if (size < quota) return undefined;
    return refusal('ProhibitSendReceiveQuota', address, size, quota, `${address}'s mailbox is full: ${formatBytes(size)}, at or above its ProhibitSendReceiveQuota of ${formatBytes(quota)} (mailboxQuota.prohibitSendReceiveQuota); it receives nothing until items are deleted`);
  }

  /** Whether the owner of a mailbox of `size` bytes may send; the refusal when they may not. Pure. */
  checkSend(address: string, size: number): QuotaRefusal | undefined {
    const { prohibitSendQuota, prohibitSendReceiveQuota } = this.limits;
    if (size < prohibitSendQuota && size < prohibitSendReceiveQuota) return undefined;
    const limit = prohibitSendQuota <= prohibitSendReceiveQuota ? 'ProhibitSendQuota' : 'ProhibitSendReceiveQuota';
    const quota = Math.min(prohibitSendQuota, prohibitSendReceiveQuota);
    return refusal(limit, address, size, quota, `the mailbox of ${address} is full: ${formatBytes(size)}, at or above its ${limit} of ${formatBytes(quota)} (mailboxQuota.${SETTING[limit]}); it sends nothing until items are deleted`);
  }

  /** Throws QUOTA_EXCEEDED (counted) when this mailbox may not receive: call inside the write's transaction. */
  async requireRoomToReceive(sql: Sql, mailbox: Mailbox): Promise<void> {
    this.#require(this.checkReceive(mailbox.address, (await mailboxUsage(sql, mailbox.id)).size));
  }

  /** The same, for a mailbox known by address (0 bytes when it does not exist yet). */
  async requireRoomToReceiveAt(sql: Sql, address: string): Promise<void> {
    this.#require(this.checkReceive(address, await mailboxSizeOf(sql, address)));
  }

  /** Throws QUOTA_EXCEEDED (counted) when the owner of this mailbox may not send. */
  async requireRoomToSend(sql: Sql, mailbox: Mailbox): Promise<void> {
    this.#require(this.checkSend(mailbox.address, (await mailboxUsage(sql, mailbox.id)).size));
  }

  /** Throws QUOTA_EXCEEDED (counted) when soft-deleted items already fill RecoverableItemsQuota. */
  async requireRoomToSoftDelete(sql: Sql, mailbox: Mailbox): Promise<void> {
    const address = mailbox.address;
    const deleted = (await mailboxUsage(sql, mailbox.id)).deletedSize;
    const quota = this.limits.recoverableItemsQuota;
    if (deleted < quota) return;
    this.#require(refusal('RecoverableItemsQuota', address, deleted, quota, `the soft-deleted items of ${address} fill ${formatBytes(deleted)}, at or above RecoverableItemsQuota of ${formatBytes(quota)} (mailboxQuota.recoverableItemsQuota); delete with HardDelete instead`));
  }

  #require(refused: QuotaRefusal | undefined): void {
    if (refused === undefined) return;
    this.refusals[refused.limit]++;
    throw new MailboxError('QUOTA_EXCEEDED', refused.message);
  }
}

function refusal(limit: MailboxQuotaLimit, address: string, size: number, quota: number, message: string): QuotaRefusal {
  return { limit, setting: `mailboxQuota.${SETTING[limit]}`, address, size, quota, message };
}
