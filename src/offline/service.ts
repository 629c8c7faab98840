// The offline-IM pipeline of one server: the router hands it a MESSAGE whose recipient is offline
// (OfflineHandoff); it gates, spools durably (group commit) and answers; the worker delivers later.
//
//   const offline = new OfflineService({ db, logger, domain, routing, … });
//   ctx.offline = offline;              // the router's hand-off
//   offline.start();                    // recovers interrupted deliveries, starts the worker
//   closers.push(() => offline.close());

import { effectiveSettings } from '../settings/index.ts';
import { offlineGate } from './gate.ts';
import { GroupCommit } from './group-commit.ts';
import { loopSpoolWriter, ThreadSpoolWriter } from './spool-writer.ts';
import type { SpoolJob, SpoolResult, SpoolWriter } from './spool-writer.ts';
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
}

export type OfflineDecision =
  | { kind: 'spooled'; entryId: string; seq: number; joined: boolean; pickupAt: number }
  /** not kept: the warning says why, for the sender (480) */
  | { kind: 'refused'; warning: string };

/** What the router needs of the pipeline. */
export interface OfflineHandoff {
  accept(message: OfflineMessage): Promise<OfflineDecision>;
}

/** The worker's options, and the group commit's. */
export interface OfflineServiceOptions extends SpoolWorkerOptions {
  /** group commit: how long a batch gathers, ms, and its largest size */
  commitWindowMs: number;
  commitMaxBatch: number;
}

const TYPING = 'application/im-iscomposing+xml';

export class OfflineService implements OfflineHandoff {
  readonly worker: SpoolWorker;
  readonly #o: OfflineServiceOptions;
  readonly #now: () => number;
  readonly #writer: SpoolWriter;
  readonly #commits: GroupCommit<SpoolJob, SpoolResult>;

  constructor(opts: OfflineServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.worker = new SpoolWorker({ ...opts, now: this.#now });
    // a database in a file is written by a thread of its own (spool-writer.ts); in memory, in the loop
    const file = opts.db.location();
    this.#writer = file !== null && file !== '' ? new ThreadSpoolWriter(file) : loopSpoolWriter(opts.db);
    this.#commits = new GroupCommit<SpoolJob, SpoolResult>({
      windowMs: opts.commitWindowMs,
      maxBatch: opts.commitMaxBatch,
      commit: (jobs) => this.#writer.write(jobs),
    });
  }

  start(): void {
    this.worker.start();
  }

  async close(): Promise<void> {
    await this.#commits.close();
    await this.#writer.close();
    await this.worker.close();
  }

  async accept(m: OfflineMessage): Promise<OfflineDecision> {
    const now = this.#now();
    const type = m.contentType?.split(';')[0]?.trim().toLowerCase();
    if (type === TYPING) return { kind: 'refused', warning: `${m.recipient} is not signed in; typing notifications are not kept for later` };
    if (m.body.byteLength === 0) return { kind: 'refused', warning: `${m.recipient} is not signed in; an empty message is not kept for offline delivery` };

    const settings = effectiveSettings(this.#o.db, m.sender);
    const gate = offlineGate(m.recipient, settings);
    if (!gate.allowed) {
      // the refusal is traced too, in the next batch; the sender need not wait for that write
      this.#commits
        .submit({ kind: 'trace', event: { traceId: null, callId: m.callId, at: now, step: 'gated', detail: { decision: 'refused', from: m.sender, to: m.recipient, setting: gate.setting, reason: gate.warning } } })
        .catch((err: unknown) => this.#o.logger.warn({ err, callId: m.callId }, 'could not trace a gate refusal'));
      return { kind: 'refused', warning: gate.warning };
    }
    const receipt = await this.#commits.submit({
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
        gate: { EnableOfflineIm: settings.sources.ImConfiguration, EnableIMAutoArchiving: settings.sources.ClientPolicy },
      },
    });
    if (receipt === null) throw new Error('the spool returned no receipt for a stored message');
    this.worker.kick(receipt.pickupAt);
    return { kind: 'spooled', ...receipt };
  }
}
