// MIME multipart bodies (RFC 2046 §5.1.1) as a SIP client reads them: the parts of a
// multipart/related NOTIFY (RFC 2387, RFC 4662 §5). Pure: a decoded body in, parts out.
//
//   multipart-body    = [preamble CRLF] dash-boundary transport-padding CRLF body-part
//                       *encapsulation close-delimiter transport-padding [CRLF epilogue]
//   encapsulation     = delimiter transport-padding CRLF body-part
//   delimiter         = CRLF dash-boundary          ; dash-boundary = "--" boundary
//   close-delimiter   = delimiter "--"
//   body-part         = MIME-part-headers [CRLF *OCTET]
//
// LF alone is accepted for CRLF (some stacks write it); header names are case-insensitive.

import { ClientError } from './errors.ts';

export interface MimePart {
  /** header fields by lower-cased name (the last one wins), unfolded */
  headers: Map<string, string>;
  /** Content-Type as sent; RFC 2046 §5.1: text/plain when absent */
  contentType: string;
  /** Content-ID without its angle brackets, when there is one */
  contentId?: string;
  body: string;
}

/** More parts than any contact list holds (src/presence/list-limits.ts): a defence, not a feature. */
export const MAX_MIME_PARTS = 10_000;

/** Splits a multipart body at `boundary`; throws ClientError INVALID_BODY when it is not one. */
export function parseMultipart(body: string, boundary: string): MimePart[] {
  if (boundary === '' || boundary.length > 70) throw new ClientError('INVALID_BODY', `multipart boundary ${JSON.stringify(boundary)} is not 1 to 70 characters (RFC 2046 §5.1.1)`);
  const dash = `--${boundary}`;
  let at = body.startsWith(dash) ? 0 : delimiterAt(body, dash, 0);
  if (at < 0) throw new ClientError('INVALID_BODY', `multipart body has no boundary ${JSON.stringify(dash)}`);
  const parts: MimePart[] = [];
  for (;;) {
    const afterDash = at + dash.length;
    if (body.startsWith('--', afterDash)) return parts; // the close delimiter; the epilogue is ignored
    const lineEnd = body.indexOf('\n', afterDash);
    if (lineEnd < 0) break;
    const start = lineEnd + 1;
    const next = delimiterAt(body, dash, start - 1);
    if (next < 0) break;
    const end = body[next - 2] === '\r' ? next - 2 : next - 1;
    if (parts.length >= MAX_MIME_PARTS) throw new ClientError('INVALID_BODY', `multipart body has more than ${MAX_MIME_PARTS} parts`);
    parts.push(readPart(body.slice(start, Math.max(start, end))));
    at = next;
  }
  throw new ClientError('INVALID_BODY', `multipart body has no close delimiter ${JSON.stringify(`${dash}--`)}`);
}

/** Where the next `dash` at the start of a line begins, searching from `from` (-1 when none). */
function delimiterAt(body: string, dash: string, from: number): number {
  const found = body.indexOf(`\n${dash}`, from);
  return found < 0 ? -1 : found + 1;
}

function readPart(text: string): MimePart {
  let split = -1;
  let skip = 0;
  if (text.startsWith('\r\n')) [split, skip] = [0, 2];
  else if (text.startsWith('\n')) [split, skip] = [0, 1];
  else {
    const crlf = text.indexOf('\r\n\r\n');
    const lf = text.indexOf('\n\n');
    if (crlf >= 0 && (lf < 0 || crlf < lf)) [split, skip] = [crlf, 4];
    else if (lf >= 0) [split, skip] = [lf, 2];
  }
  const head = split < 0 ? text : text.slice(0, split);
  const headers = new Map<string, string>();
  let last: string | null = null;
  for (const line of head.split(/\r?\n/)) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== null) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`.trim()); // folded (RFC 5322 §2.2.3)
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ClientError('INVALID_BODY', `multipart part header ${JSON.stringify(line.slice(0, 60))} has no name`);
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  const part: MimePart = { headers, contentType: headers.get('content-type') ?? 'text/plain', body: split < 0 ? '' : text.slice(split + skip) };
  const id = headers.get('content-id');
  if (id !== undefined) part.contentId = id.trim().replace(/^<|>$/g, '');
  return part;
}
