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
  return JSON.stringify(toJsonObjects(objects), null, 2);
}

export type JsonOutputObject = Record<string, string | number | boolean | null>;

/** Output as plain JSON objects (what --json prints and the admin API answers). */
export function toJsonObjects(objects: readonly OutputObject[]): JsonOutputObject[] {
  return objects.map((object) => Object.fromEntries(object.map(([name, value]) => [name, jsonOf(value)])));
}

/**
 * The admin API's JSON objects back as output, for the remote CLI: formatList and formatJson then
 * print exactly what local mode prints (TimeSpans and dates arrive as the strings they show as).
 * Values of other shapes are shown as their JSON text.
 */
export function fromJsonObjects(objects: readonly Readonly<Record<string, unknown>>[]): OutputObject[] {
  return objects.map((object) =>
    Object.entries(object).map(([name, value]): readonly [string, OutputValue] => [
      name,
      value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : JSON.stringify(value) ?? null,
    ]),
  );
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
