// Transitional, for this stage of issue 16 only: findUser and findSite answer synchronously when
// given a node:sqlite Database, for the modules that have not moved to Sql yet. Goes with them.
import type { Database, Sql } from '../storage/index.ts';

/** An Sql handle, not a node:sqlite Database. */
export function isSql(handle: Sql | Database): handle is Sql {
  return typeof (handle as Partial<Sql>).engine === 'string';
}
