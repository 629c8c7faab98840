// Transitional, for the first stage of issue 16 only: while some capabilities still hold the
// node:sqlite connection (`db`) in synchronous code, a few repository functions take either it or
// an `Sql` (the same statements, run at once on the connection or through the engine). This goes
// with the last caller on `db`.

import type { Database } from './database.ts';
import type { Sql } from './sql.ts';

/** An Sql handle, not a node:sqlite Database. */
export function isSql(handle: Sql | Database): handle is Sql {
  return typeof (handle as Partial<Sql>).engine === 'string';
}
