// A user's effective settings: the one place every other part of Parley reads settings from.
//
//   CsImConfiguration: the user's site instance if it exists, else Global.
//   CsClientPolicy:    the Tag policy granted to the user, else the site's, else Global.
//   CsExternalAccessPolicy: the same, with its own grants.
// Whole instances apply (see model.ts): properties are not mixed across scopes.
//
// Read for every message (the offline gate, Conversation History, federation), so the answers are
// kept per user until settings_version moves: triggers move it with every write of the tables
// read here (migration 004), by whichever process or node writes, so a change by `parley admin`
// counts from the next request on SQLite and within 250 ms on PostgreSQL (VersionedCache).

import { DirectoryError, parseAddress } from '../directory/index.ts';
import type { Sql } from '../storage/index.ts';
import { VersionedCache } from '../storage/index.ts';
import type { Identity, InstanceRow, SettingsInstance, SettingsKind } from './model.ts';
import { CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, formatIdentity, instanceOf } from './model.ts';
import { SettingsError } from './errors.ts';

export interface EffectiveSettings {
  readonly EnableOfflineIm: boolean;
  readonly OfflineImPickupDelaySeconds: number;
  readonly OfflineImMaxAgeSeconds: number;
  /** a conversation ends after this long without a message (src/history) */
  readonly ConversationIdleTimeoutSeconds: number;
  /** a message asking for a display notification not displayed within this becomes missed; 0: never */
  readonly UnreadMissedTimeoutSeconds: number;
  readonly EnableIMAutoArchiving: boolean;
  readonly DisableSavingIM: boolean;
  /** the user may talk to federated partners (when CsAccessEdgeConfiguration allows federation) */
  readonly EnableFederationAccess: boolean;
  /** the Identity (`Global`, `Site:Redmond`, `Tag:Sales`) each group of values came from */
  readonly sources: {
    readonly ImConfiguration: string;
    readonly ClientPolicy: string;
    readonly ExternalAccessPolicy: string;
  };
}

/** The user's site and granted tags; no row: no such user. */
const USER_SQL = `SELECT u.site AS site, c.policy AS client_tag, e.policy AS external_tag FROM users u
  LEFT JOIN client_policy_grants c ON c.address = u.address
  LEFT JOIN external_access_policy_grants e ON e.address = u.address
  WHERE u.address = ?`;

interface UserRow {
  site: string | null;
  client_tag: string | null;
  external_tag: string | null;
}

/** The instances of a kind that may apply: Global, the site's, the tag's (parameters: site, tag). */
const candidatesSql = (kind: SettingsKind) =>
  `SELECT * FROM ${kind.table} WHERE scope = 'global' OR (scope = 'site' AND lower(name) = lower(?)) OR (scope = 'tag' AND lower(name) = lower(?))`;

const KINDS = [IM_CONFIGURATION, CLIENT_POLICY, EXTERNAL_ACCESS_POLICY] as const;

function candidateParams(kind: SettingsKind, user: UserRow): [string | null, string | null] {
  const tag = kind === CLIENT_POLICY ? user.client_tag : kind === EXTERNAL_ACCESS_POLICY ? user.external_tag : null;
  return [user.site, tag];
}

const caches = new WeakMap<Sql, VersionedCache<EffectiveSettings>>();

/**
 * The settings that apply to `address` (`alice@parley.local`, `sip:…`, any case). Throws
 * DirectoryError USER_NOT_FOUND for an address with no user: settings of a non-user are a bug.
 */
export function effectiveSettings(sql: Sql, address: string): Promise<EffectiveSettings> {
  const normalised = parseAddress(address).address;
  // inside a transaction: what the transaction sees, not what the cache kept
  if (sql.inTransaction) return read(sql, normalised);
  let cache = caches.get(sql);
  if (cache === undefined) caches.set(sql, (cache = new VersionedCache(sql, 'SELECT v FROM settings_version')));
  return cache.get(normalised, () => read(sql, normalised));
}

/** Forgets the answers kept for `sql` (after this process changed settings through it). */
export function forgetEffectiveSettings(sql: Sql): void {
  caches.get(sql)?.clear();
}

async function read(sql: Sql, address: string): Promise<EffectiveSettings> {
  const user = await sql.get<UserRow>(USER_SQL, [address]);
  if (user === undefined) throw noUser(address);
  const rows = await Promise.all(KINDS.map((kind) => sql.all<InstanceRow>(candidatesSql(kind), candidateParams(kind, user))));
  return resolve(user, rows);
}

function resolve(user: UserRow, [imRows, policyRows, externalRows]: ReadonlyArray<readonly InstanceRow[]>): EffectiveSettings {
  const site: Identity | undefined = user.site === null ? undefined : { scope: 'site', name: user.site };
  const tag = (name: string | null): Identity | undefined => (name === null ? undefined : { scope: 'tag', name });
  const im = firstOf(IM_CONFIGURATION, imRows ?? [], [site]);
  const policy = firstOf(CLIENT_POLICY, policyRows ?? [], [tag(user.client_tag), site]);
  const external = firstOf(EXTERNAL_ACCESS_POLICY, externalRows ?? [], [tag(user.external_tag), site]);
  return {
    EnableOfflineIm: im.values.EnableOfflineIm === true,
    OfflineImPickupDelaySeconds: Number(im.values.OfflineImPickupDelay),
    OfflineImMaxAgeSeconds: Number(im.values.OfflineImMaxAge),
    ConversationIdleTimeoutSeconds: Number(im.values.ConversationIdleTimeout),
    UnreadMissedTimeoutSeconds: Number(im.values.UnreadMissedTimeout),
    EnableIMAutoArchiving: policy.values.EnableIMAutoArchiving === true,
    DisableSavingIM: policy.values.DisableSavingIM === true,
    EnableFederationAccess: external.values.EnableFederationAccess === true,
    sources: { ImConfiguration: formatIdentity(im.identity), ClientPolicy: formatIdentity(policy.identity), ExternalAccessPolicy: formatIdentity(external.identity) },
  };
}

/** The first candidate that exists among the rows, else Global. */
function firstOf(kind: SettingsKind, rows: readonly InstanceRow[], candidates: ReadonlyArray<Identity | undefined>): SettingsInstance {
  const instances = rows.map((row) => instanceOf(kind, row));
  const find = (identity: Identity) => instances.find((i) => i.identity.scope === identity.scope && i.identity.name.toLowerCase() === identity.name.toLowerCase());
  for (const identity of candidates) {
    const found = identity === undefined ? undefined : find(identity);
    if (found !== undefined) return found;
  }
  const global = find(GLOBAL);
  if (global === undefined) throw new SettingsError('UNKNOWN_IDENTITY', `there is no ${kind.noun} Global; create it with New-${kind.noun} -Identity Global`);
  return global;
}

function noUser(address: string): DirectoryError {
  return new DirectoryError('USER_NOT_FOUND', `user ${address} does not exist`);
}
