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
import type { Sql } from '../storage/index.ts';
import { changeFloor } from './changes.ts';
import { WRITE } from './writes.ts';

/** Deletes up to `limit` pull subscriptions that lapsed before `now`; returns how many. */
export async function purgeLapsedSubscriptions(sql: Sql, now: number, limit: number): Promise<number> {
  return (await sql.run('DELETE FROM mail_subscriptions WHERE id IN (SELECT id FROM mail_subscriptions WHERE expires_at < ? LIMIT ?)', [now, limit])).changes;
}

/** Deletes up to `limit` outbox entries sent before `before` (epoch ms); failed ones stay for the administrator. */
export async function purgeSentOutbox(sql: Sql, before: number, limit: number): Promise<number> {
  return (await sql.run("DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox WHERE state = 'sent' AND updated_at < ? LIMIT ?)", [before, limit])).changes;
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
export async function compactChangeLogBatch(sql: Sql, c: ChangeLogCutoffs, limit: number): Promise<{ deleted: number; more: boolean }> {
  return sql.transaction(async (tx) => {
    // one compaction at a time, whichever node runs it (PostgreSQL; SQLite has one writer)
    if (tx.engine === 'postgres') await tx.get('SELECT seq FROM mail_changes_floor WHERE id = 1 FOR UPDATE');
    const floor = await changeFloor(tx);
    // what every live pull subscription has read; a lapsed one holds nothing back
    const heldRow = await tx.get<{ p: number | null }>('SELECT min(position) AS p FROM mail_subscriptions WHERE expires_at >= ?', [c.now]);
    const held = heldRow?.p === null || heldRow?.p === undefined ? null : Number(heldRow.p);
    const rows = await tx.all<{ seq: number; folder_id: string; item_id: string; kind: string; at: number }>('SELECT seq, folder_id, item_id, kind, at FROM mail_changes WHERE seq > ? ORDER BY seq LIMIT ?', [floor, limit]);
    let top = floor;
    let stopped = false;
    for (const row of rows) {
      const seq = Number(row.seq);
      const at = Number(row.at);
      const old = at < c.keepAfter && (held === null || seq <= held);
      const tooOld = c.forceBefore !== undefined && at < c.forceBefore;
      if (!old && !tooOld) {
        stopped = true;
        break;
      }
      top = seq;
    }
    if (top === floor) return { deleted: 0, more: false };
    await tx.run('UPDATE mail_changes_floor SET seq = ? WHERE id = 1', [top]);
    let deleted = 0;
    for (const row of rows) {
      if (Number(row.seq) > top) break;
      if (row.kind === 'delete') deleted += (await tx.run("DELETE FROM mail_changes WHERE item_id = ? AND folder_id = ? AND kind = 'create' AND seq < ?", [row.item_id, row.folder_id, row.seq])).changes;
    }
    deleted += (await tx.run("DELETE FROM mail_changes WHERE seq > ? AND seq <= ? AND kind != 'create'", [floor, top])).changes;
    // a subscription the floor passed would miss events: it ends, as a lapsed one does
    await tx.run('DELETE FROM mail_subscriptions WHERE position < ?', [top]);
    return { deleted, more: !stopped && rows.length === limit };
  }, WRITE);
}

/** When the oldest change-log row was written (epoch ms), null when the log is empty. */
export async function oldestChange(sql: Sql): Promise<number | null> {
  const row = await sql.get<{ at: number }>('SELECT at FROM mail_changes ORDER BY seq LIMIT 1');
  return row === undefined ? null : Number(row.at);
}
