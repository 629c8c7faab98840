// What is kept and for how long (config `retention`): the policy is plain data and pure
// functions, so the scheduler (scheduler.ts) and `parley check-config` read the same numbers.
//
// Kept without limit on purpose: spool entries still waiting or being delivered (they are the
// promise of a 202), failed entries (an administrator retries or purges them: `parley spooler`),
// and everything that is state rather than history (users, settings, mailboxes and their items).

/** A duration in the config: whole seconds, "90s", "15m", "12h", "30d", or "forever" (never purged). */
export type Duration = number | 'forever';

export const FOREVER = 'forever';

export interface RetentionPolicy {
  /** seconds: delivered spool entries with their messages and trace rows; trace rows of no kept entry; sent SMTP outbox entries */
  delivered: Duration;
  /** seconds: the administrators' audit log (admin_audit) */
  audit: Duration;
  /**
   * the mailbox change log (SyncFolderItems, EWS pull subscriptions): rows younger than `minAge`
   * are always kept, so a client that synchronises within it never has to start over; older rows
   * go once every live pull subscription has read past them, and past `maxAge` even when one has
   * not (that subscription then ends, as a lapsed one does)
   */
  changeLog: { minAge: Duration; maxAge: Duration };
  /** seconds between purge runs */
  interval: number;
  /** rows per statement: each batch is one short write transaction */
  batch: number;
}

const DAY = 86_400;

export const DEFAULT_RETENTION: RetentionPolicy = {
  delivered: 30 * DAY,
  audit: 365 * DAY,
  changeLog: { minAge: 7 * DAY, maxAge: 90 * DAY },
  interval: 300,
  batch: 200,
};

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY };

/** "30d" → 2592000, 45 → 45, "forever" → "forever"; undefined when it is none of these (or not positive). */
export function parseDuration(value: unknown): Duration | undefined {
  if (value === FOREVER) return FOREVER;
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/.exec(value);
  if (match === null) return undefined;
  const seconds = Number(match[1]) * (UNITS[match[2] as string] as number);
  return seconds > 0 ? seconds : undefined;
}

/** "30d", "12h", "90s", "forever": how check-config shows a duration. */
export function formatDuration(d: Duration): string {
  if (d === FOREVER) return FOREVER;
  for (const [unit, size] of [['d', DAY], ['h', 3600], ['m', 60]] as const) if (d >= size && d % size === 0) return `${d / size}${unit}`;
  return `${d}s`;
}

/** Rows older than this (epoch ms) may go; undefined: keep forever. */
export function cutoff(d: Duration, now: number): number | undefined {
  return d === FOREVER ? undefined : now - d * 1000;
}

/** One line per setting, for `parley check-config`. */
export function describeRetention(p: RetentionPolicy): string[] {
  return [
    `delivered offline messages (spool entries, messages, trace): ${formatDuration(p.delivered)}; waiting and failed entries: until delivered or an administrator acts`,
    `audit log: ${formatDuration(p.audit)}`,
    `mailbox change log: at least ${formatDuration(p.changeLog.minAge)}, then once every pull subscription read past it, at most ${formatDuration(p.changeLog.maxAge)}`,
    `purge: every ${formatDuration(p.interval)}, ${p.batch} rows a statement`,
  ];
}
