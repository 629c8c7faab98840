// Offline-IM quotas (issue 18, finding 3): what one sender, and one recipient, may have in the
// spool not yet delivered, and how fast one sender may leave offline messages — so that no user
// can fill the disk through the spool, and many senders cannot fill one recipient's mailbox.
//
//   offlineIm.senderQuota.maxBytes / maxMessages   undelivered bytes / messages from one sender
//   offlineIm.senderQuota.perMinute                offline messages a sender may leave a minute
//                                                  (a token bucket: a burst of perMinute, then
//                                                  one every 60/perMinute s)
//   offlineIm.recipientQuota.maxBytes / maxMessages  undelivered bytes / messages to one recipient
//   mailboxQuota.*                                 the recipient's mailbox must be below its
//                                                  ProhibitSendReceiveQuota, the sender's below its
//                                                  ProhibitSendQuota (their copy goes there), each
//                                                  counting what already waits for it (src/mailbox/quota.ts)
//
// "Undelivered" is every entry not yet `delivered` (waiting, delivering, failed): a failed entry
// still holds its bytes until an administrator retries or purges it. A message is counted at its
// body's size; the Missed Conversation made of it is larger (HTML and text).
//
// The tallies live in memory: admitting is a few Map lookups on the path of every offline MESSAGE,
// before its 202. They are exact: rebuilt from the spool at start-up, reserved synchronously when a
// message is admitted (so several messages of one sender in one group-commit batch each see the
// ones before), released when an entry is delivered or purged, or when its batch failed to commit.
//
// Defaults: a person types a few offline messages before the two-minute pickup delay delivers
// them; 60 a minute is a fast typist's burst. messaging.maxBody is 64 KB, so 10 MB is 160 of the
// largest messages, and 1,000 messages is hours of a busy person's offline messages while the
// mailbox cannot be reached. A recipient takes from many senders: twice a sender's amounts. Worst
// case the spool holds, per user, 10 MB as a sender and 20 MB as a recipient.
import { formatBytes, UNLIMITED } from '../bytes.ts';
import type { SpoolKind } from './spool.ts';

/**
 * The spool kinds the quotas count: messages someone left for a recipient who was not signed in —
 * offline (local to local), email (a local sender to a partner's user), note (a partner's user to a
 * local one), so neither a local sender nor a partner's can fill the disk or a mailbox through the
 * spool. Unread and history entries record what was delivered once already: no quota admits them.
 */
export const QUOTA_KINDS: readonly SpoolKind[] = ['offline', 'email', 'note'];

export interface SpoolQuotaLimits {
  sender: { maxBytes: number; maxMessages: number; perMinute: number };
  recipient: { maxBytes: number; maxMessages: number };
}

const MB = 1024 * 1024;
export const DEFAULT_SPOOL_QUOTA: Readonly<SpoolQuotaLimits> = Object.freeze({
  sender: Object.freeze({ maxBytes: 10 * MB, maxMessages: 1_000, perMinute: 60 }),
  recipient: Object.freeze({ maxBytes: 20 * MB, maxMessages: 2_000 }),
});

/** Why a message was refused, stable (trace, `parley spooler quota`, the counters a /metrics reads). */
export const QUOTA_REASONS = ['recipient-mailbox', 'recipient-messages', 'recipient-bytes', 'sender-mailbox', 'sender-messages', 'sender-bytes', 'sender-rate'] as const;
export type QuotaReason = (typeof QUOTA_REASONS)[number];

/** What a sender or recipient has in the spool, not yet delivered. */
export interface Tally {
  messages: number;
  bytes: number;
}

export interface QuotaRefusalDecision {
  reason: QuotaReason;
  /** the config key of the limit */
  setting: string;
  /** whose limit: the sender or the recipient */
  address: string;
  /** for the sender: the Warning text */
  warning: string;
  /** seconds until a retry can succeed, when that is known (the rate) */
  retryAfter?: number;
}

/** The mailbox's verdict (MailboxConnector.checkQuota): undefined when it may take more. */
export type MailboxCheck = (address: string, direction: 'send' | 'receive', pendingBytes: number) => { message: string; setting: string } | undefined;

export interface Admission {
  sender: string;
  recipient: string;
  bytes: number;
  now: number;
}

/**
 * So many events a minute per key (a token bucket): a burst of `perMinute`, then one every
 * 60/perMinute s. Unlimited (Infinity) always allows.
 */
export class PerMinute {
  readonly perMinute: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(perMinute: number) {
    this.perMinute = perMinute;
  }

  /** Seconds until `key` may go again; 0 when it may now. */
  wait(key: string, now: number): number {
    const bucket = this.#buckets.get(key);
    if (bucket === undefined || this.perMinute === UNLIMITED) return 0;
    const tokens = this.#tokens(bucket, now);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - tokens) * 60) / this.perMinute));
  }

  /** Counts one event of `key` (call after wait() said 0). */
  take(key: string, now: number): void {
    if (this.perMinute === UNLIMITED) return;
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) this.#buckets.set(key, { tokens: this.perMinute - 1, at: now });
    else {
      bucket.tokens = this.#tokens(bucket, now) - 1;
      bucket.at = now;
    }
  }

  /** Forgets keys whose bucket has refilled (idle for a minute): the map holds active keys only. */
  prune(now: number): void {
    for (const [key, bucket] of this.#buckets) if (this.#tokens(bucket, now) >= this.perMinute) this.#buckets.delete(key);
  }

  #tokens(bucket: { tokens: number; at: number }, now: number): number {
    return Math.min(this.perMinute, bucket.tokens + (Math.max(0, now - bucket.at) * this.perMinute) / 60_000);
  }
}

const ZERO: Readonly<Tally> = Object.freeze({ messages: 0, bytes: 0 });

export class SpoolQuota {
  readonly limits: Readonly<SpoolQuotaLimits>;
  /** refusals since the start, per reason: what the later /metrics endpoint reads */
  readonly refusals: Record<QuotaReason, number> = Object.fromEntries(QUOTA_REASONS.map((r) => [r, 0])) as Record<QuotaReason, number>;
  readonly #asSender = new Map<string, Tally>();
  readonly #asRecipient = new Map<string, Tally>();
  readonly #rate: PerMinute;

  constructor(limits: Readonly<SpoolQuotaLimits> = DEFAULT_SPOOL_QUOTA) {
    this.limits = limits;
    this.#rate = new PerMinute(limits.sender.perMinute);
  }

  /** Replaces every tally with what the spool holds (at start-up): one row per sender and recipient pair. */
  load(rows: Iterable<{ sender: string; recipient: string } & Tally>): void {
    this.#asSender.clear();
    this.#asRecipient.clear();
    for (const r of rows) {
      add(this.#asSender, r.sender, r.messages, r.bytes);
      add(this.#asRecipient, r.recipient, r.messages, r.bytes);
    }
  }

  /**
   * Admits one message (undefined), counting it as waiting at once, or says which limit refuses it
   * (and counts the refusal). Synchronous: no other message is admitted between check and count.
   */
  admit(m: Admission, mailbox?: MailboxCheck): QuotaRefusalDecision | undefined {
    const refused = this.#check(m, mailbox);
    if (refused !== undefined) {
      this.refusals[refused.reason]++;
      return refused;
    }
    this.#rate.take(m.sender, m.now);
    add(this.#asSender, m.sender, 1, m.bytes);
    add(this.#asRecipient, m.recipient, 1, m.bytes);
    return undefined;
  }

  /** Gives back what an entry (or a failed batch's message) held: delivered, purged, or never stored. */
  release(sender: string, recipient: string, tally: Tally): void {
    add(this.#asSender, sender, -tally.messages, -tally.bytes);
    add(this.#asRecipient, recipient, -tally.messages, -tally.bytes);
  }

  waitingFrom(sender: string): Tally {
    return { ...(this.#asSender.get(sender) ?? ZERO) };
  }

  waitingFor(recipient: string): Tally {
    return { ...(this.#asRecipient.get(recipient) ?? ZERO) };
  }

  /** Every sender and recipient with something waiting. */
  tallies(): { senders: Map<string, Tally>; recipients: Map<string, Tally> } {
    return { senders: new Map(this.#asSender), recipients: new Map(this.#asRecipient) };
  }

  /** Forgets rate buckets that have refilled (a sender idle for a minute): keeps the map to active senders. */
  prune(now: number): void {
    this.#rate.prune(now);
  }

  #check(m: Admission, mailbox: MailboxCheck | undefined): QuotaRefusalDecision | undefined {
    const { sender: s, recipient: r } = this.limits;
    const forRecipient = this.#asRecipient.get(m.recipient) ?? ZERO;
    const fromSender = this.#asSender.get(m.sender) ?? ZERO;
    const full = mailbox?.(m.recipient, 'receive', forRecipient.bytes);
    if (full !== undefined) return refuse('recipient-mailbox', full.setting, m.recipient, full.message);
    if (forRecipient.messages + 1 > r.maxMessages) {
      return refuse('recipient-messages', 'offlineIm.recipientQuota.maxMessages', m.recipient, `${m.recipient} has ${forRecipient.messages} offline messages waiting for delivery, the limit is ${r.maxMessages} (offlineIm.recipientQuota.maxMessages); try again once they are delivered`);
    }
    if (forRecipient.bytes + m.bytes > r.maxBytes) {
      return refuse('recipient-bytes', 'offlineIm.recipientQuota.maxBytes', m.recipient, `${m.recipient} has ${formatBytes(forRecipient.bytes)} waiting for delivery and this message of ${formatBytes(m.bytes)} would pass the limit of ${formatBytes(r.maxBytes)} (offlineIm.recipientQuota.maxBytes); try again once they are delivered`);
    }
    const ownFull = mailbox?.(m.sender, 'send', fromSender.bytes);
    if (ownFull !== undefined) return refuse('sender-mailbox', ownFull.setting, m.sender, `${ownFull.message}, and your copy of an offline conversation goes there`);
    if (fromSender.messages + 1 > s.maxMessages) {
      return refuse('sender-messages', 'offlineIm.senderQuota.maxMessages', m.sender, `${m.sender} has ${fromSender.messages} offline messages waiting for delivery, the limit is ${s.maxMessages} (offlineIm.senderQuota.maxMessages); try again once they are delivered`);
    }
    if (fromSender.bytes + m.bytes > s.maxBytes) {
      return refuse('sender-bytes', 'offlineIm.senderQuota.maxBytes', m.sender, `${m.sender} has ${formatBytes(fromSender.bytes)} waiting for delivery and this message of ${formatBytes(m.bytes)} would pass the limit of ${formatBytes(s.maxBytes)} (offlineIm.senderQuota.maxBytes); try again once they are delivered`);
    }
    const wait = this.#rate.wait(m.sender, m.now);
    if (wait > 0) {
      return { ...refuse('sender-rate', 'offlineIm.senderQuota.perMinute', m.sender, `${m.sender} has left ${s.perMinute} offline messages in the last minute, the limit is ${s.perMinute} a minute (offlineIm.senderQuota.perMinute); try again in ${wait} s`), retryAfter: wait };
    }
    return undefined;
  }
}

function refuse(reason: QuotaReason, setting: string, address: string, why: string): QuotaRefusalDecision {
  return { reason, setting, address, warning: `offline message refused: ${why}` };
}

function add(map: Map<string, Tally>, key: string, messages: number, bytes: number): void {
  const t = map.get(key);
  if (t === undefined) {
    if (messages > 0 || bytes > 0) map.set(key, { messages, bytes });
    return;
  }
  t.messages += messages;
  t.bytes += bytes;
  if (t.messages <= 0 && t.bytes <= 0) map.delete(key);
}
