// Retention of the embedded mailbox's history (src/retention runs it): lapsed pull subscriptions,
// sent SMTP outbox entries, and the change log (mail_changes).
//
// The change log is compacted below a floor (mail_changes_floor). Below it only what a full
// synchronisation (SyncFolderItems without a SyncState, which reads the log from 0) still needs is
// kept: the Create row of each item still in its folder. Update and read rows go (a full
// synchronisation reports the item as a Create with its current state anyway), and so do an
// item's Create and Delete once both are below the floor (a full synchronisation reports nothing
// for it). A SyncState or a watermark below the floor is refused, so a client starts over rather
// than miss a change (changes.ts: changeFloor).
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';
import { changeFloor } from './changes.ts';

/** Deletes up to `limit` pull subscriptions that lapsed before `now`; returns how many. */
export function purgeLapsedSubscriptions(db: Database, now: number, limit: number): number {
  return Number(statement(db, 'DELETE FROM mail_subscriptions WHERE id IN (SELECT id FROM mail_subscriptions WHERE expires_at < ? LIMIT ?)').run(now, limit).changes);
}

/** Deletes up to `limit` outbox entries sent before `before` (epoch ms); failed ones stay for the administrator. */
export function purgeSentOutbox(db: Database, before: number, limit: number): number {
  return Number(statement(db, "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox WHERE state = 'sent' AND updated_at < ? LIMIT ?)").run(before, limit).changes);
}

export interface ChangeLogCutoffs {
  /** rows at or after this (epoch ms) always stay */
  keepAfter: number;
  /** rows before this go even when a live subscription has not read them; undefined: never */
  forceBefore: number | undefined;
  now: number;
}

/**
 * One batch of compaction: raises the floor over at most `limit` rows and deletes what the floor
 * makes needless. Returns the rows deleted and whether the floor can rise further.
 */
export function compactChangeLogBatch(db: Database, c: ChangeLogCutoffs, limit: number): { deleted: number; more: boolean } {
  const floor = changeFloor(db);
  // what every live pull subscription has read; a lapsed one holds nothing back
  const held = statement(db, 'SELECT min(position) AS p FROM mail_subscriptions WHERE expires_at >= ?').get(c.now) as { p: number | null };
  const rows = statement(db, 'SELECT seq, folder_id, item_id, kind, at FROM mail_changes WHERE seq > ? ORDER BY seq LIMIT ?').all(floor, limit) as Array<{ seq: number; folder_id: string; item_id: string; kind: string; at: number }>;
  let top = floor;
  let stopped = false;
  for (const row of rows) {
    const old = row.at < c.keepAfter && (held.p === null || row.seq <= held.p);
    const tooOld = c.forceBefore !== undefined && row.at < c.forceBefore;
    if (!old && !tooOld) {
      stopped = true;
      break;
    }
    top = row.seq;
  }
  if (top === floor) return { deleted: 0, more: false };
  statement(db, 'UPDATE mail_changes_floor SET seq = ? WHERE id = 1').run(top);
  let deleted = 0;
  const createsBefore = statement(db, "DELETE FROM mail_changes WHERE item_id = ? AND folder_id = ? AND kind = 'create' AND seq < ?");
  for (const row of rows) {
    if (row.seq > top) break;
    if (row.kind === 'delete') deleted += Number(createsBefore.run(row.item_id, row.folder_id, row.seq).changes);
  }
  deleted += Number(statement(db, "DELETE FROM mail_changes WHERE seq > ? AND seq <= ? AND kind != 'create'").run(floor, top).changes);
  // a subscription the floor passed would miss events: it ends, as a lapsed one does
  statement(db, 'DELETE FROM mail_subscriptions WHERE position < ?').run(top);
  return { deleted, more: !stopped && rows.length === limit };
}

/** When the oldest change-log row was written (epoch ms), null when the log is empty. */
export function oldestChange(db: Database): number | null {
  const row = statement(db, 'SELECT at FROM mail_changes ORDER BY seq LIMIT 1').get() as { at: number } | undefined;
  return row?.at ?? null;
}
