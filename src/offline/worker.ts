// The spool worker: after the pickup delay (the seed's two-minute timer) it delivers each spool
// entry as one Missed Conversation in the recipient's Conversation History and one Conversation
// item in the sender's, through the mailbox connector of each (a history entry: its owner's one
// Conversation item; an email entry: one e-mail to the partner's user, queued for outbound SMTP,
// and the sender's Conversation item; a note entry: one plain unread note in the recipient's
// Inbox). Delivery is idempotent (the spool entry id is the items' InternetMessageId, and the
// e-mail's Message-ID), so a retry after a crash or a timeout finds the item the earlier attempt made. Transient failures are retried with bounded exponential back-off until
// the entry's OfflineImMaxAge ends; then the entry is `failed`, with its reason, never dropped.
// Entries are taken with a lease (spool.ts, claimDue): on PostgreSQL the workers of every node take
// due entries side by side, none waiting for another, and one that dies mid-round leaves its
// entries to the others once the lease ends.

import type { Logger } from '../observability/logger.ts';
import { recordTrace } from '../observability/trace.ts';
import type { DeliveryItem, DeliveryOutcome, MailboxConnector, SmtpRoutes } from '../mailbox/index.ts';
import { CONVERSATION_CLASS, MailboxError, MISSED_CLASS, NOTE_CLASS, PartnerMailConnector } from '../mailbox/index.ts';
import { hostname } from 'node:os';
import { randomBase32 } from '../random-id.ts';
import type { Sql } from '../storage/index.ts';
import type { MailboxRouting } from './connectors.ts';
import { claimDue, entryMessages, markDelivered, markFailed, nextDueAt, recordItemIds, recoverInterrupted, scheduleRetry } from './spool.ts';
import type { Lease, SpoolEntry } from './spool.ts';
import { renderTranscript } from './transcript.ts';

export interface RetryPolicy {
  /** the wait after the first failed attempt, ms; it doubles with each further one */
  baseMs: number;
  /** the longest wait between attempts, ms */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 5_000, maxMs: 300_000 };

export interface SpoolWorkerOptions {
  sql: Sql;
  logger: Logger;
  /** the SIP domain: the right-hand side of the items' InternetMessageId */
  domain: string;
  routing: MailboxRouting;
  /**
   * The outbound SMTP routes (config smtpRoutes, as SmtpOutbound sends by them): a message to a
   * partner's user whose domain has no route is refused before its 202 (OfflineService.accept),
   * and an email entry is queued only for a domain with a route (else it fails with the reason).
   * Absent: not known here; every e-mail is queued, and SmtpOutbound fails one it has no route for
   * (the entry's trace shows mail-failed).
   */
  smtpRoutes?: SmtpRoutes;
  /** where email entries go; default: the outbox (PartnerMailConnector) over the database and smtpRoutes */
  partnerMail?: MailboxConnector;
  /** a user's display name; null or '' when there is none */
  displayName(address: string): Promise<string | null>;
  retry: RetryPolicy;
  /** entries taken per round */
  deliveryBatch: number;
  /**
   * how long a round may hold the entries it took, ms (default DEFAULT_LEASE_MS): past it, another
   * worker may take them again (the items are found, not made twice), so it must exceed the longest
   * delivery the connectors allow
   */
  leaseMs?: number;
  /**
   * this node's name, the same across its restarts (default: the host name): its leases carry it,
   * so after a crash it takes back its own leases at once instead of waiting for them to end, while
   * other nodes' leases are left to their lease time. Two nodes must not share one.
   */
  node?: string;
  /** IANA time zone of the transcript's times */
  timeZone: string;
  now?: () => number;
  /** the recipient's Missed Conversation now exists (message-summary notifications hang here; not called for email and note entries) */
  onDelivered?(entry: SpoolEntry): void;
  /** the entry is `delivered` (both items made, committed): what it held of the quotas is free */
  onEntryDelivered?(entry: SpoolEntry): void;
  /** what /metrics counts of the deliveries (src/observability/metrics.ts implements it) */
  stats?: DeliveryStats;
}

/** One batch handed to a connector: its items that succeeded and failed, and how long it took. */
export interface DeliveryStats {
  batch(connector: string, succeeded: number, failed: number, seconds: number): void;
}

/** Errors that retrying will not cure: the entry fails at once and waits for an administrator. */
const PERMANENT = new Set(['REMOTE_REFUSED', 'MAILBOX_NOT_FOUND', 'INVALID_REQUEST', 'ACCESS_DENIED', 'FOLDER_NOT_FOUND']);

/** The default lease of a round's entries, ms. */
export const DEFAULT_LEASE_MS = 120_000;

/** How often an idle worker looks for entries made due by another process (`parley spooler retry`). */
const IDLE_POLL_MS = 1_000;

/** The name of the partner mail connector in the trace and /metrics. */
const PARTNER_MAIL = 'smtp';

interface Delivery {
  entry: SpoolEntry;
  role: 'recipient' | 'sender';
  connectorName: string;
  connector: MailboxConnector;
  item: DeliveryItem;
}

interface EntryOutcome {
  recipientItemId?: string;
  recipientCreated?: boolean;
  senderItemId?: string;
  /** the first failure of the entry's deliveries */
  /** retryAt: the earliest next attempt a remote server asked for (Retry-After), epoch ms */
  error?: { message: string; permanent: boolean; role: string; connector: string; retryAt?: number };
}

export class SpoolWorker {
  readonly #o: SpoolWorkerOptions;
  readonly #now: () => number;
  #partnerMail: MailboxConnector | undefined;
  /** this worker's leases: unique among the workers of every node */
  readonly #lease: Lease;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** when the armed timer fires */
  #timerAt = Infinity;
  #round: Promise<void> | undefined;
  #closed = true;

  constructor(opts: SpoolWorkerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#partnerMail = opts.partnerMail;
    this.#lease = { owner: `${leaseNode(opts.node ?? hostname())}/${process.pid}/${randomBase32(5)}`, ms: opts.leaseMs ?? DEFAULT_LEASE_MS };
  }

  /** The outbox's connector, made when an email entry first needs it. */
  #partnerMailConnector(): MailboxConnector {
    this.#partnerMail ??= new PartnerMailConnector({ sql: this.#o.sql, ...(this.#o.smtpRoutes !== undefined ? { routes: this.#o.smtpRoutes } : {}), now: this.#now });
    return this.#partnerMail;
  }

  /**
   * Puts entries a stop left `delivering` back in line, then starts the timer. On SQLite one process
   * owns the database: all of them were its own. On PostgreSQL, those whose lease has ended and
   * those this node held before it stopped (its name begins their owner): the others belong to
   * live workers of other nodes.
   */
  async start(): Promise<void> {
    const { sql, logger } = this.#o;
    const now = this.#now();
    const recovered = await sql.transaction(async (tx) => {
      const ids = await recoverInterrupted(tx, now, tx.engine === 'sqlite' ? Number.MAX_SAFE_INTEGER : now, `${this.#lease.owner.slice(0, this.#lease.owner.indexOf('/'))}/`);
      for (const id of ids) await recordTrace(tx, { traceId: id, callId: null, at: now, step: 'recovered', detail: { why: 'the server stopped while delivering it; delivering again (idempotent)' } });
      return ids;
    });
    if (recovered.length > 0) logger.warn({ entries: recovered }, '%d spool entries were interrupted by a stop; delivering them again', recovered.length);
    this.#closed = false;
    this.#schedule();
  }

  /** An entry falls due at `dueAt`: arm the timer earlier if it would fire later (no query per message). */
  kick(dueAt: number): void {
    if (this.#closed || this.#round !== undefined || dueAt >= this.#timerAt) return;
    this.#arm(Math.max(0, dueAt - this.#now()));
  }

  /** Stops the timer and waits for the round in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    await this.#round;
  }

  #schedule(): void {
    if (this.#closed) return;
    nextDueAt(this.#o.sql).then(
      (due) => {
        if (this.#closed || this.#round !== undefined) return;
        this.#arm(due === undefined ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(0, due - this.#now())));
      },
      (err: unknown) => {
        this.#o.logger.error({ err }, 'could not read when the next spool entry is due; looking again shortly');
        if (!this.#closed && this.#round === undefined) this.#arm(IDLE_POLL_MS);
      },
    );
  }

  #arm(wait: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = this.#now() + wait;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#round = this.#drain()
        .catch((err: unknown) => this.#o.logger.error({ err }, 'spool round failed; trying again shortly'))
        .finally(() => {
          this.#round = undefined;
          this.#schedule();
        });
    }, wait);
  }

  /** Rounds until no entry is due. */
  async #drain(): Promise<void> {
    while (!this.#closed && (await this.runOnce()) === this.#o.deliveryBatch);
  }

  /** One round: claims up to deliveryBatch due entries, delivers them, records the outcomes. Returns how many. */
  async runOnce(): Promise<number> {
    const { sql } = this.#o;
    const started = this.#now();
    // read committed: the entries are locked by SKIP LOCKED on PostgreSQL, not serialised
    const entries = await sql.transaction(
      async (tx) => {
        const claimed = await claimDue(tx, started, this.#o.deliveryBatch, this.#lease);
        for (const e of claimed) await recordTrace(tx, { traceId: e.id, callId: null, at: started, step: 'picked-up', detail: { attempt: e.attempts, messages: e.messageCount, worker: this.#lease.owner } });
        return claimed;
      },
      { isolation: 'read committed' },
    );
    if (entries.length === 0) return 0;

    const outcomes = new Map<string, EntryOutcome>(entries.map((e) => [e.id, {}]));
    const deliveries: Delivery[] = [];
    for (const entry of entries) {
      try {
        deliveries.push(...(await this.#deliveriesOf(entry)));
      } catch (err) {
        // a bug or corrupt entry: fail it visibly rather than retry forever
        (outcomes.get(entry.id) as EntryOutcome).error = { message: `cannot build the items: ${messageOf(err)}`, permanent: true, role: 'render', connector: '-' };
      }
    }
    await this.#deliverAll(deliveries, outcomes);
    const finished = this.#now();
    // each outcome is written under this worker's lease only (read committed: every row written is
    // one it holds); what is logged and told is done once the transaction is committed
    const settled = await sql.transaction(
      async (tx) => {
        const results: Settled[] = [];
        for (const entry of entries) results.push(await this.#settle(tx, entry, outcomes.get(entry.id) as EntryOutcome, finished));
        return results;
      },
      { isolation: 'read committed' },
    );
    const delivered: SpoolEntry[] = [];
    entries.forEach((entry, i) => {
      const result = settled[i] as Settled;
      if (result.lost) {
        this.#o.logger.warn({ entry: entry.id, lease: this.#lease.owner }, 'spool entry %s was taken by another worker after this one\'s lease ended; its outcome is theirs to record', entry.id);
        return;
      }
      result.log();
      if (result.delivered) delivered.push(entry);
      // a Missed Conversation changes the message-summary counts; an e-mail or an Inbox note does not
      if ((entry.kind === 'offline' || entry.kind === 'unread') && (outcomes.get(entry.id) as EntryOutcome).recipientItemId !== undefined) this.#o.onDelivered?.(entry);
    });
    for (const entry of delivered) this.#o.onEntryDelivered?.(entry);
    this.#o.logger.debug({ entries: entries.length, delivered: delivered.length, ms: finished - started }, 'spool round');
    return entries.length;
  }

  /**
   * The items an entry still needs: for an offline or unread entry the recipient's Missed
   * Conversation and the sender's copy; for a history entry its owner's Conversation item; for an
   * email entry the e-mail to the partner's user and the sender's copy; for a note entry the
   * recipient's Inbox note (its sender is a partner's user, with no mailbox here).
   */
  async #deliveriesOf(entry: SpoolEntry): Promise<Delivery[]> {
    const { sql, domain } = this.#o;
    const messages = await entryMessages(sql, entry.id);
    const sender = { name: (await this.#o.displayName(entry.sender)) ?? '', address: entry.sender };
    const recipient = { name: (await this.#o.displayName(entry.recipient)) ?? '', address: entry.recipient };
    const transcript = renderTranscript({
      sender,
      recipient,
      messages: messages.map((m) => ({ from: m.sender === entry.recipient ? recipient : sender, receivedAt: new Date(m.receivedAt), contentType: m.contentType, body: m.body })),
      // an e-mail's transcript (and the sender's copy of it) says how it went
      notes: entry.kind === 'email' ? [...entry.notes, `Sent by e-mail to ${entry.recipient}, who was offline.`] : entry.notes,
      timeZone: this.#o.timeZone,
    });
    const mailer = (p: { name: string; address: string }) => ({ name: p.name || p.address, address: p.address });
    const common = {
      folder: 'conversationhistory' as const,
      internetMessageId: `<${entry.id}@${domain}>`,
      from: mailer(sender),
      to: [mailer(recipient)],
      bodyHtml: transcript.html,
      bodyText: transcript.text,
      sentAt: new Date(messages[0]?.receivedAt ?? entry.createdAt),
    };
    const out: Delivery[] = [];
    if (entry.kind === 'history') {
      // the owner's own record: From is whoever opened the conversation
      const opener = messages[0]?.sender === entry.recipient ? recipient : sender;
      const other = opener === sender ? recipient : sender;
      if (entry.senderItemId === null) {
        out.push(this.#delivery(entry, 'sender', { ...common, from: mailer(opener), to: [mailer(other)], mailbox: entry.sender, itemClass: CONVERSATION_CLASS, subject: `Conversation with ${recipient.name || recipient.address}`, isRead: true }));
      }
      return out;
    }
    if (entry.recipientItemId === null) {
      const recipientItem = { ...common, mailbox: entry.recipient, isRead: false };
      if (entry.kind === 'email') {
        // an ordinary e-mail from the sender's address: its display name when known, no made-up one
        const from = sender.name === '' ? { address: sender.address } : { name: sender.name, address: sender.address };
        const to = recipient.name === '' ? { address: recipient.address } : { name: recipient.name, address: recipient.address };
        const item: DeliveryItem = { ...recipientItem, folder: 'inbox', itemClass: NOTE_CLASS, from, to: [to], subject: `Conversation with ${sender.name || sender.address}`, traceId: entry.id };
        out.push({ entry, role: 'recipient', connectorName: PARTNER_MAIL, connector: this.#partnerMailConnector(), item });
      } else if (entry.kind === 'note') {
        out.push(this.#delivery(entry, 'recipient', { ...recipientItem, folder: 'inbox', itemClass: NOTE_CLASS, subject: `Message from ${sender.name || sender.address} while you were offline` }));
      } else {
        out.push(this.#delivery(entry, 'recipient', { ...recipientItem, itemClass: MISSED_CLASS, subject: `Missed conversation with ${sender.name || sender.address}` }));
      }
    }
    // a partner's user has no Conversation History here
    if (entry.senderItemId === null && entry.kind !== 'note') {
      out.push(this.#delivery(entry, 'sender', { ...common, mailbox: entry.sender, itemClass: CONVERSATION_CLASS, subject: `Conversation with ${recipient.name || recipient.address}`, isRead: true }));
    }
    return out;
  }

  #delivery(entry: SpoolEntry, role: Delivery['role'], item: DeliveryItem): Delivery {
    const { name, connector } = this.#o.routing.connectorFor(item.mailbox);
    return { entry, role, connectorName: name, connector, item };
  }

  /** Hands the items to their connectors: a batch per connector, in parallel across connectors. */
  async #deliverAll(deliveries: readonly Delivery[], outcomes: Map<string, EntryOutcome>): Promise<void> {
    const byConnector = new Map<MailboxConnector, Delivery[]>();
    for (const d of deliveries) {
      const list = byConnector.get(d.connector) ?? [];
      list.push(d);
      byConnector.set(d.connector, list);
    }
    await Promise.all(
      [...byConnector].map(async ([connector, list]) => {
        const started = performance.now();
        const results = await deliverBatch(connector, list.map((d) => d.item));
        if (this.#o.stats !== undefined) {
          const succeeded = results.filter((r) => r.ok).length;
          this.#o.stats.batch(list[0]?.connectorName ?? '-', succeeded, results.length - succeeded, (performance.now() - started) / 1000);
        }
        list.forEach((d, i) => record(outcomes.get(d.entry.id) as EntryOutcome, d, results[i] as DeliveryOutcome));
      }),
    );
  }

  /**
   * Writes an entry's outcome, inside the round's transaction, if this worker still holds its
   * lease; what is to be logged is returned, to be done once it is committed.
   */
  async #settle(tx: Sql, entry: SpoolEntry, outcome: EntryOutcome, now: number): Promise<Settled> {
    const { retry, logger } = this.#o;
    const owner = this.#lease.owner;
    const error = outcome.error;
    const reason = error === undefined ? '' : `${error.role === 'render' ? '' : `${error.role} mailbox (${error.connector}): `}${error.message}`;
    const failed = error !== undefined && (error.permanent || now >= entry.expiresAt);
    const why = error?.permanent === true ? reason : `still failing when OfflineImMaxAge ended, after ${entry.attempts} attempts: ${reason}`;
    // the back-off, or later when the mailbox server asked for that (Retry-After), never past the entry's end
    const backoff = now + Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(30, entry.attempts - 1));
    const retryAt = Math.min(Math.max(backoff, error?.retryAt ?? 0), entry.expiresAt);
    // the state first: written only while this worker holds the lease
    const held = error === undefined ? await markDelivered(tx, entry.id, now, owner) : failed ? await markFailed(tx, entry.id, now, why, owner) : await scheduleRetry(tx, entry.id, retryAt, reason, owner);
    if (!held) return { lost: true, delivered: false, log: () => undefined };
    const trace = (step: string, detail: Record<string, unknown>) => recordTrace(tx, { traceId: entry.id, callId: null, at: now, step, detail });
    await recordItemIds(tx, entry.id, {
      ...(outcome.recipientItemId !== undefined ? { recipientItemId: outcome.recipientItemId } : {}),
      ...(outcome.senderItemId !== undefined ? { senderItemId: outcome.senderItemId } : {}),
    });
    if (outcome.recipientItemId !== undefined) {
      if (entry.kind === 'email') await trace('delivered', { to: entry.recipient, kind: 'email', via: 'smtp outbox', outbox: outcome.recipientItemId, created: outcome.recipientCreated === true });
      else await trace('delivered', { to: entry.recipient, mailbox: 'recipient', ...(entry.kind === 'note' ? { kind: 'note', folder: 'inbox' } : {}), itemId: outcome.recipientItemId, created: outcome.recipientCreated === true });
    }
    if (outcome.senderItemId !== undefined) await trace('delivered', { to: entry.sender, mailbox: entry.kind === 'history' ? 'owner' : 'sender', itemId: outcome.senderItemId });
    if (error === undefined) {
      return {
        lost: false,
        delivered: true,
        log: () => {
          if (entry.kind === 'history') logger.info({ entry: entry.id, owner: entry.sender, peer: entry.recipient, conversation: entry.conversationId, messages: entry.messageCount }, 'conversation history %s delivered to %s', entry.id, entry.sender);
          else if (entry.kind === 'email') logger.info({ entry: entry.id, from: entry.sender, to: entry.recipient, messages: entry.messageCount, outbox: entry.recipientItemId ?? outcome.recipientItemId }, 'offline conversation %s queued as e-mail to %s', entry.id, entry.recipient);
          else if (entry.kind === 'note') logger.info({ entry: entry.id, from: entry.sender, to: entry.recipient, messages: entry.messageCount }, 'offline messages %s delivered to the Inbox of %s', entry.id, entry.recipient);
          else logger.info({ entry: entry.id, from: entry.sender, to: entry.recipient, messages: entry.messageCount }, 'missed conversation %s delivered to %s', entry.id, entry.recipient);
        },
      };
    }
    if (failed) {
      await trace('failed', { reason: why, attempts: entry.attempts });
      return { lost: false, delivered: false, log: () => logger.warn({ entry: entry.id, from: entry.sender, to: entry.recipient, reason: why }, 'spool entry %s failed: %s', entry.id, why) };
    }
    await trace('retry-scheduled', { reason, attempt: entry.attempts, nextAttemptAt: new Date(retryAt).toISOString() });
    return { lost: false, delivered: false, log: () => logger.info({ entry: entry.id, reason, nextAttemptAt: retryAt }, 'delivery of spool entry %s failed; retrying in %d s', entry.id, Math.round((retryAt - now) / 1000)) };
  }
}

/** What settling an entry did: nothing when another worker holds it now (`lost`), else what to log once committed. */
interface Settled {
  lost: boolean;
  delivered: boolean;
  log(): void;
}

async function deliverBatch(connector: MailboxConnector, items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
  if (connector.deliverMany) {
    try {
      return await connector.deliverMany(items);
    } catch (error) {
      return items.map(() => ({ ok: false, error }));
    }
  }
  const settled = await Promise.allSettled(items.map((item) => connector.deliver(item)));
  return settled.map((s) => (s.status === 'fulfilled' ? { ok: true, result: s.value } : { ok: false, error: s.reason as unknown }));
}

function record(outcome: EntryOutcome, d: Delivery, result: DeliveryOutcome): void {
  if (result.ok) {
    if (d.role === 'recipient') {
      outcome.recipientItemId = result.result.itemId;
      outcome.recipientCreated = result.result.created;
    } else outcome.senderItemId = result.result.itemId;
    return;
  }
  if (outcome.error !== undefined) return;
  const permanent = result.error instanceof MailboxError && PERMANENT.has(result.error.code);
  const retryAt = result.error instanceof MailboxError ? result.error.retryAt : undefined;
  outcome.error = { message: messageOf(result.error), permanent, role: d.role, connector: d.connectorName, ...(retryAt !== undefined ? { retryAt } : {}) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A node's name as the first part of a lease owner: no `/` (the separator), at most 200 characters. */
function leaseNode(node: string): string {
  return node.replace(/[/%_\\]/g, '-').slice(0, 200);
}
