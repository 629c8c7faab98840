// What others may use of retention: the policy (config, check-config), the scheduler (start.ts),
// the kinds (metrics), the database's size (metrics).
export type { Duration, RetentionPolicy } from './policy.ts';
export { DEFAULT_RETENTION, FOREVER, cutoff, describeRetention, formatDuration, parseDuration } from './policy.ts';
export type { OldestKind, PurgeKind } from './purgers.ts';
export { OLDEST_KINDS, PURGE_KINDS } from './purgers.ts';
export type { RetentionOptions, RetentionStats } from './scheduler.ts';
export { RetentionScheduler } from './scheduler.ts';
