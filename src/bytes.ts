// Sizes in bytes as an administrator writes and reads them, the way Exchange's ByteQuantifiedSize
// does: binary units (1 KB = 1,024 bytes, 2 GB = 2,147,483,648 bytes) and "unlimited".

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;

/** Unlimited, as a number: every comparison with a size says "below the limit". */
export const UNLIMITED = Number.POSITIVE_INFINITY;

/**
 * `10485760`, `"10MB"`, `"2.3 GB"`, `"512 KB"` or `"unlimited"` → bytes (Infinity for unlimited);
 * undefined when the value is none of these.
 */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^\s*unlimited\s*$/i.test(value)) return UNLIMITED;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?\s*$/i.exec(value);
  if (m === null) return undefined;
  const unit = UNITS.indexOf(((m[2] ?? 'B').toUpperCase()) as (typeof UNITS)[number]);
  const bytes = Math.floor(Number(m[1]) * 1024 ** unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `10 MB` for exactly ten, `10.0 MB` for a little more (so a reader sees it is not exact), `unlimited`. */
export function formatBytes(bytes: number): string {
  if (bytes === UNLIMITED) return 'unlimited';
  let unit = 0;
  while (unit < UNITS.length - 1 && bytes >= 1024 ** (unit + 1)) unit++;
  const scaled = bytes / 1024 ** unit;
  return `${Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1)} ${UNITS[unit]}`;
}
