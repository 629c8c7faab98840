// Transitional (issue 16, first stage): the spool, history and retention are on `Sql`, but some
// functions of other capabilities they call (settings, the mailbox store, the SMTP outbox, the
// purges of sessions and lockouts) still take the node:sqlite connection until their own move
// lands. `unmovedDb(sql)` is that connection on SQLite, and a precise error on PostgreSQL. When the
// last of them has moved, every `unmovedDb(sql)` becomes `sql` and this file goes.
import type { Database, Sql } from '../storage/index.ts';
import { OfflineError } from './errors.ts';

export function unmovedDb(sql: Sql, what: string): Database {
  const db = (sql as { db?: Database }).db;
  if (sql.engine === 'sqlite' && db !== undefined) return db;
  throw new OfflineError('NOT_ON_THIS_ENGINE', `${what} still needs the SQLite connection in this build; it runs on PostgreSQL once its capability has moved to the Sql interface`);
}
