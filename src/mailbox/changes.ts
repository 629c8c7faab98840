// The change log of each folder (mail_changes), and the net changes since a point in it, as
// SyncFolderItems reports them: an item created and deleted inside the window is not reported; one
// created inside it is a Create whatever happened next; only read-flag changes are a ReadFlagChange.
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';

export type ChangeKind = 'create' | 'update' | 'read' | 'delete';

export function logChange(db: Database, mailboxId: number, folderId: string, itemId: string, kind: ChangeKind, at: number): void {
  statement(db, 'INSERT INTO mail_changes (mailbox_id, folder_id, item_id, kind, at) VALUES (?, ?, ?, ?, ?)').run(mailboxId, folderId, itemId, kind, at);
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
export function folderChangesSince(db: Database, folderId: string, after: number, max: number, ignore: ReadonlySet<string> = new Set()): ChangeWindow {
  const rows = db.prepare('SELECT seq, item_id, kind FROM mail_changes WHERE folder_id = ? AND seq > ? ORDER BY seq').all(folderId, after) as Array<{ seq: number; item_id: string; kind: ChangeKind }>;
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
    last = row.seq;
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
export function lastChange(db: Database): number {
  return (db.prepare('SELECT coalesce(max(seq), 0) AS n FROM mail_changes').get() as { n: number }).n;
}

/**
 * The log is complete only after this position: retention (retention.ts) compacted what lies at or
 * below it. A SyncState or watermark pointing below it cannot be served and is refused.
 */
export function changeFloor(db: Database): number {
  const row = statement(db, 'SELECT seq FROM mail_changes_floor WHERE id = 1').get() as { seq: number } | undefined;
  return row?.seq ?? 0;
}
