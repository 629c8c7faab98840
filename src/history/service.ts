// Conversation History of one server: the recorder the router tells of each MESSAGE (ctx.history),
// the worker that turns ended conversations and unread messages into spool entries, and the
// sign-outs that end conversations early.
//
//   const history = new HistoryService({ sql, logger, commitWindowMs, displayName, registrations, … });
//   ctx.history = history.recorder;
//   history.start();                     // after offline.start(): its entries go to that spool
//   await history.close();               // after the SIP requests in flight were answered, before offline.close()

import type { Logger } from '../observability/logger.ts';
import type { RegistrationEvents } from '../registrar/events.ts';
import type { Sql } from '../storage/index.ts';
import { HistoryRecorder } from './recorder.ts';
import { HistoryWorker } from './worker.ts';

export interface HistoryServiceOptions {
  sql: Sql;
  logger: Logger;
  /** group commit window, ms (at most 10) */
  commitWindowMs: number;
  /** a user's display name; null or '' when there is none */
  displayName(address: string): Promise<string | null>;
  /** told of every change of a user's bindings */
  registrations: RegistrationEvents;
  /** how many live bindings `aor` has now */
  bindings(aor: string): Promise<number>;
  /** spool entries were made, the earliest due at `pickupAt`: kick the spool worker */
  onSpooled(pickupAt: number): void;
  now?: () => number;
}

/** What /metrics reads. */
export interface HistoryCounts {
  received: number;
  recorded: number;
  displayed: number;
  opened: number;
  closed: number;
  missed: number;
  entries: number;
  batches: number;
  failedBatches: number;
}

export class HistoryService {
  readonly recorder: HistoryRecorder;
  readonly worker: HistoryWorker;
  readonly #o: HistoryServiceOptions;
  readonly #onChanged = (aor: string): void => this.#changed(aor);

  constructor(options: HistoryServiceOptions) {
    this.#o = options;
    this.recorder = new HistoryRecorder({ sql: options.sql, logger: options.logger, commitWindowMs: options.commitWindowMs });
    this.worker = new HistoryWorker({ sql: options.sql, logger: options.logger, displayName: options.displayName, onSpooled: options.onSpooled, ...(options.now ? { now: options.now } : {}) });
  }

  start(): void {
    this.#o.registrations.on('changed', this.#onChanged);
    this.worker.start();
  }

  /** Commits what was recorded, stops the worker (open conversations wait in the database for the next start). */
  async close(): Promise<void> {
    this.#o.registrations.off('changed', this.#onChanged);
    await this.worker.close();
    await this.recorder.close();
  }

  counts(): HistoryCounts {
    const r = this.recorder.stats;
    const w = this.worker.totals;
    return { received: r.received, recorded: r.recorded, displayed: r.displayed, opened: r.opened, closed: w.closed, missed: w.missed, entries: w.entries, batches: r.batches, failedBatches: r.failedBatches };
  }

  /** Signed out of every device: the user's conversations end now (after what was recorded is committed). */
  #changed(aor: string): void {
    this.#o.bindings(aor).then(
      async (n) => {
        if (n > 0) return;
        // what the recorder holds of this conversation goes in first (≤ one window)
        await this.recorder.settled();
        await this.worker.signedOut(aor);
      },
      (err: unknown) => this.#o.logger.warn({ err, aor }, 'could not read the bindings of %s for Conversation History', aor),
    );
  }
}
