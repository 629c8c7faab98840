// Output of the administration commands to a terminal: plain aligned tables, and nothing from
// stored data (message text, subjects) that could drive the administrator's terminal.

/** Removes control characters (ANSI escapes included) but keeps tabs and newlines. */
export const stripControls = (s: string): string => s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '');

/** One line of at most `max` characters. */
export const oneLine = (s: string, max: number): string => {
  const flat = stripControls(s.replace(/\s+/g, ' '));
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** Rows as aligned columns; the first row is the header, the last column is not padded. */
export function table(out: (line: string) => void, rows: string[][]): void {
  const widths = (rows[0] ?? []).map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  for (const r of rows) out(r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  '));
}
