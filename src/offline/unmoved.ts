// Transitional (issue 16, first stage): the spool is on `Sql`, but the SMTP outbox it hands e-mail
// to partner organisations to (PartnerMailConnector, src/mailbox/smtp) still takes the node:sqlite
// connection until its own move lands. `unmovedDb(sql)` is that connection on SQLite, and a precise
// error on PostgreSQL. Once it has moved, `unmovedDb(sql)` becomes `sql` and this file goes.
import type { Database, Sql } from '../storage/index.ts';
import { OfflineError } from './errors.ts';

export function unmovedDb(sql: Sql, what: string): Database {
  const db = (sql as { db?: Database }).db;
  if (sql.engine === 'sqlite' && db !== undefined) return db;
  throw new OfflineError('NOT_ON_THIS_ENGINE', `${what} still needs the SQLite connection in this build; it runs on PostgreSQL once its capability has moved to the Sql interface`);
}
