// The Warning header field of a response (RFC 3261 §20.43) as text for a person:
//   Warning = "Warning" HCOLON warning-value *(COMMA warning-value)
//   warning-value = warn-code SP warn-agent SP warn-text      ; warn-text = quoted-string
// Parley's server puts the reason of every refusal there (399 "…"), so clients show it instead
// of a bare status code. Pure.

import type { Headers } from '../sip/pure.ts';

/** The warn-text of the first Warning, unquoted; '' when there is none. */
export function warningTextOf(response: { headers: Headers }): string {
  const value = response.headers.get('warning');
  if (value === undefined) return '';
  const quoted = /"((?:[^"\\]|\\.)*)"/.exec(value);
  return (quoted?.[1] ?? value).replace(/\\(.)/g, '$1');
}
