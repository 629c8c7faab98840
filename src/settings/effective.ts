// A user's effective settings: the one place every other part of Parley reads settings from.
// Read on every call (no cache of results; only the prepared statements are reused), so a change
// made by an administrator applies at once.
//
//   CsImConfiguration: the user's site instance if it exists, else Global.
//   CsClientPolicy:    the Tag policy granted to the user, else the site's, else Global.
//   CsExternalAccessPolicy: the same, with its own grants.
// Whole instances apply (see model.ts): properties are not mixed across scopes.

import { DirectoryError, parseAddress } from '../directory/index.ts';
import type { Database } from '../storage/index.ts';
import { statement } from '../storage/index.ts';
import type { Identity, SettingsInstance, SettingsKind } from './model.ts';
import { CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, formatIdentity } from './model.ts';
import { getInstance, grantedPolicy, requireInstance } from './repository.ts';

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

/**
 * The settings that apply to `address` (`alice@parley.local`, `sip:…`, any case). Throws
 * DirectoryError USER_NOT_FOUND for an address with no user: settings of a non-user are a bug.
 */
export function effectiveSettings(db: Database, address: string): EffectiveSettings {
  const normalised = parseAddress(address).address;
  const user = statement(db, 'SELECT site FROM users WHERE address = ?').get(normalised) as { site: string | null } | undefined;
  if (user === undefined) throw new DirectoryError('USER_NOT_FOUND', `user ${normalised} does not exist`);
  const site: Identity | undefined = user.site === null ? undefined : { scope: 'site', name: user.site };
  const im = firstOf(db, IM_CONFIGURATION, [site]);
  const policy = firstOf(db, CLIENT_POLICY, [grantedTag(db, CLIENT_POLICY, normalised), site]);
  const external = firstOf(db, EXTERNAL_ACCESS_POLICY, [grantedTag(db, EXTERNAL_ACCESS_POLICY, normalised), site]);
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

function grantedTag(db: Database, kind: SettingsKind, address: string): Identity | undefined {
  const name = grantedPolicy(db, address, kind);
  return name === null ? undefined : { scope: 'tag', name };
}

function firstOf(db: Database, kind: SettingsKind, candidates: ReadonlyArray<Identity | undefined>): SettingsInstance {
  for (const identity of candidates) {
    if (identity === undefined) continue;
    const instance = getInstance(db, kind, identity);
    if (instance !== undefined) return instance;
  }
  return requireInstance(db, kind, GLOBAL);
}
