// message/cpim (RFC 3862): the wrapper some clients (RCS, MSRP-minded ones) put around an IM. It
// lives with SIP because MESSAGE carries it: the router checks its From, the offline transcript
// reads its text and time.
// §2 Overall message structure, after the outer Content-Type (here: the SIP header):
//
//   h: message headers (From, To, cc, DateTime, Subject, NS, Require), one per line, UTF-8
//   s: blank line
//   e: the encapsulated MIME object: MIME headers (Content-Type…), blank line, the content
//
// §2.2: message header lines are `Name: value` ending in CRLF and are never folded; names may carry
// a namespace prefix (`MyFeatures.VitalMessageOption: …`) and a parameter (`Subject:;lang=fr …`).
// The MIME headers follow MIME (RFC 2045), where folding is allowed. We accept LF alone as a line
// end too. Pure: bytes in, a structure (or undefined when the bytes are not CPIM) out; never throws.

export interface CpimHeader {
  /** as written, including any namespace prefix */
  name: string;
  value: string;
}

export interface CpimMessage {
  /** the message headers, in order */
  headers: CpimHeader[];
  /** the MIME headers of the encapsulated object, unfolded, in order */
  contentHeaders: CpimHeader[];
  /** the encapsulated object's Content-Type value */
  contentType: string;
  /** the encapsulated content, its Content-Transfer-Encoding undone */
  body: Uint8Array;
}

const UTF8 = new TextDecoder('utf-8');
const LF = 0x0a;
const CR = 0x0d;

// A header name: printable US-ASCII except ":" (RFC 5322 ftext), which covers CPIM's prefixed names.
const HEADER_LINE = /^([!-9;-~]+):[ \t]*(.*)$/s;

/** The header lines from `start` up to a blank line, and where the part after it starts; undefined without that blank line. */
function headerLines(bytes: Uint8Array, start: number): { lines: string[]; next: number } | undefined {
  const lines: string[] = [];
  let p = start;
  while (p < bytes.length) {
    const lf = bytes.indexOf(LF, p);
    if (lf < 0) return undefined;
    const end = lf > p && bytes[lf - 1] === CR ? lf - 1 : lf;
    if (end === p) return { lines, next: lf + 1 };
    lines.push(UTF8.decode(bytes.subarray(p, end)));
    p = lf + 1;
  }
  return undefined;
}

function parseHeaders(lines: readonly string[], folding: boolean): CpimHeader[] | undefined {
  const headers: CpimHeader[] = [];
  for (const line of lines) {
    const last = headers.at(-1);
    if (folding && /^[ \t]/.test(line) && last !== undefined) {
      last.value = `${last.value} ${line.trim()}`;
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (m === null) return undefined;
    headers.push({ name: m[1] as string, value: (m[2] as string).trim() });
  }
  return headers;
}

/** The first header of that name (case-insensitive), as RFC 3862 §2.2 and MIME compare names. */
export function headerValue(headers: readonly CpimHeader[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

// RFC 2045 §6.8 and §6.7.
function undoTransferEncoding(body: Uint8Array, encoding: string | undefined): Uint8Array | undefined {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case '7bit':
    case '8bit':
    case 'binary':
      return body;
    case 'base64':
      return Buffer.from(UTF8.decode(body).replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return undefined;
  }
}

function decodeQuotedPrintable(body: Uint8Array): Uint8Array {
  const out: number[] = [];
  const hex = (c: number | undefined): number => {
    if (c === undefined) return -1;
    if (c >= 0x30 && c <= 0x39) return c - 0x30;
    const u = c & ~0x20;
    return u >= 0x41 && u <= 0x46 ? u - 0x37 : -1;
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c !== 0x3d) {
      out.push(c);
      continue;
    }
    const hi = hex(body[i + 1]);
    const lo = hex(body[i + 2]);
    if (hi >= 0 && lo >= 0) {
      out.push(hi * 16 + lo);
      i += 2;
    } else if (body[i + 1] === CR && body[i + 2] === LF) {
      i += 2; // soft line break
    } else if (body[i + 1] === LF) {
      i += 1;
    } else {
      out.push(c); // a lone "=" is kept, as §6.7 (note 1) suggests
    }
  }
  return Uint8Array.from(out);
}

/**
 * The parts of a message/cpim body; undefined when it is not one: a missing blank line after
 * either header block, a line that is not a header, no Content-Type in the MIME headers, or a
 * Content-Transfer-Encoding we do not know.
 */
export function parseCpim(bytes: Uint8Array): CpimMessage | undefined {
  const first = headerLines(bytes, 0);
  if (first === undefined) return undefined;
  const headers = parseHeaders(first.lines, false);
  if (headers === undefined) return undefined;
  const second = headerLines(bytes, first.next);
  if (second === undefined) return undefined;
  const contentHeaders = parseHeaders(second.lines, true);
  if (contentHeaders === undefined) return undefined;
  const contentType = headerValue(contentHeaders, 'Content-Type');
  if (contentType === undefined) return undefined;
  const body = undoTransferEncoding(bytes.subarray(second.next), headerValue(contentHeaders, 'Content-Transfer-Encoding'));
  if (body === undefined) return undefined;
  return { headers, contentHeaders, contentType, body };
}

// RFC 3339 §5.6:
//   date-time      = full-date "T" full-time
//   full-date      = date-fullyear "-" date-month "-" date-mday
//   full-time      = partial-time time-offset
//   partial-time   = time-hour ":" time-minute ":" time-second [time-secfrac]
//   time-offset    = "Z" / time-numoffset;  time-numoffset = ("+" / "-") time-hour ":" time-minute
// "T" and "Z" may be lower case (§5.6 NOTE); a space for "T" is allowed by the same note.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** The instant an RFC 3339 date-time names, or undefined when the text is not one (or names no real day). */
export function parseRfc3339(text: string): Date | undefined {
  const m = RFC3339.exec(text.trim());
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  // a leap second (:60) is shown as the last ordinary second before it
  d.setUTCHours(hour, minute, Math.min(second, 59), second === 60 ? 999 : ms);
  return new Date(d.getTime() - offsetMinutes * 60_000);
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** The CPIM DateTime (RFC 3862 §4), when there is one and it is a valid RFC 3339 date-time. */
export function cpimDateTime(message: CpimMessage): Date | undefined {
  const value = headerValue(message.headers, 'DateTime');
  return value === undefined ? undefined : parseRfc3339(value);
}
