// Storage of the settings instances and of the per-user policy grants. Every write goes through
// one transaction that also records the change in the audit log.
//
// Names (Site:Redmond, Tag:Sales) compare case-insensitively and keep the case they were created
// with: SQLite's tables say COLLATE NOCASE, PostgreSQL's have unique indexes on lower(name), and
// every lookup by name compares lower() of both sides, which means the same on either engine.

import { DirectoryError, parseAddress } from '../directory/index.ts';
import type { MigrationSet, Sql, SqlEngine } from '../storage/index.ts';
import { isUniqueViolation } from '../storage/index.ts';
import type { ChangeContext } from './audit.ts';
import { AUDIT_TABLE_POSTGRES, AUDIT_TABLE_SQL, recordAudit } from './audit.ts';
import { forgetEffectiveSettings } from './effective.ts';
import { SettingsError } from './errors.ts';
import type { Identity, InstanceRow, SettingsInstance, SettingsKind, SettingValue, SettingValues } from './model.ts';
import { CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, IM_CONFIGURATION, SETTINGS_KINDS, checkValue, defaultValues, displayValue, formatIdentity, instanceOf } from './model.ts';

/**
 * The first migration's table, for the properties a kind had when it shipped: the migration's SQL
 * must never change (its checksum is recorded), so properties added later come in migrations of
 * their own (addedColumnsSql) and are left out here.
 */
function tableSql(kind: SettingsKind, shipped: readonly string[], engine: SqlEngine = 'sqlite'): string {
  const properties = kind.properties.filter((p) => shipped.includes(p.name));
  const columns = properties.map((p) => `  ${p.column} ${engine === 'sqlite' ? 'INTEGER' : 'BIGINT'} NOT NULL`).join(',\n');
  const scopes = kind.scopes.map((s) => `'${s}'`).join(', ');
  const insert = `INSERT INTO ${kind.table} (scope, name, ${properties.map((p) => p.column).join(', ')}) VALUES ('global', '', ${properties.map((p) => Number(p.defaultValue)).join(', ')});`;
  if (engine === 'postgres') {
    return `CREATE TABLE ${kind.table} (
  scope TEXT NOT NULL CHECK (scope IN (${scopes})),
  name TEXT NOT NULL,
${columns},
  PRIMARY KEY (scope, name)
);
CREATE UNIQUE INDEX ${kind.table}_name ON ${kind.table} (scope, lower(name));
${insert}`;
  }
  return `CREATE TABLE ${kind.table} (
  scope TEXT NOT NULL CHECK (scope IN (${scopes})),
  name TEXT NOT NULL COLLATE NOCASE,
${columns},
  PRIMARY KEY (scope, name)
) STRICT;
${insert}`;
}

/** Properties added after the first migration: a column each, every existing instance given the default. */
function addedColumnsSql(kind: SettingsKind, names: readonly string[], engine: SqlEngine = 'sqlite'): string {
  return names
    .map((name) => {
      const p = kind.properties.find((q) => q.name === name);
      if (p === undefined) throw new Error(`${kind.noun} has no property ${name}`);
      return `ALTER TABLE ${kind.table} ADD COLUMN ${p.column} ${engine === 'sqlite' ? 'INTEGER' : 'BIGINT'} NOT NULL DEFAULT ${Number(p.defaultValue)};`;
    })
    .join('\n');
}

/** A per-user policy's grants (address → Tag name); 001 wrote client_policy_grants out by hand, the same shape. */
function grantsTableSql(table: string, engine: SqlEngine = 'sqlite'): string {
  if (engine === 'postgres') {
    return `CREATE TABLE ${table} (
  address TEXT NOT NULL PRIMARY KEY REFERENCES users(address) ON DELETE CASCADE,
  policy TEXT NOT NULL
);
CREATE INDEX ${table}_policy ON ${table}(lower(policy));`;
  }
  return `CREATE TABLE ${table} (
  address TEXT NOT NULL PRIMARY KEY REFERENCES users(address) ON DELETE CASCADE,
  policy TEXT NOT NULL COLLATE NOCASE
) STRICT;
CREATE INDEX ${table}_policy ON ${table}(policy);`;
}

/**
 * What effectiveSettings reads, every table of it: the version its cache watches moves with each
 * write of them, by whichever process or node (settings_version; see effective.ts). Of users, only
 * what changes whose settings apply: a user added or removed, or moved to another site.
 */
const SETTINGS_TABLES = ['im_configurations', 'client_policies', 'external_access_policies', 'client_policy_grants', 'external_access_policy_grants'];

function versionSql(engine: SqlEngine): string {
  if (engine === 'postgres') {
    return [
      'CREATE TABLE settings_version (v BIGINT NOT NULL);',
      'INSERT INTO settings_version (v) VALUES (0);',
      "CREATE FUNCTION settings_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE settings_version SET v = v + 1; PERFORM pg_notify('parley_version', 'settings_version'); RETURN NULL; END $$;",
      ...SETTINGS_TABLES.map((t) => `CREATE TRIGGER settings_version_${t} AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION settings_version_bump();`),
      'CREATE TRIGGER settings_version_users AFTER INSERT OR DELETE OR UPDATE OF site ON users FOR EACH STATEMENT EXECUTE FUNCTION settings_version_bump();',
    ].join('\n');
  }
  const bump = 'BEGIN UPDATE settings_version SET v = v + 1; END;';
  return [
    'CREATE TABLE settings_version (v INTEGER NOT NULL) STRICT;',
    'INSERT INTO settings_version (v) VALUES (0);',
    ...SETTINGS_TABLES.flatMap((t) => ['INSERT', 'UPDATE', 'DELETE'].map((op) => `CREATE TRIGGER settings_version_${t}_${op.toLowerCase()} AFTER ${op} ON ${t} ${bump}`)),
    `CREATE TRIGGER settings_version_users_insert AFTER INSERT ON users ${bump}`,
    `CREATE TRIGGER settings_version_users_site AFTER UPDATE OF site ON users ${bump}`,
    `CREATE TRIGGER settings_version_users_delete AFTER DELETE ON users ${bump}`,
  ].join('\n');
}

/** Run after DIRECTORY_MIGRATIONS: the grants refer to users. */
export const SETTINGS_MIGRATIONS: MigrationSet = {
  capability: 'settings',
  migrations: [
    {
      id: '001-settings',
      up: {
        sqlite: `${tableSql(IM_CONFIGURATION, ['EnableOfflineIm', 'OfflineImPickupDelay', 'OfflineImMaxAge'])}
${tableSql(CLIENT_POLICY, ['EnableIMAutoArchiving', 'DisableSavingIM'])}
CREATE TABLE client_policy_grants (
  address TEXT NOT NULL PRIMARY KEY REFERENCES users(address) ON DELETE CASCADE,
  policy TEXT NOT NULL COLLATE NOCASE
) STRICT;
CREATE INDEX client_policy_grants_policy ON client_policy_grants(policy);
${AUDIT_TABLE_SQL}`,
        postgres: `${tableSql(IM_CONFIGURATION, ['EnableOfflineIm', 'OfflineImPickupDelay', 'OfflineImMaxAge'], 'postgres')}
${tableSql(CLIENT_POLICY, ['EnableIMAutoArchiving', 'DisableSavingIM'], 'postgres')}
${grantsTableSql('client_policy_grants', 'postgres')}
${AUDIT_TABLE_POSTGRES}`,
      },
    },
    {
      // Conversation History (src/history)
      id: '002-conversation-timeouts',
      up: {
        sqlite: addedColumnsSql(IM_CONFIGURATION, ['ConversationIdleTimeout', 'UnreadMissedTimeout']),
        postgres: addedColumnsSql(IM_CONFIGURATION, ['ConversationIdleTimeout', 'UnreadMissedTimeout'], 'postgres'),
      },
    },
    {
      // Federation (issue 15)
      id: '003-external-access-policy',
      up: {
        sqlite: `${tableSql(EXTERNAL_ACCESS_POLICY, ['EnableFederationAccess'])}
${grantsTableSql('external_access_policy_grants')}`,
        postgres: `${tableSql(EXTERNAL_ACCESS_POLICY, ['EnableFederationAccess'], 'postgres')}
${grantsTableSql('external_access_policy_grants', 'postgres')}`,
      },
    },
    {
      // the version effectiveSettings' cache watches (issue 16)
      id: '004-settings-version',
      up: { sqlite: versionSql('sqlite'), postgres: versionSql('postgres') },
    },
  ],
};

const byName = (table: string) => `SELECT * FROM ${table} WHERE scope = ? AND lower(name) = lower(?)`;

export async function getInstance(sql: Sql, kind: SettingsKind, identity: Identity): Promise<SettingsInstance | undefined> {
  const row = await sql.get<InstanceRow>(byName(kind.table), [identity.scope, identity.name]);
  return row === undefined ? undefined : instanceOf(kind, row);
}

export async function requireInstance(sql: Sql, kind: SettingsKind, identity: Identity): Promise<SettingsInstance> {
  const instance = await getInstance(sql, kind, identity);
  if (instance === undefined) {
    throw new SettingsError('UNKNOWN_IDENTITY', `there is no ${kind.noun} ${formatIdentity(identity)}; see them with Get-${kind.noun}, or create it with New-${kind.noun} -Identity ${formatIdentity(identity)}`);
  }
  return instance;
}

/** Global first, then sites, then tags, by name. */
export async function listInstances(sql: Sql, kind: SettingsKind): Promise<SettingsInstance[]> {
  const rows = await sql.all<InstanceRow>(`SELECT * FROM ${kind.table} ORDER BY CASE scope WHEN 'global' THEN 0 WHEN 'site' THEN 1 ELSE 2 END, lower(name), name`);
  return rows.map((row) => instanceOf(kind, row));
}

const COUNT_AT_SITE = SETTINGS_KINDS.map((kind) => `(SELECT count(*) FROM ${kind.table} WHERE scope = 'site' AND lower(name) = lower(?))`).join(' + ');

/** How many instances (of every kind) sit at a site: Remove-CsSite refuses while there are any. */
export async function countSiteInstances(sql: Sql, site: string): Promise<number> {
  const row = await sql.get<{ n: number }>(`SELECT ${COUNT_AT_SITE} AS n`, SETTINGS_KINDS.map(() => site));
  return Number(row?.n ?? 0);
}

/** New-Cs…: an instance holding every property, the defaults for those not given. */
export async function createInstance(sql: Sql, kind: SettingsKind, identity: Identity, given: Partial<SettingValues>, change: ChangeContext): Promise<SettingsInstance> {
  const values = { ...defaultValues(kind), ...checked(kind, given) };
  const exists = (stored: Identity) => new SettingsError('IDENTITY_EXISTS', `${kind.noun} ${formatIdentity(stored)} already exists; change it with Set-${kind.noun}`);
  let stored = identity;
  try {
    await writing(sql, async (tx) => {
      stored = identity.scope === 'site' ? { ...identity, name: await siteName(tx, identity.name) } : identity;
      if ((await getInstance(tx, kind, stored)) !== undefined) throw exists(stored);
      const columns = kind.properties.map((p) => p.column);
      await tx.run(`INSERT INTO ${kind.table} (scope, name, ${columns.join(', ')}) VALUES (?, ?, ${columns.map(() => '?').join(', ')})`, [
        stored.scope, stored.name, ...kind.properties.map((p) => Number(values[p.name])),
      ]);
      const text = formatIdentity(stored);
      await recordAudit(tx, change, text, null, null, 'created');
      for (const p of kind.properties) await recordAudit(tx, change, text, p.name, null, displayValue(p, values[p.name] ?? p.defaultValue));
    });
  } catch (error) {
    // another administrator created it meanwhile
    if (isUniqueViolation(error)) throw exists(stored);
    throw error;
  }
  return { identity: stored, values };
}

/** Set-Cs…: changes the given properties; audits those whose value changes. */
export async function updateInstance(sql: Sql, kind: SettingsKind, identity: Identity, changes: Partial<SettingValues>, change: ChangeContext): Promise<SettingsInstance> {
  const wanted = checked(kind, changes);
  return writing(sql, async (tx) => {
    const current = await requireInstance(tx, kind, identity);
    return writeValues(tx, kind, current, { ...current.values, ...wanted }, change);
  });
}

/** Remove-Cs…: deletes a Site or Tag instance; resets Global to the defaults. */
export async function removeInstance(sql: Sql, kind: SettingsKind, identity: Identity, change: ChangeContext): Promise<void> {
  await writing(sql, async (tx) => {
    const current = await requireInstance(tx, kind, identity);
    if (current.identity.scope === 'global') {
      await writeValues(tx, kind, current, defaultValues(kind), change);
      return;
    }
    if (kind.grants !== undefined && current.identity.scope === 'tag') {
      const row = await tx.get<{ n: number }>(`SELECT count(*) AS n FROM ${kind.grants.table} WHERE lower(policy) = lower(?)`, [current.identity.name]);
      const n = Number(row?.n ?? 0);
      if (n > 0) throw new SettingsError('POLICY_IN_USE', `${kind.noun} ${formatIdentity(current.identity)} is granted to ${n} user${n === 1 ? '' : 's'}; grant them another with Grant-${kind.noun} -Identity <user> -PolicyName $Null first`);
    }
    await tx.run(`DELETE FROM ${kind.table} WHERE scope = ? AND lower(name) = lower(?)`, [current.identity.scope, current.identity.name]);
    await recordAudit(tx, change, formatIdentity(current.identity), null, 'existed', 'removed');
  });
}

/** Grant-<noun> of a per-user policy: the Tag policy (by name) a user gets, or none (null). */
export async function grantPolicy(sql: Sql, kind: SettingsKind, address: string, policy: string | null, change: ChangeContext): Promise<void> {
  const grants = grantsOf(kind);
  const normalised = parseAddress(address).address;
  await writing(sql, async (tx) => {
    if ((await tx.get('SELECT 1 AS x FROM users WHERE address = ?', [normalised])) === undefined) {
      throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist; see the users with Get-CsUser`);
    }
    const before = await grantedPolicy(tx, normalised, kind);
    let after: string | null = null;
    if (policy === null) {
      await tx.run(`DELETE FROM ${grants.table} WHERE address = ?`, [normalised]);
    } else {
      const tag = (await requireInstance(tx, kind, { scope: 'tag', name: policy })).identity.name;
      await tx.run(`INSERT INTO ${grants.table} (address, policy) VALUES (?, ?) ON CONFLICT (address) DO UPDATE SET policy = excluded.policy`, [normalised, tag]);
      after = tag;
    }
    if (before !== after) await recordAudit(tx, change, normalised, grants.property, before === null ? null : `Tag:${before}`, after === null ? null : `Tag:${after}`);
  });
}

/** Grant-CsClientPolicy (kept for its many callers). */
export function grantClientPolicy(sql: Sql, address: string, policy: string | null, change: ChangeContext): Promise<void> {
  return grantPolicy(sql, CLIENT_POLICY, address, policy, change);
}

/** The name of the Tag policy of `kind` (CsClientPolicy when not given) granted to a user, or null. */
export async function grantedPolicy(sql: Sql, address: string, kind: SettingsKind = CLIENT_POLICY): Promise<string | null> {
  const row = await sql.get<{ policy: string }>(`SELECT policy FROM ${grantsOf(kind).table} WHERE address = ?`, [address]);
  return row?.policy ?? null;
}

// ---------------------------------------------------------------------------------------------

/**
 * A write in one transaction; then this process's answers of effectiveSettings are forgotten at
 * once (other processes and nodes see the change through settings_version).
 */
async function writing<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  const result = await sql.transaction(fn);
  forgetEffectiveSettings(sql);
  return result;
}

async function writeValues(tx: Sql, kind: SettingsKind, current: SettingsInstance, next: SettingValues, change: ChangeContext): Promise<SettingsInstance> {
  const sets = kind.properties.map((p) => `${p.column} = ?`).join(', ');
  await tx.run(`UPDATE ${kind.table} SET ${sets} WHERE scope = ? AND lower(name) = lower(?)`, [
    ...kind.properties.map((p) => Number(next[p.name])), current.identity.scope, current.identity.name,
  ]);
  const text = formatIdentity(current.identity);
  for (const p of kind.properties) {
    const before = current.values[p.name] ?? p.defaultValue;
    const after = next[p.name] ?? p.defaultValue;
    if (before !== after) await recordAudit(tx, change, text, p.name, displayValue(p, before), displayValue(p, after));
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

/** The site's name as it was created (the directory's sites table; any case matches). */
async function siteName(sql: Sql, name: string): Promise<string> {
  const site = await sql.get<{ name: string }>('SELECT name FROM sites WHERE lower(name) = lower(?)', [name]);
  if (site === undefined) throw new DirectoryError('SITE_NOT_FOUND', `there is no site ${name}; create it first with New-CsSite -Identity Site:${name}`);
  return site.name;
}
