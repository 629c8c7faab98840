// Output as PowerShell's Format-List shows it: `Name : Value`, the names padded to the longest,
// a blank line between objects; booleans as True/False, TimeSpans as 00:02:00, $Null as nothing.
// With --json: an array of objects, TimeSpans as the same strings, dates in ISO 8601.

import { formatTimeSpan } from '../settings/index.ts';
import type { OutputObject, OutputValue } from './types.ts';

export function formatList(objects: readonly OutputObject[]): string[] {
  const lines: string[] = [];
  objects.forEach((object, index) => {
    if (index > 0) lines.push('');
    const width = Math.max(0, ...object.map(([name]) => name.length));
    for (const [name, value] of object) lines.push(`${name.padEnd(width)} : ${textOf(value)}`.trimEnd());
  });
  return lines;
}

export function formatJson(objects: readonly OutputObject[]): string {
  return JSON.stringify(objects.map((object) => Object.fromEntries(object.map(([name, value]) => [name, jsonOf(value)]))), null, 2);
}

function textOf(value: OutputValue): string {
  if (value === null) return '';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return formatTimeSpan(value.timeSpanSeconds);
  return String(value);
}

function jsonOf(value: OutputValue): string | number | boolean | null {
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return formatTimeSpan(value.timeSpanSeconds);
  return value;
}
