// One retention run: each kind's purge in batches of `policy.batch` rows, each batch one short
// write transaction, with a pause between batches so the spool's and Conversation History's group
// commits get the write lock in between. On SQLite with a file it runs on the batch writers' thread
// (purge-writer-thread.ts, src/storage's batch writer), so neither a batch nor its commit's fsync
// ever holds the event loop that answers SIP; on PostgreSQL from the loop, on the pool (the server
// does the work).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sql } from '../storage/index.ts';
import type { RetentionPolicy } from './policy.ts';
import { type OldestKind, type PurgeKind, oldestRows, purgesFor } from './purgers.ts';

export const PAUSE_MS = 20;
/** a kind that found the database locked this many times in a row waits for the next run */
const MAX_BUSY_IN_A_ROW = 50;

export interface RunRequest {
  policy: RetentionPolicy;
  now: number;
  lockoutWindowMs: number;
}

export interface RunResult {
  purged: Partial<Record<PurgeKind, number>>;
  oldest: Record<OldestKind, number | null>;
  /** kinds that gave up because the database stayed locked */
  locked: PurgeKind[];
}

export async function runPurges(sql: Sql, request: RunRequest, stopped: () => boolean = () => false, pauseMs = PAUSE_MS): Promise<RunResult> {
  const purged: Partial<Record<PurgeKind, number>> = {};
  const locked: PurgeKind[] = [];
  for (const purge of purgesFor(request)) {
    let busy = 0;
    for (;;) {
      if (stopped()) return { purged, oldest: await oldestRows(sql), locked };
      let result;
      try {
        result = await sql.transaction((tx) => purge.batch(tx, request.policy.batch));
      } catch (err) {
        if (!isBusy(err)) throw err;
        if (++busy >= MAX_BUSY_IN_A_ROW) {
          locked.push(purge.kind);
          break;
        }
        await sleep(pauseMs * 5);
        continue;
      }
      busy = 0;
      if (result.deleted > 0) purged[purge.kind] = (purged[purge.kind] ?? 0) + result.deleted;
      if (!result.more) break;
      await sleep(pauseMs);
    }
  }
  return { purged, oldest: await oldestRows(sql), locked };
}

function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes
  return (typeof e?.errcode === 'number' && [5, 6].includes(e.errcode & 0xff)) || /database is locked|database table is locked/.test(e?.message ?? '');
}

/**
 * The batch writer's function for retention (scheduler.ts): each request one run, in turn; a run
 * ends at its next batch once the writer is closing.
 */
export async function writeRuns(sql: Sql, requests: readonly RunRequest[], stopping: () => boolean): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const request of requests) results.push(await runPurges(sql, request, stopping));
  return results;
}
