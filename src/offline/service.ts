// The offline-IM pipeline of one server: the router hands it a MESSAGE whose recipient is offline
// (OfflineHandoff); it gates, spools durably (group commit) and answers; the worker delivers later.
//
//   const offline = new OfflineService({ sql, logger, domain, routing, … });
//   ctx.offline = offline;              // the router's hand-off
//   await offline.start();              // recovers interrupted deliveries, loads the quotas, starts the worker
//   closers.push(() => offline.close());

import { noRouteReason, routeFor } from '../mailbox/index.ts';
import { effectiveSettings } from '../settings/index.ts';
import { offlineGate } from './gate.ts';
import { GroupCommit } from './group-commit.ts';
import { noticeKind, noticeRefusal } from './notices.ts';
import { DEFAULT_SPOOL_QUOTA, PerMinute, QUOTA_KINDS, SpoolQuota } from './quota.ts';
import type { MailboxCheck, QuotaReason, SpoolQuotaLimits } from './quota.ts';
import { forgetReleases, lastRelease, releasesAfter, undeliveredTotals } from './quota-store.ts';
import { openSpoolWriter } from './spool-writer.ts';
import type { SpoolJob, SpoolResult, SpoolWriter } from './spool-writer.ts';
import type { MessageKind } from './spool.ts';
import { SpoolWorker } from './worker.ts';
import type { SpoolWorkerOptions } from './worker.ts';

/** A MESSAGE the router could not hand to any registration of its recipient. */
export interface OfflineMessage {
  sender: string;
  recipient: string;
  callId: string;
  /** the Content-Type header value, undefined when there is none */
  contentType: string | undefined;
  body: Uint8Array;
  /** for the trace: "not signed in", or each registration's failure */
  why: string;
  /**
   * What the entry becomes (issue 15, the reference document's rule for other organisations):
   *   - `missed` (default): a Missed Conversation in the local recipient's mailbox;
   *   - `email`: the recipient is a partner organisation's user (`dave@partner.example`): the
   *     conversation goes as an ordinary e-mail from the sender's address through outbound SMTP,
   *     and the sender's Conversation History copy as usual; the sender's settings decide;
   *   - `inbox-note`: the sender is a partner's user: a plain IPM.Note in the local recipient's
   *     Inbox ("Message from … while you were offline"), never a Missed Conversation.
   */
  delivery?: 'missed' | 'email' | 'inbox-note';
}

export type OfflineDecision =
  | { kind: 'spooled'; entryId: string; seq: number; joined: boolean; pickupAt: number }
  /**
   * not kept: the warning says why, for the sender (480); `quota` names the limit when a quota
   * refused, `retryAfter` the seconds until a retry can succeed when that is known
   */
  | { kind: 'refused'; warning: string; quota?: QuotaReason; retryAfter?: number };

/** What the router needs of the pipeline. */
export interface OfflineHandoff {
  accept(message: OfflineMessage): Promise<OfflineDecision>;
}

/** The worker's options, the group commit's and the quotas'. */
export interface OfflineServiceOptions extends SpoolWorkerOptions {
  /** group commit: how long a batch gathers, ms, and its largest size */
  commitWindowMs: number;
  commitMaxBatch: number;
  /** per-sender and per-recipient limits of the spool (quota.ts); default DEFAULT_SPOOL_QUOTA */
  quota?: SpoolQuotaLimits;
  /**
   * Other servers accept into and deliver from the same spool (the nodes of a cluster). A node's
   * counting then misses what the others admit and counts deliveries of what it never admitted, so
   * the tallies are read again from the spool every second instead (see reconcile()).
   */
  shared?: boolean;
}

/** How often the server looks for quota a purge by another process (`parley spooler purge`) gave back. */
const RELEASE_POLL_MS = 1_000;
/**
 * Refusals traced one by one per sender and minute. A refused message costs a trace row, not its
 * body; one refused again and again (a flood) would still grow the trace without end, so past
 * this only its count grows (`parley spooler quota`).
 */
const REFUSALS_TRACED_PER_MINUTE = 60;

export class OfflineService implements OfflineHandoff {
  readonly worker: SpoolWorker;
  /** the spool's tallies and limits, and its refusals per reason (what a /metrics endpoint reads) */
  readonly quota: SpoolQuota;
  readonly #o: OfflineServiceOptions;
  readonly #now: () => number;
  readonly #writer: SpoolWriter;
  readonly #commits: GroupCommit<SpoolJob, SpoolResult>;
  readonly #mailboxCheck: MailboxCheck;
  readonly #traced = new PerMinute(REFUSALS_TRACED_PER_MINUTE);
  #releasesSeen = 0;
  /** admitted and not committed yet (shared spool): counted on top of what the spool holds */
  readonly #uncommitted = new Set<{ sender: string; recipient: string; messages: number; bytes: number }>();
  #releasePoll: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(opts: OfflineServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.quota = new SpoolQuota(opts.quota ?? DEFAULT_SPOOL_QUOTA);
    // what an entry held is given back once it is delivered (a failed entry keeps it: still on disk)
    this.worker = new SpoolWorker({
      ...opts,
      now: this.#now,
      onEntryDelivered: (entry) => {
        // only the quotas' kinds were admitted against them (accept())
        if (QUOTA_KINDS.includes(entry.kind)) this.quota.release(entry.sender, entry.recipient, { messages: entry.messageCount, bytes: entry.bytes });
        opts.onEntryDelivered?.(entry);
      },
    });
    this.#mailboxCheck = (address, direction, pending) => opts.routing.connectorFor(address).connector.checkQuota?.(address, direction, pending);
    // a SQLite file is written by a thread of its own (spool-writer.ts); PostgreSQL and memory, from the loop
    this.#writer = openSpoolWriter(opts.sql);
    this.#commits = new GroupCommit<SpoolJob, SpoolResult>({
      windowMs: opts.commitWindowMs,
      maxBatch: opts.commitMaxBatch,
      commit: (jobs) => this.#writer.write(jobs),
    });
  }

  /** Loads the quotas' tallies from the spool, then starts the worker. */
  async start(): Promise<void> {
    const { totals, seen } = await this.#o.sql.transaction(async (tx) => {
      const totals = await undeliveredTotals(tx);
      // purges recorded before now are in the totals already
      const seen = await lastRelease(tx);
      await forgetReleases(tx, seen);
      return { totals, seen };
    });
    // closed while the totals were read: nothing to start
    if (this.#closed) return;
    this.quota.load(totals);
    this.#releasesSeen = seen;
    this.#releasePoll = setInterval(() => void (this.#o.shared === true ? this.reconcile() : this.applyReleases()), RELEASE_POLL_MS);
    this.#releasePoll.unref();
    await this.worker.start();
  }

  /** Whether the spool writer (its thread, with the database in a file) is running (readiness). */
  get writerRunning(): boolean {
    return this.#writer.running;
  }

  /** Commits the open group commit (its senders get their 202s), waits for the writer's last batch, stops the worker. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#releasePoll);
    await this.#commits.close();
    await this.#writer.close();
    await this.worker.close();
  }

  async accept(m: OfflineMessage): Promise<OfflineDecision> {
    const now = this.#now();
    const notice = noticeKind(m.contentType, m.body);
    if (notice !== undefined) return { kind: 'refused', warning: noticeRefusal(notice, m.recipient) };
    if (m.body.byteLength === 0) return { kind: 'refused', warning: `${m.recipient} is not signed in; an empty message is not kept for offline delivery` };

    const kind = kindOf(m.delivery);
    // whose settings decide: the local party's (a partner's user has none here)
    const party = kind === 'note' ? 'recipient' : 'sender';
    const local = party === 'sender' ? m.sender : m.recipient;
    const settings = await effectiveSettings(this.#o.sql, local);
    const gate = offlineGate(m.recipient, settings, party);
    if (!gate.allowed) {
      // the refusal is traced too, in the next batch; the sender need not wait for that write
      if (this.#traces(m.sender, now)) this.#record({ kind: 'trace', event: { traceId: null, callId: m.callId, at: now, step: 'gated', detail: { decision: 'refused', from: m.sender, to: m.recipient, ...(kind === 'offline' ? {} : { kind, settingsOf: local }), setting: gate.setting, reason: gate.warning } } });
      return { kind: 'refused', warning: gate.warning };
    }
    if (kind === 'email') {
      const domain = m.recipient.slice(m.recipient.lastIndexOf('@') + 1);
      // refused now rather than spooled for an e-mail that cannot leave (when the routes are known).
      // With MX routing (smtpRoutes.mx, on by default) every domain has a route: whether the DNS
      // knows its mail exchangers is found when the e-mail is sent, and a domain that takes no mail
      // fails the outbox entry then (the spool entry's trace shows mail-failed with the reason).
      if (this.#o.smtpRoutes !== undefined && routeFor(this.#o.smtpRoutes, domain) === undefined) {
        const warning = `${m.recipient} is offline and the message cannot go by e-mail: ${noRouteReason(domain)}`;
        if (this.#traces(m.sender, now)) this.#record({ kind: 'trace', event: { traceId: null, callId: m.callId, at: now, step: 'gated', detail: { decision: 'refused', from: m.sender, to: m.recipient, kind, reason: warning } } });
        return { kind: 'refused', warning };
      }
    }
    // the quotas: checked and the message counted in one synchronous step, before the 202; a
    // partner's user has no mailbox here to check (the e-mail's recipient, the note's sender)
    const bytes = m.body.byteLength;
    const foreign = kind === 'email' ? m.recipient : kind === 'note' ? m.sender : undefined;
    const mailboxCheck: MailboxCheck = foreign === undefined ? this.#mailboxCheck : (address, direction, pending) => (address === foreign ? undefined : this.#mailboxCheck(address, direction, pending));
    // the mailboxes' sizes are read first, so that the check and the count stay one synchronous step
    await Promise.all([m.sender, m.recipient].filter((a) => a !== foreign).map((a) => this.#o.routing.connectorFor(a).connector.loadQuota?.([a])));
    const refused = this.quota.admit({ sender: m.sender, recipient: m.recipient, bytes, now }, mailboxCheck);
    if (refused !== undefined) {
      if (this.#o.logger.isLevelEnabled('debug')) this.#o.logger.debug({ callId: m.callId, from: m.sender, to: m.recipient, reason: refused.reason }, 'offline message refused: %s', refused.setting);
      this.#record({
        kind: 'refused',
        event: this.#traces(m.sender, now) ? { traceId: null, callId: m.callId, at: now, step: 'refused', detail: { from: m.sender, to: m.recipient, bytes, quota: refused.reason, setting: refused.setting, reason: refused.warning } } : undefined,
        refusal: { address: refused.address, reason: refused.reason, at: now, peer: refused.address === m.sender ? m.recipient : m.sender, warning: refused.warning },
      });
      return { kind: 'refused', warning: refused.warning, quota: refused.reason, ...(refused.retryAfter !== undefined ? { retryAfter: refused.retryAfter } : {}) };
    }
    let receipt;
    const admitted = { sender: m.sender, recipient: m.recipient, messages: 1, bytes };
    if (this.#o.shared === true) this.#uncommitted.add(admitted);
    try {
      receipt = await this.#commits.submit({
        kind: 'spool',
        request: {
          sender: m.sender,
          recipient: m.recipient,
          callId: m.callId,
          contentType: m.contentType ?? 'text/plain',
          body: m.body,
          receivedAt: now,
          pickupDelayMs: settings.OfflineImPickupDelaySeconds * 1000,
          maxAgeMs: settings.OfflineImMaxAgeSeconds * 1000,
          why: m.why,
          gate: { EnableOfflineIm: settings.sources.ImConfiguration, EnableIMAutoArchiving: settings.sources.ClientPolicy, ...(party === 'recipient' ? { settingsOf: local } : {}) },
          kind,
        },
      });
    } catch (err) {
      // not stored (the router answers 500): it holds nothing
      this.quota.release(m.sender, m.recipient, { messages: 1, bytes });
      throw err;
    } finally {
      this.#uncommitted.delete(admitted);
    }
    if (receipt === null) throw new Error('the spool returned no receipt for a stored message');
    this.worker.kick(receipt.pickupAt);
    return { kind: 'spooled', ...receipt };
  }

  /** Whether a refusal of `sender`'s is traced row by row (REFUSALS_TRACED_PER_MINUTE). */
  #traces(sender: string, now: number): boolean {
    if (this.#traced.wait(sender, now) > 0) return false;
    this.#traced.take(sender, now);
    return true;
  }

  /** A refusal's trace row (and count), written with the next batch; the sender does not wait for it. */
  #record(job: SpoolJob): void {
    this.#commits.submit(job).catch((err: unknown) => this.#o.logger.warn({ err }, 'could not record a refusal in the trace'));
  }

  /**
   * A shared spool's tallies, read again (every second): what the spool holds undelivered, plus what
   * this node admitted and has not committed yet. What another node admitted counts within a second
   * of its commit, so the nodes together may pass a limit by what they admit in that second (and a
   * message committed while the totals were read is missing from them until the next read); purges
   * need no release records, the totals have them. Costs one grouped scan of the undelivered
   * entries per node and second.
   */
  async reconcile(): Promise<void> {
    try {
      const totals = await undeliveredTotals(this.#o.sql);
      if (this.#closed) return;
      this.quota.load([...totals, ...this.#uncommitted]);
    } catch (err) {
      this.#o.logger.warn({ err }, 'could not read the spool\'s totals for the quotas; trying again in a second');
    } finally {
      this.quota.prune(this.#now());
      this.#traced.prune(this.#now());
    }
  }

  /** Gives back what purges (by this process or `parley spooler purge` in another) freed; runs every second. */
  async applyReleases(): Promise<void> {
    try {
      const releases = await releasesAfter(this.#o.sql, this.#releasesSeen);
      if (releases.length === 0) return;
      for (const r of releases) this.quota.release(r.sender, r.recipient, r);
      // kept until the next start forgets them: deleting here would contend with the spool writer for the lock
      this.#releasesSeen = releases.at(-1)?.seq ?? this.#releasesSeen;
    } catch (err) {
      this.#o.logger.warn({ err }, 'could not read the spool releases; trying again in a second');
    } finally {
      this.quota.prune(this.#now());
      this.#traced.prune(this.#now());
    }
  }
}

/** The spool kind of a hand-off's delivery. */
function kindOf(delivery: OfflineMessage['delivery']): MessageKind {
  switch (delivery) {
    case 'email':
      return 'email';
    case 'inbox-note':
      return 'note';
    case 'missed':
    case undefined:
      return 'offline';
  }
}
