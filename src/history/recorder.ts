// The ConversationRecorder the router calls after each MESSAGE's answer went out (src/router/
// context.ts). record() only pushes to an array: the relay path pays for nothing else. A group
// commit writes what gathered at most every `commitWindowMs` (≤ 10 ms) in ONE transaction
// (commit.ts), on a thread with its own connection when the database is a SQLite file, so the SQL
// and the fsync stay off the thread that carries SIP (on PostgreSQL, from the loop on the pool). While a batch is being written, what arrives
// waits for the next one, which starts once that one is done and its first message has waited the
// window: a batch's fixed costs (the transaction, its fsync, the hand-offs to the thread and back,
// each waking a thread) are shared by all the window gathers, however fast the writer is. (Started
// as soon as the last was done, batches got smaller the faster the writer wrote: 17 messages at
// 4,800/s where the window gathers 48.)
//
// A crash loses what was recorded but not yet committed: at most the last window (and the batch
// being written). That is the price of never slowing a relayed message; everything older is kept.

import type { Logger } from '../observability/logger.ts';
import type { ConversationRecorder, RecordedMessage } from '../router/context.ts';
import type { BatchWriter, Sql } from '../storage/index.ts';
import { openBatchWriter } from '../storage/index.ts';
import { effectiveSettings, lastAuditId } from '../settings/index.ts';
import type { CommitSummary } from './commit.ts';
import { writeHistoryBatch } from './commit.ts';
import { classify } from './content.ts';

/** The longest commit window: the most a crash may lose, ms. */
export const MAX_COMMIT_WINDOW_MS = 10;
/** Users whose archiving the recorder remembers before it starts over (it is only a cache). */
const MAX_REMEMBERED = 20_000;
/** How long the recorder trusts what it read of users' archiving, ms: the most a change that bypassed the audit log goes unseen. */
const ARCHIVING_KEPT_MS = 1000;

export interface HistoryRecorderOptions {
  sql: Sql;
  logger: Logger;
  /** how long the first message of a batch waits for company, ms (1..10) */
  commitWindowMs: number;
}

/** What /metrics counts of the recorder. */
export interface RecorderStats {
  /** messages handed to record() */
  received: number;
  /** kept in a conversation, marked displayed, conversations opened (from the commits) */
  recorded: number;
  displayed: number;
  opened: number;
  /** batches committed, and those that failed (their messages are lost, logged) */
  batches: number;
  failedBatches: number;
}

export class HistoryRecorder implements ConversationRecorder {
  readonly #o: HistoryRecorderOptions;
  readonly #writer: BatchWriter<RecordedMessage, CommitSummary>;
  readonly #windowMs: number;
  #pending: RecordedMessage[] = [];
  /** when the first of #pending was recorded (performance.now()) */
  #firstAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  /**
   * Whether each user archives, as read for earlier batches: forgotten when the admin audit log
   * moves (every change of settings, grants, sites and users writes a row there; the commit's
   * memory relies on the same rule), and at least every ARCHIVING_KEPT_MS whatever it says.
   * Without it, every message of a batch looked its sender up again (a new batch knows no one):
   * ~1.5 µs a message on the SIP thread.
   */
  readonly #archiving = new Map<string, boolean>();
  #auditId = -1;
  #archivingSince = 0;
  readonly stats: RecorderStats = { received: 0, recorded: 0, displayed: 0, opened: 0, batches: 0, failedBatches: 0 };

  constructor(options: HistoryRecorderOptions) {
    this.#o = options;
    this.#windowMs = Math.min(Math.max(options.commitWindowMs, 0), MAX_COMMIT_WINDOW_MS);
    this.#writer = openBatchWriter(options.sql, writeHistoryBatch, { entry: new URL('./recorder-thread.ts', import.meta.url), name: 'the history recorder' });
  }

  /** false while its writer thread is down (a new one starts with the next batch) */
  get running(): boolean {
    return this.#writer.running;
  }

  record(message: RecordedMessage): void {
    this.stats.received++;
    if (this.#pending.length === 0) this.#firstAt = performance.now();
    this.#pending.push(message);
    if (this.#timer === undefined && this.#writing === undefined) this.#timer = setTimeout(() => this.flush(), this.#windowMs);
  }

  /** Writes what is pending now, unless a batch is being written (then it follows that one). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#writing !== undefined || this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#writing = this.#write(batch).finally(() => {
      this.#writing = undefined;
      this.#next();
    });
  }

  /** After a batch: what gathered meanwhile is written once its first message has waited the window (at once if it has). */
  #next(): void {
    if (this.#pending.length === 0 || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.flush(), Math.max(0, this.#firstAt + this.#windowMs - performance.now()));
  }

  async #write(batch: RecordedMessage[]): Promise<void> {
    const kept = await this.#worthWriting(batch);
    if (kept.length === 0) return;
    // a body may be a view of a larger buffer (a datagram's): the thread is sent its own bytes only.
    // The messages are the recorder's (record()): their bodies are swapped, not the objects copied.
    for (const m of kept) if (m.body.byteLength !== m.body.buffer.byteLength) m.body = new Uint8Array(m.body);
    let summary: CommitSummary;
    try {
      summary = await this.#writer.write(kept);
    } catch (err) {
      this.#failed(err, kept.length);
      return;
    }
    this.#done(summary);
  }

  /**
   * The messages the commit could keep. Plain text between two users of whom neither archives
   * (EnableIMAutoArchiving off) is dropped by the commit anyway (commit.ts: nothing is kept for such
   * a pair, and no display is tracked without a display request): it is left out here, on the
   * settings cache, rather than sent to the writer's thread to be read, classified and dropped
   * there. Anything else (typing notices, reports, display requests, a partner's user, settings
   * that cannot be read) goes to the commit, which decides as before.
   */
  async #worthWriting(batch: RecordedMessage[]): Promise<RecordedMessage[]> {
    const kept: RecordedMessage[] = [];
    await this.#settingsMayHaveChanged();
    // what this batch could not read (not a user here) is asked again by the next one
    const unknown = new Set<string>();
    for (const m of batch) {
      const content = classify(m.contentType, m.body);
      if (content.kind === 'text' && content.displayRequestId === undefined) {
        // either party archiving keeps it: one already known is asked first (a user many write
        // to, say), so that the other is looked up only when it decides
        const [first, second] = this.#archiving.has(m.recipient) ? [m.recipient, m.sender] : [m.sender, m.recipient];
        if ((await this.#archives(unknown, first)) === false && (await this.#archives(unknown, second)) === false) continue;
      }
      kept.push(m);
    }
    return kept;
  }

  /** Forgets what #archiving knows when the audit log moved (or cannot be read), it is a second old, or it grew past its bound. */
  async #settingsMayHaveChanged(): Promise<void> {
    let auditId: number;
    try {
      auditId = await lastAuditId(this.#o.sql);
    } catch {
      auditId = -1;
    }
    const now = performance.now();
    if (auditId !== this.#auditId || auditId === -1 || now - this.#archivingSince > ARCHIVING_KEPT_MS || this.#archiving.size > MAX_REMEMBERED) {
      this.#archiving.clear();
      this.#archivingSince = now;
    }
    this.#auditId = auditId;
  }

  /** Whether `address` archives its conversations; undefined when its settings cannot be read (not a user here). */
  async #archives(unknown: Set<string>, address: string): Promise<boolean | undefined> {
    const known = this.#archiving.get(address);
    if (known !== undefined) return known;
    if (unknown.has(address)) return undefined;
    let archives: boolean;
    try {
      archives = (await effectiveSettings(this.#o.sql, address)).EnableIMAutoArchiving;
    } catch {
      unknown.add(address);
      return undefined;
    }
    this.#archiving.set(address, archives);
    return archives;
  }

  /** Writes what is pending now and resolves once it is committed (or failed). */
  async settled(): Promise<void> {
    for (;;) {
      this.flush();
      if (this.#writing === undefined) return;
      await this.#writing;
    }
  }

  /** Writes what is pending and waits for it; then stops the writer. */
  async close(): Promise<void> {
    await this.settled();
    await this.#writer.close();
  }

  #done(summary: CommitSummary): void {
    this.stats.batches++;
    this.stats.recorded += summary.recorded;
    this.stats.displayed += summary.displayed;
    this.stats.opened += summary.opened;
  }

  #failed(err: unknown, messages: number): void {
    this.stats.failedBatches++;
    this.#o.logger.error({ err, messages }, 'Conversation History could not record %d messages: they will be missing from the history items', messages);
  }
}
