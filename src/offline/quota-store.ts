// The quotas' repository (quota.ts keeps the tallies in memory; these are what the database holds
// for them): what is undelivered per sender and recipient, what purges gave back, and the refusals
// per user and reason.
import type { Sql } from '../storage/index.ts';
import type { QuotaReason, Tally } from './quota.ts';
import { QUOTA_KINDS } from './quota.ts';

export interface PairTally extends Tally {
  sender: string;
  recipient: string;
}

/** What every sender→recipient pair has in the spool not yet delivered (waiting, delivering, failed); of the quotas' kinds only (QUOTA_KINDS). */
export async function undeliveredTotals(sql: Sql): Promise<PairTally[]> {
  // sum() of a BIGINT is NUMERIC on PostgreSQL: cast back to an integer
  return sql.all<PairTally>(
    `SELECT sender, recipient, CAST(sum(message_count) AS BIGINT) AS messages, CAST(sum(bytes) AS BIGINT) AS bytes FROM spool_entries WHERE state <> 'delivered' AND kind IN (${QUOTA_KINDS.map((k) => `'${k}'`).join(', ')}) GROUP BY sender, recipient`,
  );
}

/** A purged undelivered entry gave back its messages: the running server reads this (releasesAfter). */
export async function recordRelease(sql: Sql, entry: PairTally): Promise<void> {
  // PostgreSQL hands out identities at INSERT, not at COMMIT: two purges committing in the other
  // order would let the server read past the lower seq before it is visible, and never apply it.
  // Purges take this self-conflicting lock until they commit, so seq order is commit order. (SQLite
  // has one writer at a time already.) Inside the caller's transaction, this is a savepoint and the
  // lock lasts until the caller commits.
  const insert = (tx: Sql) => tx.run('INSERT INTO spool_releases (sender, recipient, messages, bytes) VALUES (?, ?, ?, ?)', [entry.sender, entry.recipient, entry.messages, entry.bytes]);
  if (sql.engine !== 'postgres') {
    await insert(sql);
    return;
  }
  await sql.transaction(async (tx) => {
    await tx.exec('LOCK TABLE spool_releases IN SHARE ROW EXCLUSIVE MODE');
    await insert(tx);
  });
}

export interface Release extends PairTally {
  seq: number;
}

/** The releases recorded after position `after`, oldest first. */
export async function releasesAfter(sql: Sql, after: number): Promise<Release[]> {
  return sql.all<Release>('SELECT seq, sender, recipient, messages, bytes FROM spool_releases WHERE seq > ? ORDER BY seq', [after]);
}

/** The newest release's position (0 when none). */
export async function lastRelease(sql: Sql): Promise<number> {
  return (await sql.get<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM spool_releases'))?.seq ?? 0;
}

/** Drops releases up to `upTo`: the server has applied them. */
export async function forgetReleases(sql: Sql, upTo: number): Promise<void> {
  await sql.run('DELETE FROM spool_releases WHERE seq <= ?', [upTo]);
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

export async function recordRefusal(sql: Sql, r: RefusalRecord): Promise<void> {
  await sql.run(
    `INSERT INTO spool_refusals (address, reason, count, last_at, last_peer, last_warning) VALUES (?, ?, 1, ?, ?, ?)
     ON CONFLICT (address, reason) DO UPDATE SET count = spool_refusals.count + 1, last_at = excluded.last_at, last_peer = excluded.last_peer, last_warning = excluded.last_warning`,
    [r.address, r.reason, r.at, r.peer, r.warning],
  );
}

/** The refusals so far, per user and reason, most recent first; of one user when `address` is given. */
export async function listRefusals(sql: Sql, address?: string): Promise<RefusalCount[]> {
  type Row = { address: string; reason: QuotaReason; count: number; last_at: number; last_peer: string; last_warning: string };
  const rows = address === undefined ? await sql.all<Row>('SELECT * FROM spool_refusals ORDER BY last_at DESC') : await sql.all<Row>('SELECT * FROM spool_refusals WHERE address = ? ORDER BY last_at DESC', [address]);
  return rows.map((r) => ({ address: r.address, reason: r.reason, count: r.count, lastAt: r.last_at, lastPeer: r.last_peer, lastWarning: r.last_warning }));
}
