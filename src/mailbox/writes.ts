// How the mailbox store writes, on either engine. SQLite has one writer: every transaction sees
// the mailbox as the one before it left it. PostgreSQL runs the writers of different nodes (spool
// workers, EWS, SMTP) at once, and SERIALIZABLE transactions over the same indexes and the one
// change-log counter (migration 002) abort each other faster than they can be retried. So the
// store's write transactions run READ COMMITTED and take their own locks instead: the mailbox's
// row, before anything of the mailbox is read for a write (every read after it sees what the
// previous writer committed, as on SQLite), and the change-log counter's row, which the trigger
// takes and holds until commit (so change numbers grow in commit order). The unique indexes
// (InternetMessageId per mailbox, folder names) stay the last word on duplicates.
import type { Sql, TransactionOptions } from '../storage/index.ts';

export const WRITE: TransactionOptions = { isolation: 'read committed' };

/** Waits for the other writers of this mailbox (PostgreSQL; SQLite has one writer anyway). Inside a transaction. */
export async function lockMailbox(tx: Sql, mailboxId: number): Promise<void> {
  if (tx.engine === 'postgres') await tx.get('SELECT id FROM mailboxes WHERE id = ? FOR UPDATE', [mailboxId]);
}

/** fn in a write transaction (a savepoint inside one) holding the mailbox's lock. */
export function writeMailbox<T>(sql: Sql, mailboxId: number, fn: (tx: Sql) => Promise<T>): Promise<T> {
  return sql.transaction(async (tx) => {
    await lockMailbox(tx, mailboxId);
    return fn(tx);
  }, WRITE);
}
