// How the mailbox store writes, on either engine. SQLite has one writer: every transaction sees
// the mailbox as the one before it left it. PostgreSQL runs the writers of different nodes (spool
// workers, EWS, SMTP) at once, and SERIALIZABLE transactions over the same indexes and the one
// change-log counter (migration 002) abort each other faster than they can be retried. So the
// store's write transactions run READ COMMITTED and take their own locks instead, always in this
// order (so that two writers never wait for each other):
//   1. the change log's counter row, by every transaction that may add to the log (items created,
//      changed, moved, deleted): held until commit, it numbers the changes in commit order, so a
//      reader that has seen change N never later finds one below N (SyncFolderItems, GetEvents);
//   2. the row of each mailbox written, before anything of it is read for the write: every read
//      after it sees what the previous writer of that mailbox committed, as on SQLite.
// Item writes are thus one at a time on PostgreSQL, as on SQLite; a batch of deliveries in one
// transaction takes the locks once. The unique indexes (InternetMessageId per mailbox, folder
// names) stay the last word on duplicates.
import type { Sql, TransactionOptions } from '../storage/index.ts';

export const WRITE: TransactionOptions = { isolation: 'read committed' };

/**
 * Waits for the other writers of the change log (PostgreSQL). Inside a transaction, before any
 * mailbox is locked or made (a first delivery makes the mailbox: its new row is locked too).
 */
export async function lockChangeLog(tx: Sql): Promise<void> {
  if (tx.engine === 'postgres') await tx.run('UPDATE mail_changes_counter SET seq = seq WHERE id = 1');
}

/** Waits for the other writers of the change log, then of this mailbox (PostgreSQL). Inside a transaction. */
export async function lockForItemWrite(tx: Sql, mailboxId: number): Promise<void> {
  await lockChangeLog(tx);
  await lockMailbox(tx, mailboxId);
}

/** Waits for the other writers of this mailbox (PostgreSQL; SQLite has one writer anyway). Inside a transaction. */
export async function lockMailbox(tx: Sql, mailboxId: number): Promise<void> {
  if (tx.engine === 'postgres') await tx.get('SELECT id FROM mailboxes WHERE id = ? FOR UPDATE', [mailboxId]);
}

/**
 * fn in a write transaction (a savepoint inside one) holding the mailbox's lock, and the change
 * log's before it unless `logs` is false (folder changes, which the log does not record).
 */
export function writeMailbox<T>(sql: Sql, mailboxId: number, fn: (tx: Sql) => Promise<T>, logs = true): Promise<T> {
  return sql.transaction(async (tx) => {
    await (logs ? lockForItemWrite(tx, mailboxId) : lockMailbox(tx, mailboxId));
    return fn(tx);
  }, WRITE);
}
