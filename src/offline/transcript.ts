// The readable transcript of an offline conversation (MISSION.md, "Offline IM, precisely" 4): the
// body of the one IPM.Note.Microsoft.Missed item (and of the sender's .Conversation copy) made from
// the spooled MESSAGEs, as HTML and as plain text. Pure: no I/O, no clock; never throws on bad input.
//
// Message bodies are untrusted. text/plain is escaped; text/html goes through the allow-list
// sanitiser (html.ts); message/cpim (RFC 3862) is unwrapped first (cpim.ts). Names are untrusted too.

import { cpimDateTime, parseContentType, parseCpim } from '../sip/index.ts';
import { cleanText, escapeHtml, htmlToText, sanitizeHtml } from './html.ts';

export interface TranscriptMessage {
  /** who wrote it; absent: the transcript's sender (an offline conversation has only the one) */
  from?: TranscriptParty;
  /** when Parley received it */
  receivedAt: Date;
  /** SIP Content-Type header value as received, e.g. 'text/plain;charset=UTF-8', 'text/html', 'message/cpim' */
  contentType: string;
  body: Uint8Array;
}

/** name may be '': the address is shown instead */
export interface TranscriptParty {
  name: string;
  address: string;
}

export interface Transcript {
  html: string;
  text: string;
}

const EMPTY = '(empty message)';
/** message/cpim inside message/cpim… at most this deep */
const MAX_NESTING = 4;
/** a content type shown in "cannot be shown" is cut to this length */
const MAX_TYPE_SHOWN = 80;
/** continuation lines of a message in the plain text */
const INDENT = '    ';

interface Shown {
  /** HTML fragment, safe to put in an element */
  html: string;
  /** plain text, lines separated by LF */
  text: string;
  /** the CPIM DateTime, when the message carried a valid one */
  at?: Date;
}

function fromText(text: string): Shown {
  const tidy = cleanText(text).replace(/[ \t]+$/gm, '').replace(/^\n+|\s+$/g, '');
  if (tidy === '') return fromNote(EMPTY);
  // keep runs of spaces and leading indentation visible; keep line breaks
  const html = escapeHtml(tidy)
    .replace(/ {2}/g, ' &nbsp;')
    .replace(/^ /gm, '&nbsp;')
    .replace(/\n/g, '<br>\n');
  return { html, text: tidy };
}

function fromHtml(markup: string): Shown {
  const text = htmlToText(markup);
  if (text.trim() === '') return fromNote(EMPTY);
  return { html: sanitizeHtml(markup), text };
}

/** A note of ours about a message (empty, cannot be shown), set apart from message text. */
function fromNote(note: string): Shown {
  return { html: `<i>${escapeHtml(note)}</i>`, text: note };
}

function cannotShow(type: string): Shown {
  let shown = cleanText(type).replace(/\s+/g, ' ').trim();
  if (shown.length > MAX_TYPE_SHOWN) shown = shown.slice(0, MAX_TYPE_SHOWN).toWellFormed() + '…';
  return fromNote(`[a message of type ${shown === '' ? 'unknown' : shown} that cannot be shown]`);
}

/**
 * Decodes text in its charset (RFC 2046 §4.1.2) by the WHATWG Encoding labels, as TextDecoder
 * knows them. Note that WHATWG reads us-ascii and iso-8859-1/latin1 as windows-1252, a superset
 * that is what senders mean in practice. A charset TextDecoder does not know is read as UTF-8,
 * undecodable bytes becoming U+FFFD.
 */
function decodeCharset(bytes: Uint8Array, charset: string | null | undefined): string {
  let label = (charset ?? 'utf-8').trim().toLowerCase();
  if (label === 'utf-16' || label === 'utf16') {
    // RFC 2781 §4.3: by its byte order mark, and big-endian without one
    label = bytes[0] === 0xff && bytes[1] === 0xfe ? 'utf-16le' : 'utf-16be';
  }
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/** The media type; with bad parameters, the type alone (parameters only refine it); undefined when there is no type/subtype. */
function mediaType(value: string): ReturnType<typeof parseContentType> | undefined {
  for (const candidate of [value, value.split(';')[0] ?? '']) {
    try {
      return parseContentType(candidate);
    } catch {
      // next candidate
    }
  }
  return undefined;
}

function show(contentType: string, body: Uint8Array, depth: number): Shown {
  // RFC 2045 §5.2: without a Content-Type, text/plain is meant
  const media = mediaType(contentType.trim() === '' ? 'text/plain' : contentType);
  if (media === undefined) return cannotShow(contentType);
  if (body.length === 0) return fromNote(EMPTY);
  const type = `${media.type}/${media.subtype}`;
  const charset = media.params.get('charset');
  if (type === 'text/html' || type === 'application/xhtml+xml') return fromHtml(decodeCharset(body, charset));
  // RFC 2046 §4.1.4: an unknown subtype of text is treated as text/plain
  if (media.type === 'text') return fromText(decodeCharset(body, charset));
  if (type === 'message/cpim' && depth < MAX_NESTING) {
    const cpim = parseCpim(body);
    // not CPIM after all: the bytes as text, escaped, so nothing the sender wrote is lost
    if (cpim === undefined) return fromText(decodeCharset(body, 'utf-8'));
    const inner = show(cpim.contentType, cpim.body, depth + 1);
    const at = inner.at ?? cpimDateTime(cpim);
    return at === undefined ? inner : { ...inner, at };
  }
  return cannotShow(type);
}

function showMessage(m: TranscriptMessage): Shown {
  try {
    return show(typeof m.contentType === 'string' ? m.contentType : '', m.body instanceof Uint8Array ? m.body : new Uint8Array(0), 0);
  } catch {
    // not expected; but one bad message must not cost the others their transcript
    return cannotShow(String(m.contentType));
  }
}

/** the text a message shows, after CPIM unwrapping and HTML→text; for previews/logs */
export function messageText(m: TranscriptMessage): string {
  return showMessage(m).text;
}

// ---------------------------------------------------------------------------------------------
// Times

interface Clock {
  /** the IANA zone actually used (the given one, or UTC when it was not valid) */
  zone: string;
  /** 'YYYY-MM-DD' and 'HH:MM:SS' in that zone; undefined for an invalid Date */
  parts(d: Date): { date: string; time: string } | undefined;
}

/** One clock per time zone: making an Intl.DateTimeFormat costs more than rendering a transcript. */
const clocks = new Map<string, Clock>();

function clock(timeZone: string | undefined): Clock {
  const key = timeZone ?? 'UTC';
  let known = clocks.get(key);
  if (known === undefined) {
    known = makeClock(key);
    if (clocks.size < 64) clocks.set(key, known);
  }
  return known;
}

function makeClock(timeZone: string): Clock {
  const options: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { ...options, timeZone });
  } catch {
    format = new Intl.DateTimeFormat('en-US', { ...options, timeZone: 'UTC' });
  }
  return {
    zone: format.resolvedOptions().timeZone,
    parts(d) {
      if (!(d instanceof Date) || Number.isNaN(d.getTime())) return undefined;
      const p: Record<string, string> = {};
      for (const part of format.formatToParts(d)) p[part.type] = part.value;
      return { date: `${(p.year ?? '').padStart(4, '0')}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}:${p.second}` };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The transcript

function partyName(p: TranscriptParty): string {
  const clean = (s: unknown): string => (typeof s === 'string' ? cleanText(s).replace(/\s+/g, ' ').trim() : '');
  return clean(p?.name) || clean(p?.address) || '(unknown)';
}

const CELL = 'padding:2px 10px 2px 0;vertical-align:top';

/**
 * `sender` and `recipient` name the two people of the conversation (the heading); each message is
 * the sender's unless it names its own `from` (a conversation history holds both directions).
 * `notes` are sentences of Parley's shown after the messages, set apart from them.
 */
export function renderTranscript(input: {
  sender: TranscriptParty;
  recipient: TranscriptParty;
  messages: readonly TranscriptMessage[];
  notes?: readonly string[];
  timeZone?: string /* IANA, default 'UTC' */;
}): Transcript {
  const sender = partyName(input.sender);
  const recipient = partyName(input.recipient);
  const time = clock(input.timeZone);
  const rows = (input.messages ?? []).map((m) => {
    const shown = showMessage(m);
    return { shown, speaker: m.from === undefined ? sender : partyName(m.from), when: time.parts(shown.at ?? m.receivedAt) };
  });
  const notes = (input.notes ?? []).map((n) => cleanText(String(n)).replace(/\s+/g, ' ').trim()).filter((n) => n !== '');
  const days = new Set(rows.flatMap((r) => (r.when === undefined ? [] : [r.when.date])));
  const oneDay = days.size === 1 ? [...days][0] : undefined;

  const heading = `Conversation between ${sender} and ${recipient}`;
  const zoneNote = `times in ${time.zone}`;

  const textLines = [`${heading} (${zoneNote})`, ''];
  for (const { shown, speaker, when } of rows) {
    const [first = '', ...rest] = shown.text.split('\n');
    textLines.push(`[${when === undefined ? 'unknown time' : `${when.date} ${when.time}`}] ${speaker}: ${first}`);
    for (const line of rest) textLines.push(line === '' ? '' : INDENT + line);
  }
  if (rows.length === 0) textLines.push('(no messages)');
  if (notes.length > 0) textLines.push('', ...notes);

  const htmlRows = rows.map(({ shown, speaker, when }) => {
    const stamp = when === undefined ? '--:--:--' : oneDay !== undefined ? when.time : `${when.date} ${when.time}`;
    return (
      `<tr><td style="${CELL};color:#666666;white-space:nowrap">${escapeHtml(stamp)}</td>` +
      `<td style="${CELL};font-weight:bold;white-space:nowrap">${escapeHtml(speaker)}</td>` +
      `<td style="${CELL}">${shown.html}</td></tr>`
    );
  });
  const html = [
    '<html><head><meta charset="utf-8"></head><body>',
    `<p><strong>${escapeHtml(heading)}</strong><br>${escapeHtml(oneDay === undefined ? zoneNote : `${oneDay}, ${zoneNote}`)}</p>`,
    rows.length === 0 ? '<p><i>(no messages)</i></p>' : `<table style="border-collapse:collapse">\n${htmlRows.join('\n')}\n</table>`,
    ...notes.map((n) => `<p><i>${escapeHtml(n)}</i></p>`),
    '</body></html>',
    '',
  ].join('\n');

  return { html, text: textLines.join('\n') + '\n' };
}

/**
 * A one-line preview of a transcript's plain text (renderTranscript's `text`) for a list of
 * conversations: the messages without heading and timestamps (`Alice: are you there? Alice: hello`),
 * whitespace collapsed, cut to `max` characters. Text not written by renderTranscript (an item made
 * through EWS) is shown collapsed as it is.
 */
export function transcriptPreview(text: string, max = 160): string {
  const lines = cleanText(text).split('\n');
  if (/^Conversation between .* \(times in [^)]*\)$/.test(lines[0] ?? '')) lines.shift();
  const shown = lines
    .map((line) => line.replace(/^\[(?:unknown time|\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})?)\] /, ''))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (shown.length <= max) return shown;
  // cut at a code point, not inside a surrogate pair
  return `${Array.from(shown).slice(0, max - 1).join('').trimEnd()}…`;
}
