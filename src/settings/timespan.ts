// TimeSpan values as PowerShell and .NET write them (TimeSpan.ToString("c")):
//   [d.]hh:mm:ss      e.g. 00:02:00 (two minutes), 1.00:00:00 (one day)
// We also accept hh:mm (.NET reads "00:02" as two minutes). Stored as whole seconds; fractions
// of a second and negative spans are refused, as none of our settings needs them.

import { SettingsError } from './errors.ts';

const PATTERN = /^(?:(\d{1,5})\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?$/;
const EXAMPLE = 'write it as hh:mm:ss or d.hh:mm:ss, e.g. 00:02:00 for two minutes or 1.00:00:00 for one day';

/** Parses `00:02:00` or `1.00:00:00` into seconds; throws SettingsError BAD_TIMESPAN. */
export function parseTimeSpan(text: string): number {
  const trimmed = text.trim();
  if (/^-/.test(trimmed)) throw bad(`"${text}" is negative; ${EXAMPLE}`);
  if (/\.\d+$/.test(trimmed) && /:\d{1,2}\.\d+$/.test(trimmed)) throw bad(`"${text}" has a fraction of a second; give whole seconds, ${EXAMPLE}`);
  const m = PATTERN.exec(trimmed);
  if (m === null) throw bad(`"${text}" is not a TimeSpan; ${EXAMPLE}`);
  const days = Number(m[1] ?? 0);
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  const seconds = Number(m[4] ?? 0);
  if (hours > 23) throw bad(`"${text}" has ${hours} hours; hours go from 0 to 23, write days as d.hh:mm:ss (e.g. 1.00:00:00)`);
  if (minutes > 59) throw bad(`"${text}" has ${minutes} minutes; minutes go from 0 to 59`);
  if (seconds > 59) throw bad(`"${text}" has ${seconds} seconds; seconds go from 0 to 59`);
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
}

/** Seconds → `00:02:00`, `1.00:00:00` (the .NET "c" format). */
export function formatTimeSpan(totalSeconds: number): string {
  if (!Number.isSafeInteger(totalSeconds) || totalSeconds < 0) throw new RangeError(`not a whole, non-negative number of seconds: ${totalSeconds}`);
  const days = Math.floor(totalSeconds / 86400);
  const rest = totalSeconds % 86400;
  const hh = String(Math.floor(rest / 3600)).padStart(2, '0');
  const mm = String(Math.floor((rest % 3600) / 60)).padStart(2, '0');
  const ss = String(rest % 60).padStart(2, '0');
  return `${days > 0 ? `${days}.` : ''}${hh}:${mm}:${ss}`;
}

function bad(message: string): SettingsError {
  return new SettingsError('BAD_TIMESPAN', message);
}
