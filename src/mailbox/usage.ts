// The size of each mailbox, as Exchange's Get-MailboxStatistics reports it: TotalItemSize (its
// items' sizes summed) and TotalDeletedItemSize (its soft-deleted items', which Parley keeps for
// the idempotence of deliveries, as Exchange keeps them in Recoverable Items). Both are kept in the
// mailboxes row by the functions that add, change and remove items, inside their transactions, so
// a quota check reads one row instead of summing every item.
import type { Sql } from '../storage/index.ts';

export interface MailboxUsage {
  /** bytes of the items a user sees (TotalItemSize): what the quotas limit */
  size: number;
  /** bytes of the soft-deleted items (TotalDeletedItemSize): what RecoverableItemsQuota limits */
  deletedSize: number;
}

/** The mailbox's usage. */
export async function mailboxUsage(sql: Sql, mailboxId: number): Promise<MailboxUsage> {
  const row = await sql.get<{ size: number; deleted_size: number }>('SELECT size, deleted_size FROM mailboxes WHERE id = ?', [mailboxId]);
  return { size: Number(row?.size ?? 0), deletedSize: Number(row?.deleted_size ?? 0) };
}

/** The size (TotalItemSize) of the mailbox of `address` (lower case); 0 when it has none yet. */
export async function mailboxSizeOf(sql: Sql, address: string): Promise<number> {
  const row = await sql.get<{ size: number }>('SELECT size FROM mailboxes WHERE address = ?', [address]);
  return Number(row?.size ?? 0);
}

/** Every mailbox with its usage, largest first (for the administrator). */
export async function mailboxUsages(sql: Sql): Promise<Array<MailboxUsage & { address: string }>> {
  const rows = await sql.all<{ address: string; size: number; deleted_size: number }>('SELECT address, size, deleted_size FROM mailboxes ORDER BY size DESC, address');
  return rows.map((r) => ({ address: r.address, size: Number(r.size), deletedSize: Number(r.deleted_size) }));
}

/** Adds the deltas (negative when items go) to the mailbox's usage. Call inside the change's transaction. */
export async function growMailbox(sql: Sql, mailboxId: number, sizeDelta: number, deletedDelta = 0): Promise<void> {
  if (sizeDelta === 0 && deletedDelta === 0) return;
  await sql.run('UPDATE mailboxes SET size = size + ?, deleted_size = deleted_size + ? WHERE id = ?', [sizeDelta, deletedDelta, mailboxId]);
}

/** The usage of the items in a folder and every folder under it (what deleting the folder frees). */
export async function folderTreeUsage(sql: Sql, folderId: string): Promise<MailboxUsage> {
  // sums cast back to integers: PostgreSQL's sum of a BIGINT is a NUMERIC
  const row = await sql.get<{ size: number; deleted_size: number }>(
    `WITH RECURSIVE tree(id) AS (SELECT CAST(? AS TEXT) UNION ALL SELECT f.id FROM mail_folders f JOIN tree t ON f.parent_id = t.id)
     SELECT CAST(coalesce(sum(CASE WHEN i.soft_deleted = 0 THEN i.size ELSE 0 END), 0) AS BIGINT) AS size,
            CAST(coalesce(sum(CASE WHEN i.soft_deleted = 1 THEN i.size ELSE 0 END), 0) AS BIGINT) AS deleted_size
     FROM mail_items i WHERE i.folder_id IN (SELECT id FROM tree)`,
    [folderId],
  );
  return { size: Number(row?.size ?? 0), deletedSize: Number(row?.deleted_size ?? 0) };
}
