// The settings model, after Microsoft's cmdlet reference (Get-CsImConfiguration,
// Get-CsClientPolicy): each noun has instances identified as `Global`, `Site:<name>` or (for
// per-user policies) `Tag:<name>`, written `<name>` alone too. `Global` always exists.
//
// Decision: like Skype for Business, New-Cs… creates an instance holding ALL properties (the
// defaults for those not given); an instance never inherits single properties from a wider
// scope. The scope only decides which whole instance applies to a user (see effective.ts).

import { SettingsError } from './errors.ts';
import { formatTimeSpan } from './timespan.ts';

export type Scope = 'global' | 'site' | 'tag';
export type PropertyType = 'bool' | 'timespan';
export type SettingValue = boolean | number;

export interface PropertySpec {
  /** as the cmdlets spell it, e.g. `EnableOfflineIm` */
  readonly name: string;
  readonly column: string;
  readonly type: PropertyType;
  readonly defaultValue: SettingValue;
  /** for timespans: the allowed range in seconds */
  readonly min?: number;
  readonly max?: number;
  readonly description: string;
}

export interface SettingsKind {
  /** `CsImConfiguration` */
  readonly noun: string;
  readonly table: string;
  readonly scopes: readonly Scope[];
  readonly properties: readonly PropertySpec[];
  /**
   * Per-user policies (those with Tag scopes): the table of Grant-<noun>'s grants (address →
   * tag name), and the property name the audit log and Get-CsUser show for a grant.
   */
  readonly grants?: { readonly table: string; readonly property: string };
}

export interface Identity {
  readonly scope: Scope;
  /** '' for global */
  readonly name: string;
}

export type SettingValues = Readonly<Record<string, SettingValue>>;

export interface SettingsInstance {
  readonly identity: Identity;
  readonly values: SettingValues;
}

export const IM_CONFIGURATION: SettingsKind = {
  noun: 'CsImConfiguration',
  table: 'im_configurations',
  scopes: ['global', 'site'],
  properties: [
    { name: 'EnableOfflineIm', column: 'enable_offline_im', type: 'bool', defaultValue: true, description: 'messages to a user who is not signed in are kept and delivered later' },
    { name: 'OfflineImPickupDelay', column: 'offline_im_pickup_delay_s', type: 'timespan', defaultValue: 120, min: 0, max: 86400, description: 'how long an offline message waits before delivery to the mailbox' },
    { name: 'OfflineImMaxAge', column: 'offline_im_max_age_s', type: 'timespan', defaultValue: 86400, min: 60, max: 30 * 86400, description: 'how long delivery is retried before the entry is failed' },
    // Conversation History (src/history): the classic client's 10-minute rule, and the toast nobody read
    { name: 'ConversationIdleTimeout', column: 'conversation_idle_timeout_s', type: 'timespan', defaultValue: 600, min: 1, max: 86400, description: 'a conversation ends after this long without a message; then it is written to Conversation History' },
    { name: 'UnreadMissedTimeout', column: 'unread_missed_timeout_s', type: 'timespan', defaultValue: 300, min: 0, max: 86400, description: 'a message that asked for a display notification and was not displayed within this becomes a Missed Conversation; 00:00:00 turns it off' },
  ],
};

export const CLIENT_POLICY: SettingsKind = {
  noun: 'CsClientPolicy',
  table: 'client_policies',
  scopes: ['global', 'site', 'tag'],
  grants: { table: 'client_policy_grants', property: 'ClientPolicy' },
  properties: [
    { name: 'EnableIMAutoArchiving', column: 'enable_im_auto_archiving', type: 'bool', defaultValue: true, description: 'clients archive conversations automatically' },
    { name: 'DisableSavingIM', column: 'disable_saving_im', type: 'bool', defaultValue: false, description: 'clients do not let the user save conversations' },
  ],
};

// Federation (issue 15): whether a user may talk to partner organisations' users at all; the
// organisation-wide switches (CsAccessEdgeConfiguration) and the partner lists are in src/federation.
export const EXTERNAL_ACCESS_POLICY: SettingsKind = {
  noun: 'CsExternalAccessPolicy',
  table: 'external_access_policies',
  scopes: ['global', 'site', 'tag'],
  grants: { table: 'external_access_policy_grants', property: 'ExternalAccessPolicy' },
  properties: [
    { name: 'EnableFederationAccess', column: 'enable_federation_access', type: 'bool', defaultValue: false, description: 'the user may exchange IM and presence with users of federated (partner) domains, when CsAccessEdgeConfiguration allows federation' },
  ],
};

export const SETTINGS_KINDS: readonly SettingsKind[] = [IM_CONFIGURATION, CLIENT_POLICY, EXTERNAL_ACCESS_POLICY];

export const GLOBAL: Identity = { scope: 'global', name: '' };
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * `Global`, `Site:Redmond`, `Tag:Sales`, or a bare `Sales` (a Tag, where the noun has tags), any
 * case. Throws BAD_IDENTITY naming the forms this noun accepts.
 */
export function parseIdentity(kind: SettingsKind, text: string): Identity {
  const trimmed = text.trim();
  const forms = kind.scopes.map((s) => (s === 'global' ? 'Global' : s === 'site' ? 'Site:<name>' : 'Tag:<name> (or <name>)')).join(', ');
  if (/^global$/i.test(trimmed)) return GLOBAL;
  const m = /^(site|tag):(.*)$/i.exec(trimmed);
  const scope: Scope | undefined = m === null ? (kind.scopes.includes('tag') ? 'tag' : undefined) : (m[1]?.toLowerCase() as Scope);
  const name = m === null ? trimmed : (m[2] ?? '');
  if (scope === undefined || !kind.scopes.includes(scope)) {
    throw new SettingsError('BAD_IDENTITY', `"${text}" is not an Identity of ${kind.noun}; use ${forms}`);
  }
  if (!NAME.test(name)) {
    throw new SettingsError('BAD_IDENTITY', `"${text}": the name must be 1 to 64 letters, digits, "-", "_" or ".", starting with a letter or digit`);
  }
  return { scope, name };
}

export function formatIdentity(identity: Identity): string {
  return identity.scope === 'global' ? 'Global' : `${identity.scope === 'site' ? 'Site' : 'Tag'}:${identity.name}`;
}

export function defaultValues(kind: SettingsKind): SettingValues {
  return Object.fromEntries(kind.properties.map((p) => [p.name, p.defaultValue]));
}

/** Checks a value against its property (type and range); throws BAD_VALUE / BAD_TIMESPAN. */
export function checkValue(kind: SettingsKind, property: PropertySpec, value: unknown): SettingValue {
  if (property.type === 'bool') {
    if (typeof value !== 'boolean') throw new SettingsError('BAD_VALUE', `${kind.noun}.${property.name} is $True or $False`);
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new SettingsError('BAD_VALUE', `${kind.noun}.${property.name} is a TimeSpan such as 00:02:00`);
  }
  if ((property.min !== undefined && value < property.min) || (property.max !== undefined && value > property.max)) {
    throw new SettingsError('BAD_TIMESPAN', `${property.name} must be between ${formatTimeSpan(property.min ?? 0)} and ${formatTimeSpan(property.max ?? 0)}`);
  }
  return value;
}

/** A value as the cmdlets show it: `True`, `00:02:00`. */
export function displayValue(property: PropertySpec, value: SettingValue): string {
  if (property.type === 'bool') return value === true ? 'True' : 'False';
  return formatTimeSpan(Number(value));
}

/** A row of a kind's table (scope, name and a column per property). */
export type InstanceRow = Record<string, string | number>;

export function instanceOf(kind: SettingsKind, row: InstanceRow): SettingsInstance {
  const identity: Identity = row.scope === 'global' ? GLOBAL : { scope: row.scope as Identity['scope'], name: String(row.name) };
  const values: Record<string, SettingValue> = {};
  for (const p of kind.properties) values[p.name] = p.type === 'bool' ? Number(row[p.column]) !== 0 : Number(row[p.column]);
  return { identity, values };
}
