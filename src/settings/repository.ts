// Storage of the settings instances and of the per-user policy grants. Every write goes through
// one transaction that also records the change in the audit log.

import { findSite, parseAddress } from '../directory/index.ts';
import { DirectoryError } from '../directory/index.ts';
import type { Database, MigrationSet } from '../storage/index.ts';
import { statement, transaction } from '../storage/index.ts';
import type { ChangeContext } from './audit.ts';
import { AUDIT_TABLE_SQL, recordAudit } from './audit.ts';
import { SettingsError } from './errors.ts';
import type { Identity, SettingsInstance, SettingsKind, SettingValue, SettingValues } from './model.ts';
import { CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_KINDS, checkValue, defaultValues, displayValue, formatIdentity } from './model.ts';

/**
 * The first migration's table, for the properties a kind had when it shipped: the migration's SQL
 * must never change (its checksum is recorded), so properties added later come in migrations of
 * their own (addedColumnsSql) and are left out here.
 */
function tableSql(kind: SettingsKind, shipped: readonly string[]): string {
  const properties = kind.properties.filter((p) => shipped.includes(p.name));
  const columns = properties.map((p) => `  ${p.column} INTEGER NOT NULL`).join(',\n');
  const scopes = kind.scopes.map((s) => `'${s}'`).join(', ');
  return `CREATE TABLE ${kind.table} (
  scope TEXT NOT NULL CHECK (scope IN (${scopes})),
  name TEXT NOT NULL COLLATE NOCASE,
${columns},
  PRIMARY KEY (scope, name)
) STRICT;
INSERT INTO ${kind.table} (scope, name, ${properties.map((p) => p.column).join(', ')}) VALUES ('global', '', ${properties.map((p) => Number(p.defaultValue)).join(', ')});`;
}

/** Properties added after the first migration: a column each, every existing instance given the default. */
function addedColumnsSql(kind: SettingsKind, names: readonly string[]): string {
  return names
    .map((name) => {
      const p = kind.properties.find((q) => q.name === name);
      if (p === undefined) throw new Error(`${kind.noun} has no property ${name}`);
      return `ALTER TABLE ${kind.table} ADD COLUMN ${p.column} INTEGER NOT NULL DEFAULT ${Number(p.defaultValue)};`;
    })
    .join('\n');
}

/** A per-user policy's grants (address → Tag name); 001 wrote client_policy_grants out by hand, the same shape. */
function grantsTableSql(table: string): string {
  return `CREATE TABLE ${table} (
  address TEXT NOT NULL PRIMARY KEY REFERENCES users(address) ON DELETE CASCADE,
  policy TEXT NOT NULL COLLATE NOCASE
) STRICT;
CREATE INDEX ${table}_policy ON ${table}(policy);`;
}

/** Run after DIRECTORY_MIGRATIONS: the grants refer to users. */
export const SETTINGS_MIGRATIONS: MigrationSet = {
  capability: 'settings',
  migrations: [
    {
      id: '001-settings',
      up: `${tableSql(IM_CONFIGURATION, ['EnableOfflineIm', 'OfflineImPickupDelay', 'OfflineImMaxAge'])}
${tableSql(CLIENT_POLICY, ['EnableIMAutoArchiving', 'DisableSavingIM'])}
CREATE TABLE client_policy_grants (
  address TEXT NOT NULL PRIMARY KEY REFERENCES users(address) ON DELETE CASCADE,
  policy TEXT NOT NULL COLLATE NOCASE
) STRICT;
CREATE INDEX client_policy_grants_policy ON client_policy_grants(policy);
${AUDIT_TABLE_SQL}`,
    },
    {
      // Conversation History (src/history)
      id: '002-conversation-timeouts',
      up: addedColumnsSql(IM_CONFIGURATION, ['ConversationIdleTimeout', 'UnreadMissedTimeout']),
    },
    {
      // Federation (issue 15)
      id: '003-external-access-policy',
      up: `${tableSql(EXTERNAL_ACCESS_POLICY, ['EnableFederationAccess'])}
${grantsTableSql('external_access_policy_grants')}`,
    },
  ],
};

type Row = Record<string, string | number>;

// getInstance and grantedPolicy run for every message (through effectiveSettings): their
// statements are prepared once per connection (one text per kind), the rows read every time.
export function getInstance(db: Database, kind: SettingsKind, identity: Identity): SettingsInstance | undefined {
  const row = statement(db, `SELECT * FROM ${kind.table} WHERE scope = ? AND name = ?`).get(identity.scope, identity.name) as Row | undefined;
  return row === undefined ? undefined : instanceOf(kind, row);
}

export function requireInstance(db: Database, kind: SettingsKind, identity: Identity): SettingsInstance {
  const instance = getInstance(db, kind, identity);
  if (instance === undefined) {
    throw new SettingsError('UNKNOWN_IDENTITY', `there is no ${kind.noun} ${formatIdentity(identity)}; see them with Get-${kind.noun}, or create it with New-${kind.noun} -Identity ${formatIdentity(identity)}`);
  }
  return instance;
}

/** Global first, then sites, then tags, by name. */
export function listInstances(db: Database, kind: SettingsKind): SettingsInstance[] {
  const rows = db.prepare(`SELECT * FROM ${kind.table} ORDER BY CASE scope WHEN 'global' THEN 0 WHEN 'site' THEN 1 ELSE 2 END, name`).all() as Row[];
  return rows.map((row) => instanceOf(kind, row));
}

/** How many instances (of every kind) sit at a site: Remove-CsSite refuses while there are any. */
export function countSiteInstances(db: Database, site: string): number {
  let n = 0;
  for (const kind of SETTINGS_KINDS) {
    const row = db.prepare(`SELECT count(*) AS n FROM ${kind.table} WHERE scope = 'site' AND name = ?`).get(site) as { n: number };
    n += Number(row.n);
  }
  return n;
}

/** New-Cs…: an instance holding every property, the defaults for those not given. */
export function createInstance(db: Database, kind: SettingsKind, identity: Identity, given: Partial<SettingValues>, change: ChangeContext): SettingsInstance {
  return transaction(db, () => {
    const stored = identity.scope === 'site' ? { ...identity, name: siteName(db, identity.name) } : identity;
    if (getInstance(db, kind, stored) !== undefined) {
      throw new SettingsError('IDENTITY_EXISTS', `${kind.noun} ${formatIdentity(stored)} already exists; change it with Set-${kind.noun}`);
    }
    const values = { ...defaultValues(kind), ...checked(kind, given) };
    const columns = kind.properties.map((p) => p.column);
    db.prepare(`INSERT INTO ${kind.table} (scope, name, ${columns.join(', ')}) VALUES (?, ?, ${columns.map(() => '?').join(', ')})`)
      .run(stored.scope, stored.name, ...kind.properties.map((p) => Number(values[p.name])));
    const text = formatIdentity(stored);
    recordAudit(db, change, text, null, null, 'created');
    for (const p of kind.properties) recordAudit(db, change, text, p.name, null, displayValue(p, values[p.name] ?? p.defaultValue));
    return { identity: stored, values };
  });
}

/** Set-Cs…: changes the given properties; audits those whose value changes. */
export function updateInstance(db: Database, kind: SettingsKind, identity: Identity, changes: Partial<SettingValues>, change: ChangeContext): SettingsInstance {
  return transaction(db, () => {
    const current = requireInstance(db, kind, identity);
    return writeValues(db, kind, current, { ...current.values, ...checked(kind, changes) }, change);
  });
}

/** Remove-Cs…: deletes a Site or Tag instance; resets Global to the defaults. */
export function removeInstance(db: Database, kind: SettingsKind, identity: Identity, change: ChangeContext): void {
  transaction(db, () => {
    const current = requireInstance(db, kind, identity);
    if (current.identity.scope === 'global') {
      writeValues(db, kind, current, defaultValues(kind), change);
      return;
    }
    if (kind.grants !== undefined && current.identity.scope === 'tag') {
      const row = db.prepare(`SELECT count(*) AS n FROM ${kind.grants.table} WHERE policy = ?`).get(current.identity.name) as { n: number };
      const n = Number(row.n);
      if (n > 0) throw new SettingsError('POLICY_IN_USE', `${kind.noun} ${formatIdentity(current.identity)} is granted to ${n} user${n === 1 ? '' : 's'}; grant them another with Grant-${kind.noun} -Identity <user> -PolicyName $Null first`);
    }
    db.prepare(`DELETE FROM ${kind.table} WHERE scope = ? AND name = ?`).run(current.identity.scope, current.identity.name);
    recordAudit(db, change, formatIdentity(current.identity), null, 'existed', 'removed');
  });
}

/** Grant-<noun> of a per-user policy: the Tag policy (by name) a user gets, or none (null). */
export function grantPolicy(db: Database, kind: SettingsKind, address: string, policy: string | null, change: ChangeContext): void {
  const grants = grantsOf(kind);
  const normalised = parseAddress(address).address;
  transaction(db, () => {
    if (db.prepare('SELECT 1 AS x FROM users WHERE address = ?').get(normalised) === undefined) {
      throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
    }
    const before = grantedPolicy(db, normalised, kind);
    let after: string | null = null;
    if (policy === null) {
      db.prepare(`DELETE FROM ${grants.table} WHERE address = ?`).run(normalised);
    } else {
      const tag = requireInstance(db, kind, { scope: 'tag', name: policy }).identity.name;
      db.prepare(`INSERT INTO ${grants.table} (address, policy) VALUES (?, ?) ON CONFLICT (address) DO UPDATE SET policy = excluded.policy`).run(normalised, tag);
      after = tag;
    }
    if (before !== after) recordAudit(db, change, normalised, grants.property, before === null ? null : `Tag:${before}`, after === null ? null : `Tag:${after}`);
  });
}

/** Grant-CsClientPolicy (kept for its many callers). */
export function grantClientPolicy(db: Database, address: string, policy: string | null, change: ChangeContext): void {
  grantPolicy(db, CLIENT_POLICY, address, policy, change);
}

/** The name of the Tag policy of `kind` (CsClientPolicy when not given) granted to a user, or null. */
export function grantedPolicy(db: Database, address: string, kind: SettingsKind = CLIENT_POLICY): string | null {
  const row = statement(db, `SELECT policy FROM ${grantsOf(kind).table} WHERE address = ?`).get(address) as { policy: string } | undefined;
  return row?.policy ?? null;
}

// ---------------------------------------------------------------------------------------------

function writeValues(db: Database, kind: SettingsKind, current: SettingsInstance, next: SettingValues, change: ChangeContext): SettingsInstance {
  const sets = kind.properties.map((p) => `${p.column} = ?`).join(', ');
  db.prepare(`UPDATE ${kind.table} SET ${sets} WHERE scope = ? AND name = ?`)
    .run(...kind.properties.map((p) => Number(next[p.name])), current.identity.scope, current.identity.name);
  const text = formatIdentity(current.identity);
  for (const p of kind.properties) {
    const before = current.values[p.name] ?? p.defaultValue;
    const after = next[p.name] ?? p.defaultValue;
    if (before !== after) recordAudit(db, change, text, p.name, displayValue(p, before), displayValue(p, after));
  }
  return { identity: current.identity, values: next };
}

function grantsOf(kind: SettingsKind): NonNullable<SettingsKind['grants']> {
  if (kind.grants === undefined) throw new Error(`${kind.noun} is not granted to users`);
  return kind.grants;
}

function checked(kind: SettingsKind, given: Partial<SettingValues>): Record<string, SettingValue> {
  const result: Record<string, SettingValue> = {};
  for (const [name, value] of Object.entries(given)) {
    if (value === undefined) continue;
    const property = kind.properties.find((p) => p.name === name);
    if (property === undefined) throw new SettingsError('BAD_VALUE', `${kind.noun} has no property ${name}`);
    result[property.name] = checkValue(kind, property, value);
  }
  return result;
}

function siteName(db: Database, name: string): string {
  const site = findSite(db, name);
  if (site === undefined) throw new DirectoryError('SITE_NOT_FOUND', `there is no site ${name}; create it first with New-CsSite -Identity Site:${name}`);
  return site.name;
}

function instanceOf(kind: SettingsKind, row: Row): SettingsInstance {
  const identity: Identity = row.scope === 'global' ? GLOBAL : { scope: row.scope as Identity['scope'], name: String(row.name) };
  const values: Record<string, SettingValue> = {};
  for (const p of kind.properties) values[p.name] = p.type === 'bool' ? Number(row[p.column]) !== 0 : Number(row[p.column]);
  return { identity, values };
}
