// What the quotas look like to an administrator (`parley spooler quota`, GET /admin/spool/quota):
// per user, what they have undelivered in the spool as a sender and as a recipient, their mailbox's
// size and Exchange status, the refusals recorded against them; and the limits. The running server
// answers from its live tallies (exact, counting batches not yet committed) and adds the refusals
// since its start; the CLI reads the same from the database.
import { formatBytes, UNLIMITED } from '../bytes.ts';
import type { MailboxQuota, MailboxQuotaLimits, StorageLimitStatus } from '../mailbox/index.ts';
import { mailboxUsages } from '../mailbox/index.ts';
import type { Sql } from '../storage/index.ts';
import type { QuotaReason, SpoolQuotaLimits, Tally } from './quota.ts';
import { listRefusals, undeliveredTotals } from './quota-store.ts';

/** A limit as JSON writes it: a number, or "unlimited" (JSON has no Infinity). */
export type LimitValue = number | 'unlimited';

export interface UserQuotaView {
  address: string;
  /** undelivered in the spool, from them and for them */
  waitingFrom: Tally;
  waitingFor: Tally;
  /** their embedded mailbox: TotalItemSize, soft-deleted size, and its StorageLimitStatus */
  mailbox: { size: number; deletedSize: number; status: StorageLimitStatus };
  refusals: Array<{ reason: QuotaReason; count: number; lastAt: string; lastPeer: string; lastWarning: string }>;
}

export interface QuotaReport {
  limits: {
    sender: Record<keyof SpoolQuotaLimits['sender'], LimitValue>;
    recipient: Record<keyof SpoolQuotaLimits['recipient'], LimitValue>;
    mailbox: Record<keyof MailboxQuotaLimits, LimitValue>;
  };
  /** users with something waiting, refused or a mailbox at IssueWarningQuota or above; or the one asked for */
  users: UserQuotaView[];
  /** the running server only: refusals since it started, by the spool per reason and by EWS/SMTP per mailbox limit */
  sinceStart?: { spool: Record<QuotaReason, number>; mailbox: Record<string, number> };
}

export interface QuotaReportInput {
  spoolLimits: Readonly<SpoolQuotaLimits>;
  mailboxQuota: MailboxQuota;
  /** what waits, per address: the live tallies, or waitingFromDatabase */
  waiting: { senders: ReadonlyMap<string, Tally>; recipients: ReadonlyMap<string, Tally> };
  /** one user only */
  user?: string | undefined;
  sinceStart?: QuotaReport['sinceStart'];
}

/** The undelivered tallies per sender and per recipient, as the database holds them. */
export async function waitingFromDatabase(sql: Sql): Promise<QuotaReportInput['waiting']> {
  const senders = new Map<string, Tally>();
  const recipients = new Map<string, Tally>();
  const add = (map: Map<string, Tally>, key: string, t: Tally) => {
    const sum = map.get(key) ?? { messages: 0, bytes: 0 };
    map.set(key, { messages: sum.messages + t.messages, bytes: sum.bytes + t.bytes });
  };
  for (const row of await undeliveredTotals(sql)) {
    add(senders, row.sender, row);
    add(recipients, row.recipient, row);
  }
  return { senders, recipients };
}

export async function quotaReport(sql: Sql, input: QuotaReportInput): Promise<QuotaReport> {
  const { mailboxQuota, waiting } = input;
  const usage = new Map((await mailboxUsages(sql)).map((u) => [u.address, u]));
  const refusals = await listRefusals(sql, input.user);
  const addresses = new Set<string>();
  if (input.user !== undefined) addresses.add(input.user);
  else {
    for (const a of waiting.senders.keys()) addresses.add(a);
    for (const a of waiting.recipients.keys()) addresses.add(a);
    for (const r of refusals) addresses.add(r.address);
    for (const [a, u] of usage) if (mailboxQuota.status(u.size) !== 'BelowLimit') addresses.add(a);
  }
  const users = [...addresses].sort().map((address): UserQuotaView => {
    const u = usage.get(address) ?? { size: 0, deletedSize: 0 };
    return {
      address,
      waitingFrom: { ...(waiting.senders.get(address) ?? { messages: 0, bytes: 0 }) },
      waitingFor: { ...(waiting.recipients.get(address) ?? { messages: 0, bytes: 0 }) },
      mailbox: { size: u.size, deletedSize: u.deletedSize, status: mailboxQuota.status(u.size) },
      refusals: refusals
        .filter((r) => r.address === address)
        .map((r) => ({ reason: r.reason, count: r.count, lastAt: new Date(r.lastAt).toISOString(), lastPeer: r.lastPeer, lastWarning: r.lastWarning })),
    };
  });
  const m = mailboxQuota.limits;
  const s = input.spoolLimits;
  return {
    limits: {
      sender: { maxBytes: limit(s.sender.maxBytes), maxMessages: limit(s.sender.maxMessages), perMinute: limit(s.sender.perMinute) },
      recipient: { maxBytes: limit(s.recipient.maxBytes), maxMessages: limit(s.recipient.maxMessages) },
      mailbox: { issueWarningQuota: limit(m.issueWarningQuota), prohibitSendQuota: limit(m.prohibitSendQuota), prohibitSendReceiveQuota: limit(m.prohibitSendReceiveQuota), recoverableItemsQuota: limit(m.recoverableItemsQuota) },
    },
    users,
    ...(input.sinceStart !== undefined ? { sinceStart: input.sinceStart } : {}),
  };
}

/** The limits as lines for a terminal; `from` says where they were read. */
export function limitLines(report: QuotaReport, from: string): string[] {
  const size = (v: LimitValue) => (v === 'unlimited' ? 'unlimited' : formatBytes(v));
  const { sender, recipient, mailbox } = report.limits;
  return [
    `limits (${from}):`,
    `  offlineIm.senderQuota     ${size(sender.maxBytes)}, ${sender.maxMessages} messages undelivered; ${sender.perMinute} a minute`,
    `  offlineIm.recipientQuota  ${size(recipient.maxBytes)}, ${recipient.maxMessages} messages undelivered`,
    `  mailboxQuota              IssueWarning ${size(mailbox.issueWarningQuota)}, ProhibitSend ${size(mailbox.prohibitSendQuota)}, ProhibitSendReceive ${size(mailbox.prohibitSendReceiveQuota)}, RecoverableItems ${size(mailbox.recoverableItemsQuota)}`,
  ];
}

/** One row per user: the table `parley spooler quota` prints. */
export function quotaRows(report: QuotaReport): string[][] {
  const tally = (t: Tally) => `${t.messages} / ${formatBytes(t.bytes)}`;
  const rows = [['USER', 'WAITING FROM (MSGS / BYTES)', 'WAITING FOR', 'MAILBOX', 'STATUS', 'REFUSED']];
  for (const u of report.users) {
    const refused = u.refusals.map((r) => `${r.reason} ×${r.count}`).join(', ') || '-';
    rows.push([u.address, tally(u.waitingFrom), tally(u.waitingFor), formatBytes(u.mailbox.size), u.mailbox.status, refused]);
  }
  return rows;
}

function limit(n: number): LimitValue {
  return n === UNLIMITED ? 'unlimited' : n;
}
