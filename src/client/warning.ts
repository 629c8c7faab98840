// The Warning header field of a response (RFC 3261 §20.43) as text for a person:
//   Warning = "Warning" HCOLON warning-value *(COMMA warning-value)
//   warning-value = warn-code SP warn-agent SP warn-text      ; warn-text = quoted-string
// Parley's server puts the reason of every refusal there (399 "…"), so clients show it instead
// of a bare status code. Pure.

import { parseWarning, splitHeaderList } from '../sip/pure.ts';
import type { Headers } from '../sip/pure.ts';

/** The texts of Warning header values, joined; a value that does not parse is kept as written. */
export function warningText(values: readonly string[]): string | undefined {
  const texts: string[] = [];
  for (const value of values) {
    let parts: string[];
    try {
      parts = splitHeaderList(value);
    } catch {
      parts = [value];
    }
    for (const part of parts) texts.push(parseWarning(part)?.text ?? part.trim());
  }
  const joined = texts.filter((t) => t !== '').join('; ');
  return joined === '' ? undefined : joined;
}

/** The Warning text of a response; '' when it has none. */
export function warningTextOf(response: { headers: Headers }): string {
  return warningText(response.headers.getAll('warning')) ?? '';
}
