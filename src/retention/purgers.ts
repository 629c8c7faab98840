// What each kind of history is purged with: each capability owns its purge function (and its SQL);
// this list only says which runs under which policy setting. Every batch gets the handle of its own
// transaction.
import { FAMILIAR_MS, purgeExpiredLockoutBatch } from '../auth/index.ts';
import { compactChangeLogBatch, oldestChange, purgeLapsedSubscriptions, purgeSentOutbox } from '../mailbox/index.ts';
import { oldestTrace } from '../observability/trace.ts';
import { oldestSpoolRows, purgeDeliveredBatch, purgeLooseTraceBatch } from '../offline/index.ts';
import { DEFAULT_IDLE_MS, DEFAULT_MAX_AGE_MS, purgeExpiredSessionBatch } from '../session/index.ts';
import { oldestAudit, purgeAuditBatch } from '../settings/index.ts';
import type { Sql } from '../storage/index.ts';
import { cutoff, type RetentionPolicy } from './policy.ts';

/** The kinds in /metrics' `kind` label. */
export const PURGE_KINDS = ['delivered', 'trace', 'audit', 'change_log', 'mail_subscriptions', 'smtp_outbox', 'sessions', 'lockouts'] as const;
export type PurgeKind = (typeof PURGE_KINDS)[number];

/** The kinds whose oldest kept row /metrics shows (`failed`: failed spool entries, kept until an administrator acts). */
export const OLDEST_KINDS = ['delivered', 'failed', 'trace', 'audit', 'change_log'] as const;
export type OldestKind = (typeof OLDEST_KINDS)[number];

/** One run of one kind: `batch` is called (each call inside its own short transaction, `tx`) until it says no more. */
export interface Purge {
  kind: PurgeKind;
  batch(tx: Sql, limit: number): Promise<{ deleted: number; more: boolean }>;
}

export interface PurgeContext {
  policy: RetentionPolicy;
  now: number;
  /** auth.lockout.window, ms: a count older than this means nothing */
  lockoutWindowMs: number;
}

/** The purges of one run, in order, with the cutoffs of `now`; kinds kept forever are left out. */
export function purgesFor(ctx: PurgeContext): Purge[] {
  const { policy, now } = ctx;
  const purges: Purge[] = [];
  const delivered = cutoff(policy.delivered, now);
  if (delivered !== undefined) {
    purges.push({
      kind: 'delivered',
      async batch(tx, limit) {
        const r = await purgeDeliveredBatch(tx, delivered, limit);
        return { deleted: r.entries, more: r.entries === limit };
      },
    });
    // a cursor: rows of entries still kept are passed over once, not read again each batch
    let afterSeq = 0;
    purges.push({
      kind: 'trace',
      async batch(tx, limit) {
        const r = await purgeLooseTraceBatch(tx, delivered, afterSeq, limit);
        afterSeq = r.lastSeq;
        return { deleted: r.deleted, more: r.more };
      },
    });
    purges.push({ kind: 'smtp_outbox', batch: async (tx, limit) => once(await purgeSentOutbox(tx, delivered, limit), limit) });
  }
  const audit = cutoff(policy.audit, now);
  if (audit !== undefined) purges.push({ kind: 'audit', batch: async (tx, limit) => once(await purgeAuditBatch(tx, audit, limit), limit) });
  purges.push({ kind: 'mail_subscriptions', batch: async (tx, limit) => once(await purgeLapsedSubscriptions(tx, now, limit), limit) });
  const keepAfter = cutoff(policy.changeLog.minAge, now);
  if (keepAfter !== undefined) {
    const forceBefore = cutoff(policy.changeLog.maxAge, now);
    purges.push({ kind: 'change_log', batch: async (tx, limit) => compactChangeLogBatch(tx, { keepAfter, forceBefore, now }, limit) });
  }
  purges.push({ kind: 'sessions', batch: async (tx, limit) => once(await purgeExpiredSessionBatch(tx, now - DEFAULT_IDLE_MS, now - DEFAULT_MAX_AGE_MS, limit), limit) });
  purges.push({ kind: 'lockouts', batch: async (tx, limit) => once(await purgeExpiredLockoutBatch(tx, now, ctx.lockoutWindowMs, FAMILIAR_MS, limit), limit) });
  return purges;
}

/** When the oldest kept row of each kind was written (epoch ms; null: none). Each is one indexed read. */
export async function oldestRows(sql: Sql): Promise<Record<OldestKind, number | null>> {
  const spool = await oldestSpoolRows(sql);
  return { delivered: spool.delivered, failed: spool.failed, trace: await oldestTrace(sql), audit: await oldestAudit(sql), change_log: await oldestChange(sql) };
}

function once(deleted: number, limit: number): { deleted: number; more: boolean } {
  return { deleted, more: deleted >= limit };
}
