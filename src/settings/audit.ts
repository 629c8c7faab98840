// The audit log: every change an administrator makes, one row per changed property, written in
// the same transaction as the change.

import type { Database } from '../storage/index.ts';

/** Who is changing what; handed to every repository function that writes. */
export interface ChangeContext {
  /** the OS user running the CLI (or `local`), later the admin-API token's owner */
  readonly actor: string;
  /** `Set-CsImConfiguration` */
  readonly cmdlet: string;
  readonly now: () => number;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: Date;
  readonly actor: string;
  readonly cmdlet: string;
  readonly identity: string;
  /** null when the whole object was created or removed */
  readonly property: string | null;
  readonly oldValue: string | null;
  readonly newValue: string | null;
}

export const AUDIT_TABLE_SQL = `CREATE TABLE admin_audit (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  cmdlet TEXT NOT NULL,
  identity TEXT NOT NULL,
  property TEXT,
  old_value TEXT,
  new_value TEXT
) STRICT;`;

export function recordAudit(
  db: Database,
  change: ChangeContext,
  identity: string,
  property: string | null,
  oldValue: string | null,
  newValue: string | null,
): void {
  db.prepare('INSERT INTO admin_audit (at, actor, cmdlet, identity, property, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(change.now(), change.actor, change.cmdlet, identity, property, oldValue, newValue);
}

/** The newest `last` entries (all when undefined), oldest first. */
export function listAudit(db: Database, last?: number): AuditEntry[] {
  const rows = (last === undefined
    ? db.prepare('SELECT * FROM admin_audit ORDER BY id').all()
    : db.prepare('SELECT * FROM (SELECT * FROM admin_audit ORDER BY id DESC LIMIT ?) ORDER BY id').all(last)) as Array<{
    id: number; at: number; actor: string; cmdlet: string; identity: string; property: string | null; old_value: string | null; new_value: string | null;
  }>;
  return rows.map((r) => ({
    id: r.id, at: new Date(r.at), actor: r.actor, cmdlet: r.cmdlet, identity: r.identity, property: r.property, oldValue: r.old_value, newValue: r.new_value,
  }));
}

/** Deletes up to `limit` audit rows recorded before `before` (epoch ms), oldest first (retention.audit); returns how many. */
export function purgeAuditBatch(db: Database, before: number, limit: number): number {
  return Number(db.prepare('DELETE FROM admin_audit WHERE id IN (SELECT id FROM admin_audit WHERE at < ? ORDER BY id LIMIT ?)').run(before, limit).changes);
}

/** When the oldest audit row was recorded (epoch ms), null when there is none. */
export function oldestAudit(db: Database): number | null {
  const row = db.prepare('SELECT at FROM admin_audit ORDER BY id LIMIT 1').get() as { at: number } | undefined;
  return row?.at ?? null;
}
