// Transitional (issue 16, stage 1): the settings capability's recordAudit and effectiveSettings
// still take the node:sqlite connection on this branch, while the settings helper moves them to
// `Sql` (`await recordAudit(tx, …)`, `await effectiveSettings(sql, address)`). Until that merges,
// federation reaches them through here, which works on SQLite only. At the merge: call those two
// directly where these are called, and delete this file.

import { ParleyError } from '../errors.ts';
import type { ChangeContext, EffectiveSettings } from '../settings/index.ts';
import { effectiveSettings, recordAudit } from '../settings/index.ts';
import type { Database, Sql } from '../storage/index.ts';

function connectionOf(sql: Sql): Database {
  const db = (sql as { db?: Database }).db;
  if (sql.engine !== 'sqlite' || db === undefined) {
    throw new ParleyError('NOT_YET_ON_POSTGRES', 'the settings audit and effective settings are not yet readable on PostgreSQL in this build (issue 16, stage 1); run on SQLite');
  }
  return db;
}

/** recordAudit within the transaction `tx`. */
export async function auditIn(tx: Sql, change: ChangeContext, identity: string, property: string | null, oldValue: string | null, newValue: string | null): Promise<void> {
  recordAudit(connectionOf(tx), change, identity, property, oldValue, newValue);
}

/** effectiveSettings on either engine's handle. */
export async function effectiveSettingsOf(sql: Sql, address: string): Promise<EffectiveSettings> {
  return effectiveSettings(connectionOf(sql), address);
}
