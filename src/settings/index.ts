// What other capabilities may use of settings. Read settings only through effectiveSettings.
export type { AuditEntry, ChangeContext } from './audit.ts';
export { lastAuditId, listAudit, oldestAudit, purgeAuditBatch, recordAudit } from './audit.ts';
export type { EffectiveSettings } from './effective.ts';
export { effectiveSettings } from './effective.ts';
export type { SettingsErrorCode } from './errors.ts';
export { SETTINGS_ERROR_STATUS, SettingsError } from './errors.ts';
export type { Identity, PropertySpec, PropertyType, Scope, SettingsInstance, SettingsKind, SettingValue, SettingValues } from './model.ts';
export { CLIENT_POLICY, EXTERNAL_ACCESS_POLICY, GLOBAL, IM_CONFIGURATION, SETTINGS_KINDS, checkValue, defaultValues, displayValue, formatIdentity, parseIdentity } from './model.ts';
export {
  SETTINGS_MIGRATIONS, countSiteInstances, createInstance, getInstance, grantClientPolicy, grantPolicy, grantedPolicy, listInstances, removeInstance, requireInstance, updateInstance,
} from './repository.ts';
export { formatTimeSpan, parseTimeSpan } from './timespan.ts';
export { PROVISIONING_EVENT, PROVISIONING_TYPE, ProvisioningPackage, provisioningDocument, type ProvisioningDocument, type ProvisioningOptions } from './provisioning.ts';
