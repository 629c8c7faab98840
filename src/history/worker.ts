// The history worker: what Conversation History does once a conversation's time has come. A round
// (at most every second, and at once after a sign-out) is ONE transaction on the process's handle:
//
// 1. unread → missed: relayed messages whose display notification (RFC 5438) did not come back by
//    their due time become, per conversation and direction, one 'unread' spool entry (the
//    recipient's Missed Conversation and the sender's copy, exactly as offline IM), when the
//    SENDER's offline gate allows it; they are then no longer part of the history item;
// 2. close: open conversations whose end has passed and that await no display: each participant
//    whose OWN EnableIMAutoArchiving is True gets a 'history' spool entry with the relayed messages
//    (both directions, in order) and notes on what is in missed conversations instead.
//
// A restart finds open conversations in the database; closing is one transaction and spool
// delivery is idempotent (the entry id is the item's InternetMessageId), so a crash never makes
// two items of one conversation.

import type { Logger } from '../observability/logger.ts';
import { recordTrace } from '../observability/trace.ts';
import { offlineGate, spoolHistoryEntry, spoolMessages } from '../offline/index.ts';
import type { EffectiveSettings } from '../settings/index.ts';
import type { Sql } from '../storage/index.ts';
import { acrossOrganisations, settingsOf } from './commit.ts';
import type { ConversationRow, HistoryMessage } from './repository.ts';
import { closable, conversationMessages, dueUnread, endForSignOut, forgetClosed, hasDueWork, hasSignOutWork, markClosed, markMissed, stopAwaitingDisplay } from './repository.ts';

/** How long closed conversations stay listed (`parley history list`), ms. */
export const HISTORY_KEEP_CLOSED_MS = 7 * 24 * 3600 * 1000;
const ROUND_LIMIT = 200;
/** How often old closed conversations are forgotten, ms. */
const FORGET_EVERY_MS = 60_000;

export interface HistoryWorkerOptions {
  sql: Sql;
  logger: Logger;
  /** a user's display name; null or '' when there is none */
  displayName(address: string): Promise<string | null>;
  now?: () => number;
  /** how often a round runs, ms (at most 1000) */
  pollMs?: number;
  /** spool entries were made in the round just committed, the earliest due at `pickupAt` (kick the spool worker) */
  onSpooled?(pickupAt: number): void;
}

/** What a round did. */
export interface RoundResult {
  /** unread messages turned missed, and the entries made for them */
  missed: number;
  /** conversations closed, and the history entries made for them */
  closed: number;
  entries: number;
}

export class HistoryWorker {
  readonly #o: HistoryWorkerOptions;
  readonly #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #signedOut = new Set<string>();
  #forgotAt = -Infinity;
  /** the round in progress; `#again`: another was asked for meanwhile */
  #round: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly totals = { missed: 0, closed: 0, entries: 0, failedRounds: 0 };

  constructor(options: HistoryWorkerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), Math.min(this.#o.pollMs ?? 1000, 1000));
    this.#timer.unref();
    void this.tick();
  }

  /** Stops the rounds; resolves once the one in progress has ended. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    await this.#round;
  }

  /** `address` signed out of every device: taken into account in a round now (resolved once it has run). */
  signedOut(address: string): Promise<void> {
    this.#signedOut.add(address);
    return this.tick();
  }

  /**
   * Runs a round, logging (not throwing) a failure: the next round tries again. One round at a
   * time: asked for while one runs, another follows it. Resolves once the round asked for has run.
   */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const running = this.#round;
    if (running !== undefined) {
      this.#again = true;
      // the round that follows starts as the running one ends
      return running.then(() => this.#round);
    }
    const round = (this.#round = this.round(this.#now())
      .then(
        () => undefined,
        (err: unknown) => {
          this.totals.failedRounds++;
          this.#o.logger.warn({ err }, 'Conversation History round failed; trying again in a second');
        },
      )
      .finally(() => {
        this.#round = undefined;
        if (this.#again) {
          this.#again = false;
          void this.tick();
        }
      }));
    return round;
  }

  async round(now: number): Promise<RoundResult> {
    const { sql } = this.#o;
    // most rounds have nothing to do: a read, not a write transaction that would take the lock the recorder's and the spool's writers need
    const forget = now - this.#forgotAt >= FORGET_EVERY_MS;
    // a sign-out with nothing to end takes no write transaction (it would wait for the writers' lock)
    const signedOut: string[] = [];
    for (const address of [...this.#signedOut]) {
      if (await hasSignOutWork(sql, address, now)) signedOut.push(address);
      else this.#signedOut.delete(address);
    }
    if (signedOut.length === 0 && !forget && !(await hasDueWork(sql, now))) return { missed: 0, closed: 0, entries: 0 };
    if (forget) this.#forgotAt = now;
    // the display names the notes may need, found before the transaction (a lookup may use the database)
    const names = await this.#names(now);
    let earliest = Infinity;
    const result = await sql.transaction(async (tx) => {
      // on PostgreSQL a transaction may run again: what it finds starts afresh
      earliest = Infinity;
      const cache = new Map<string, EffectiveSettings>();
      for (const address of signedOut) {
        for (const id of await endForSignOut(tx, address, now)) await recordTrace(tx, { traceId: id, callId: id, at: now, step: 'signed-out', detail: { who: address } });
      }
      const missed = await this.#unread(tx, now, cache, (at) => (earliest = Math.min(earliest, at)));
      let closed = 0;
      let entries = 0;
      for (const c of await closable(tx, now, ROUND_LIMIT)) {
        entries += await this.#close(tx, c, now, cache, names);
        closed++;
      }
      if (entries > 0) earliest = Math.min(earliest, now);
      if (forget) await forgetClosed(tx, now - HISTORY_KEEP_CLOSED_MS, ROUND_LIMIT);
      return { missed, closed, entries };
    });
    for (const address of signedOut) this.#signedOut.delete(address);
    this.totals.missed += result.missed;
    this.totals.closed += result.closed;
    this.totals.entries += result.entries;
    if (earliest !== Infinity) this.#o.onSpooled?.(earliest);
    return result;
  }

  /** The display names of the participants of the conversations a round at `now` may close. */
  async #names(now: number): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const c of await closable(this.#o.sql, now, ROUND_LIMIT)) {
      for (const address of [c.userA, c.userB]) {
        if (!names.has(address)) names.set(address, (await this.#o.displayName(address)) || address);
      }
    }
    return names;
  }

  /** Step 1: per conversation and direction, the unread messages in one 'unread' spool entry. */
  async #unread(tx: Sql, now: number, cache: Map<string, EffectiveSettings>, spooled: (pickupAt: number) => void): Promise<number> {
    const groups = new Map<string, HistoryMessage[]>();
    for (const m of await dueUnread(tx, now, ROUND_LIMIT)) {
      const key = `${m.conversationId} ${m.sender} ${m.recipient}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [m]);
      else group.push(m);
    }
    let count = 0;
    for (const group of groups.values()) {
      const first = group[0] as HistoryMessage;
      const settings = await settingsOf(tx, cache, first.sender);
      // a partner organisation's user on either side: the commit tracks no display there, and a
      // message that was nevertheless due (a database from before) has no mailbox here to go to
      const partner = acrossOrganisations(first.sender, first.recipient);
      const gate = settings === null || partner ? undefined : offlineGate(first.recipient, settings);
      if (settings === null || gate === undefined || !gate.allowed) {
        // the sender may not leave messages in mailboxes: the messages stay in the transcript
        for (const m of group) await stopAwaitingDisplay(tx, m.conversationId, m.seq);
        await recordTrace(tx, { traceId: first.conversationId, callId: first.callId, at: now, step: 'unread-kept', detail: { from: first.sender, to: first.recipient, messages: group.length, reason: gate !== undefined && !gate.allowed ? gate.warning : partner ? 'a conversation with another organisation: no missed conversation' : `${first.sender} is no longer a user` } });
        continue;
      }
      const receipts = await spoolMessages(
        tx,
        group.map((m) => ({
          kind: 'unread' as const,
          pickupFrom: now,
          sender: m.sender,
          recipient: m.recipient,
          callId: m.callId,
          contentType: m.contentType,
          body: m.body ?? new Uint8Array(),
          receivedAt: m.receivedAt,
          // at least 1 ms: with no pickup delay an entry is due at once and the next message would not join it (one item per group)
          pickupDelayMs: Math.max(1, settings.OfflineImPickupDelaySeconds * 1000),
          maxAgeMs: settings.OfflineImMaxAgeSeconds * 1000,
          why: `not displayed within UnreadMissedTimeout (${settings.UnreadMissedTimeoutSeconds} s)`,
          gate: { EnableOfflineIm: settings.sources.ImConfiguration, EnableIMAutoArchiving: settings.sources.ClientPolicy },
        })),
      );
      const entryIds = new Set<string>();
      for (const [i, m] of group.entries()) {
        const r = receipts[i];
        if (r === undefined) continue;
        await markMissed(tx, m.conversationId, m.seq, r.entryId);
        entryIds.add(r.entryId);
        spooled(r.pickupAt);
      }
      // under the entry's trace id with the conversation id as its Call-ID: `parley trace cv-…` follows into the entry
      for (const entry of entryIds) await recordTrace(tx, { traceId: entry, callId: first.conversationId, at: now, step: 'missed-unread', detail: { from: first.sender, to: first.recipient, messages: group.filter((_, i) => receipts[i]?.entryId === entry).length } });
      count += group.length;
    }
    return count;
  }

  /** Step 2: one 'history' entry per archiving participant; returns how many entries were made. */
  async #close(tx: Sql, c: ConversationRow, now: number, cache: Map<string, EffectiveSettings>, names: ReadonlyMap<string, string>): Promise<number> {
    const messages = await conversationMessages(tx, c.id);
    const relayed = messages.filter((m) => m.kind === 'relayed' && m.body !== null);
    const entries: Array<{ owner: string; entry: string }> = [];
    if (relayed.length > 0) {
      const notes = this.#notes(messages, acrossOrganisations(c.userA, c.userB), names);
      for (const [owner, peer] of [[c.userA, c.userB], [c.userB, c.userA]] as const) {
        // a partner organisation's user (no settings here) gets nothing: their history is their server's
        const settings = await settingsOf(tx, cache, owner);
        if (settings === null || !settings.EnableIMAutoArchiving) continue;
        const entry = await spoolHistoryEntry(tx, {
          owner,
          peer,
          conversationId: c.id,
          createdAt: now,
          maxAgeMs: settings.OfflineImMaxAgeSeconds * 1000,
          messages: relayed.map((m) => ({ sender: m.sender, callId: m.callId, receivedAt: m.receivedAt, contentType: m.contentType, body: m.body as Uint8Array })),
          notes,
        });
        entries.push({ owner, entry });
      }
    }
    const reason = c.closeReason ?? 'idle';
    await markClosed(tx, c.id, now, reason, entries);
    await recordTrace(tx, { traceId: c.id, callId: c.id, at: now, step: 'closed', detail: { reason, messages: messages.length, relayed: relayed.length, entries: entries.map((e) => `${e.owner}=${e.entry}`).join(' ') || 'none' } });
    return entries.length;
  }

  /**
   * "2 messages Alice sent while Bob was offline are in the missed conversation", per direction and
   * kind. With a partner organisation's user (`partner`), an offline message went as an e-mail
   * (issue 15): to the partner's user from the local one, to the local user's Inbox the other way.
   */
  #notes(messages: readonly HistoryMessage[], partner: boolean, names: ReadonlyMap<string, string>): string[] {
    const counts = new Map<string, { sender: string; recipient: string; kind: 'offline' | 'missed'; n: number }>();
    for (const m of messages) {
      if (m.kind === 'relayed') continue;
      const key = `${m.kind} ${m.sender} ${m.recipient}`;
      const c = counts.get(key) ?? { sender: m.sender, recipient: m.recipient, kind: m.kind, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    // a conversation that became closable after the names were read: its addresses
    const name = (address: string) => names.get(address) ?? address;
    return [...counts.values()].map((c) => {
      const what = c.n === 1 ? `1 message ${name(c.sender)} sent` : `${c.n} messages ${name(c.sender)} sent`;
      const why = c.kind === 'offline' ? `while ${name(c.recipient)} was offline` : `that ${name(c.recipient)} did not read`;
      if (partner && c.kind === 'offline') return `${what} ${why} ${c.n === 1 ? 'was' : 'were'} sent to ${name(c.recipient)} as an e-mail`;
      return `${what} ${why} ${c.n === 1 ? 'is' : 'are'} in the missed conversation`;
    });
  }
}
