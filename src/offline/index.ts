// The offline-IM pipeline (MISSION.md, "Offline IM, precisely"): what other capabilities may use.
export type { EwsServerConfig, MailboxesConfig, MailboxRouting } from './connectors.ts';
export { EMBEDDED, createMailboxRouting } from './connectors.ts';
export type { OfflineErrorCode } from './errors.ts';
export { OFFLINE_ERROR_STATUS, OfflineError } from './errors.ts';
export type { GateDecision } from './gate.ts';
export { offlineGate } from './gate.ts';
export { OFFLINE_MIGRATIONS } from './schema.ts';
export type { OfflineDecision, OfflineHandoff, OfflineMessage, OfflineServiceOptions } from './service.ts';
export { OfflineService } from './service.ts';
export type { EntryFilter, SpoolEntry, SpooledMessage, SpoolState } from './spool.ts';
export { SPOOL_STATES, entryMessages, getEntry, listEntries, purgeDelivered, purgeEntry, retryEntry, spoolCounts } from './spool.ts';
export type { RetryPolicy, SpoolWorkerOptions } from './worker.ts';
export { DEFAULT_RETRY, SpoolWorker } from './worker.ts';
export { spoolerEndpoints } from './endpoints.ts';
export type { QuotaReason, SpoolQuotaLimits, Tally } from './quota.ts';
export { DEFAULT_SPOOL_QUOTA, QUOTA_REASONS, SpoolQuota } from './quota.ts';
export type { DeliveryStats } from './worker.ts';
