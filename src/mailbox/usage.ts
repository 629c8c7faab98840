// The size of each mailbox, as Exchange's Get-MailboxStatistics reports it: TotalItemSize (its
// items' sizes summed) and TotalDeletedItemSize (its soft-deleted items', which Parley keeps for
// the idempotence of deliveries, as Exchange keeps them in Recoverable Items). Both are kept in the
// mailboxes row by the functions that add, change and remove items, inside their transactions, so
// a quota check reads one row instead of summing every item.
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';

export interface MailboxUsage {
  /** bytes of the items a user sees (TotalItemSize): what the quotas limit */
  size: number;
  /** bytes of the soft-deleted items (TotalDeletedItemSize): what RecoverableItemsQuota limits */
  deletedSize: number;
}

/** The mailbox's usage. */
export function mailboxUsage(db: Database, mailboxId: number): MailboxUsage {
  const row = statement(db, 'SELECT size, deleted_size FROM mailboxes WHERE id = ?').get(mailboxId) as { size: number; deleted_size: number } | undefined;
  return { size: row?.size ?? 0, deletedSize: row?.deleted_size ?? 0 };
}

/** The size (TotalItemSize) of the mailbox of `address` (lower case); 0 when it has none yet. */
export function mailboxSizeOf(db: Database, address: string): number {
  const row = statement(db, 'SELECT size FROM mailboxes WHERE address = ?').get(address) as { size: number } | undefined;
  return row?.size ?? 0;
}

/** Every mailbox with its usage, largest first (for the administrator). */
export function mailboxUsages(db: Database): Array<MailboxUsage & { address: string }> {
  const rows = db.prepare('SELECT address, size, deleted_size FROM mailboxes ORDER BY size DESC, address').all() as Array<{ address: string; size: number; deleted_size: number }>;
  return rows.map((r) => ({ address: r.address, size: r.size, deletedSize: r.deleted_size }));
}

/** Adds the deltas (negative when items go) to the mailbox's usage. Call inside the change's transaction. */
export function growMailbox(db: Database, mailboxId: number, sizeDelta: number, deletedDelta = 0): void {
  if (sizeDelta === 0 && deletedDelta === 0) return;
  statement(db, 'UPDATE mailboxes SET size = size + ?, deleted_size = deleted_size + ? WHERE id = ?').run(sizeDelta, deletedDelta, mailboxId);
}

/** The usage of the items in a folder and every folder under it (what deleting the folder frees). */
export function folderTreeUsage(db: Database, folderId: string): MailboxUsage {
  const row = db
    .prepare(
      `WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT f.id FROM mail_folders f JOIN tree t ON f.parent_id = t.id)
       SELECT coalesce(sum(CASE WHEN i.soft_deleted = 0 THEN i.size ELSE 0 END), 0) AS size,
              coalesce(sum(CASE WHEN i.soft_deleted = 1 THEN i.size ELSE 0 END), 0) AS deleted_size
       FROM mail_items i WHERE i.folder_id IN (SELECT id FROM tree)`,
    )
    .get(folderId) as { size: number; deleted_size: number };
  return { size: row.size, deletedSize: row.deleted_size };
}
