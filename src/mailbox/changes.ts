// The change log of each folder (mail_changes), and the net changes since a point in it, as
// SyncFolderItems reports them: an item created and deleted inside the window is not reported; one
// created inside it is a Create whatever happened next; only read-flag changes are a ReadFlagChange.
//
// Positions (seq) grow in commit order on both engines, so that a reader who has seen position N
// never later finds a change below N appear: SQLite has one writer; on PostgreSQL a trigger takes
// each seq from one counter row (migration 002), whose row lock keeps the writers of the log in
// line until they commit (a sequence would not: numbers taken in one order commit in another).
import type { Sql } from '../storage/index.ts';

export type ChangeKind = 'create' | 'update' | 'read' | 'delete';

export async function logChange(sql: Sql, mailboxId: number, folderId: string, itemId: string, kind: ChangeKind, at: number): Promise<void> {
  await sql.run('INSERT INTO mail_changes (mailbox_id, folder_id, item_id, kind, at) VALUES (?, ?, ?, ?, ?)', [mailboxId, folderId, itemId, kind, at]);
}

export interface NetChange {
  itemId: string;
  kind: ChangeKind;
}

export interface ChangeWindow {
  changes: NetChange[];
  /** the log position this window reaches: the next window starts after it */
  last: number;
  /** false when the window reached the end of the log */
  more: boolean;
}

/** Net changes of the folder after log position `after`, at most `max` items, skipping `ignore`d ones. */
export async function folderChangesSince(sql: Sql, folderId: string, after: number, max: number, ignore: ReadonlySet<string> = new Set()): Promise<ChangeWindow> {
  const rows = await sql.all<{ seq: number; item_id: string; kind: ChangeKind }>('SELECT seq, item_id, kind FROM mail_changes WHERE folder_id = ? AND seq > ? ORDER BY seq', [folderId, after]);
  const perItem = new Map<string, { created: boolean; onlyRead: boolean; last: ChangeKind }>();
  let last = after;
  let more = false;
  for (const row of rows) {
    if (!perItem.has(row.item_id) && perItem.size >= max) {
      more = true;
      break;
    }
    const state = perItem.get(row.item_id) ?? { created: false, onlyRead: true, last: row.kind };
    if (row.kind === 'create') state.created = true;
    if (row.kind !== 'read') state.onlyRead = false;
    state.last = row.kind;
    perItem.set(row.item_id, state);
    last = Number(row.seq);
  }
  const changes: NetChange[] = [];
  for (const [itemId, s] of perItem) {
    if (ignore.has(itemId)) continue;
    if (s.last === 'delete') {
      if (!s.created) changes.push({ itemId, kind: 'delete' });
    } else changes.push({ itemId, kind: s.created ? 'create' : s.onlyRead ? 'read' : 'update' });
  }
  return { changes, last, more };
}

/** The newest log position (0 for an empty log). */
export async function lastChange(sql: Sql): Promise<number> {
  return Number((await sql.get<{ n: number }>('SELECT coalesce(max(seq), 0) AS n FROM mail_changes'))?.n ?? 0);
}

/**
 * The log is complete only after this position: retention (retention.ts) compacted what lies at or
 * below it. A SyncState or watermark pointing below it cannot be served and is refused.
 */
export async function changeFloor(sql: Sql): Promise<number> {
  const row = await sql.get<{ seq: number }>('SELECT seq FROM mail_changes_floor WHERE id = 1');
  return Number(row?.seq ?? 0);
}
