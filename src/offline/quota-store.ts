// The quotas' repository (quota.ts keeps the tallies in memory; these are what the database holds
// for them): what is undelivered per sender and recipient, what purges gave back, and the refusals
// per user and reason.
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';
import type { QuotaReason, Tally } from './quota.ts';
import { QUOTA_KINDS } from './quota.ts';

export interface PairTally extends Tally {
  sender: string;
  recipient: string;
}

/** What every sender→recipient pair has in the spool not yet delivered (waiting, delivering, failed); of the quotas' kinds only (QUOTA_KINDS). */
export function undeliveredTotals(db: Database): PairTally[] {
  return db
    .prepare(`SELECT sender, recipient, sum(message_count) AS messages, sum(bytes) AS bytes FROM spool_entries WHERE state <> 'delivered' AND kind IN (${QUOTA_KINDS.map((k) => `'${k}'`).join(', ')}) GROUP BY sender, recipient`)
    .all() as unknown as PairTally[];
}

/** A purged undelivered entry gave back its messages: the running server reads this (releasesAfter). */
export function recordRelease(db: Database, entry: PairTally): void {
  statement(db, 'INSERT INTO spool_releases (sender, recipient, messages, bytes) VALUES (?, ?, ?, ?)').run(entry.sender, entry.recipient, entry.messages, entry.bytes);
}

export interface Release extends PairTally {
  seq: number;
}

/** The releases recorded after position `after`, oldest first. */
export function releasesAfter(db: Database, after: number): Release[] {
  return statement(db, 'SELECT seq, sender, recipient, messages, bytes FROM spool_releases WHERE seq > ? ORDER BY seq').all(after) as unknown as Release[];
}

/** The newest release's position (0 when none). */
export function lastRelease(db: Database): number {
  return (statement(db, 'SELECT coalesce(max(seq), 0) AS seq FROM spool_releases').get() as { seq: number }).seq;
}

/** Drops releases up to `upTo`: the server has applied them. */
export function forgetReleases(db: Database, upTo: number): void {
  statement(db, 'DELETE FROM spool_releases WHERE seq <= ?').run(upTo);
}

export interface RefusalRecord {
  /** whose limit refused: the sender's or the recipient's */
  address: string;
  reason: QuotaReason;
  at: number;
  /** the other party of the refused message */
  peer: string;
  warning: string;
}

export interface RefusalCount {
  address: string;
  reason: QuotaReason;
  count: number;
  lastAt: number;
  lastPeer: string;
  lastWarning: string;
}

export function recordRefusal(db: Database, r: RefusalRecord): void {
  statement(
    db,
    `INSERT INTO spool_refusals (address, reason, count, last_at, last_peer, last_warning) VALUES (?, ?, 1, ?, ?, ?)
     ON CONFLICT (address, reason) DO UPDATE SET count = spool_refusals.count + 1, last_at = excluded.last_at, last_peer = excluded.last_peer, last_warning = excluded.last_warning`,
  ).run(r.address, r.reason, r.at, r.peer, r.warning);
}

/** The refusals so far, per user and reason, most recent first; of one user when `address` is given. */
export function listRefusals(db: Database, address?: string): RefusalCount[] {
  const rows = (address === undefined
    ? db.prepare('SELECT * FROM spool_refusals ORDER BY last_at DESC').all()
    : db.prepare('SELECT * FROM spool_refusals WHERE address = ? ORDER BY last_at DESC').all(address)) as Array<{ address: string; reason: QuotaReason; count: number; last_at: number; last_peer: string; last_warning: string }>;
  return rows.map((r) => ({ address: r.address, reason: r.reason, count: r.count, lastAt: r.last_at, lastPeer: r.last_peer, lastWarning: r.last_warning }));
}
