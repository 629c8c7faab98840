// Untrusted HTML from IM clients (text/html MESSAGE bodies), made safe to show in a mailbox item.
//
// One small tokenizer, modelled on the WHATWG HTML tokenizer (HTML Living Standard §13.2.5) but
// reduced to what we need: tag names, where a tag ends (attribute values in quotes may hold ">"),
// comments, raw-text elements (script, style…), character references. A policy walk over its tokens
// keeps only allow-listed elements, without attributes, drops the content of script-like elements,
// and closes whatever is still open at the end. Two writers use that walk:
//   sanitizeHtml → an HTML fragment;   htmlToText → plain text (block elements become line breaks).
// The output is always written anew from the tokens, never copied from the input, and all text is
// escaped on the way out: a tokenizer mistake on hostile input can lose text, never let markup through.

/** Elements kept (without attributes); everything else is dropped and only its text kept. */
export const ALLOWED_TAGS: ReadonlySet<string> = new Set(['b', 'i', 'u', 'em', 'strong', 'br', 'p', 'div', 'span', 'ul', 'ol', 'li', 'code', 'pre', 'blockquote']);

/** Dropped with everything inside them. */
const DROP_CONTENT = new Set(['script', 'style', 'iframe', 'object', 'applet', 'template', 'title', 'head', 'noscript', 'noembed', 'noframes', 'frameset', 'svg', 'math', 'audio', 'video', 'canvas', 'select']);
/** Foreign (SVG/MathML) roots, where "/>" really closes the element. */
const FOREIGN = new Set(['svg', 'math']);
/** Raw text: the content is not markup and ends only at the matching end tag (§13.1.2, RAWTEXT/script data). */
const RAW_TEXT = new Set(['script', 'style', 'xmp', 'iframe', 'noembed', 'noframes', 'noscript']);
/** Escapable raw text: no markup inside, but character references are decoded (RCDATA). */
const RCDATA = new Set(['title', 'textarea']);
/** Allowed elements that start a new block (a <p> open around them is closed first, as browsers do). */
const ALLOWED_BLOCKS = new Set(['p', 'div', 'ul', 'ol', 'li', 'pre', 'blockquote']);
/** Dropped elements that still separate lines of text. */
const OTHER_BLOCKS = new Set(['html', 'body', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'table', 'thead', 'tbody', 'tfoot', 'tr', 'caption', 'section', 'article', 'header', 'footer', 'nav', 'aside', 'main', 'address', 'center', 'dl', 'dt', 'dd', 'figure', 'figcaption', 'form', 'fieldset', 'legend', 'details', 'summary', 'hgroup', 'textarea', 'xmp', 'listing', 'plaintext']);
/** Dropped elements that separate words (table cells). */
const CELLS = new Set(['td', 'th']);
/** Open allowed elements at most; deeper ones are dropped (their text kept). */
const MAX_DEPTH = 32;
/** Nested dropped elements we count at most (keeps the walk linear on `<svg>` × 100,000). */
const MAX_DROP_DEPTH = 256;

// ---------------------------------------------------------------------------------------------
// Escaping and text hygiene

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content or a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

// C0 and C1 controls except TAB and LF, and the noncharacters U+FFFE/U+FFFF (never shown, and not
// allowed in the XML the mailbox item travels in).
const CONTROLS = /[\0-\x08\x0B\x0D-\x1F\x7F-\x9F\uFFFE\uFFFF]/g;

/** Line ends made LF, FF made a space, other controls removed, lone surrogates replaced. */
export function cleanText(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/\f/g, ' ').replace(CONTROLS, '').toWellFormed();
}

// ---------------------------------------------------------------------------------------------
// Character references (§13.2.5.72ff). We know the Latin-1 names, the ones legacy content may use
// without ";", and the common typographic ones; an unknown name stays as it was written.

// U+00A0..U+00FF in order.
const LATIN1 = 'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml'.split(' ');

const NAMED = new Map<string, string>([
  ['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"], ['AMP', '&'], ['LT', '<'], ['GT', '>'], ['QUOT', '"'], ['COPY', '©'], ['REG', '®'],
  ...LATIN1.map((name, k): [string, string] => [name, String.fromCharCode(0xa0 + k)]),
]);
/** Names that are also recognised without the ";" (the legacy ones). */
const LEGACY = new Set(NAMED.keys());
LEGACY.delete('apos');
for (const [name, cp] of Object.entries({
  OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6, tilde: 0x2dc,
  ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d, bdquo: 0x201e,
  dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032, Prime: 0x2033,
  lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044, euro: 0x20ac, trade: 0x2122,
  larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194, minus: 0x2212, infin: 0x221e,
  ne: 0x2260, le: 0x2264, ge: 0x2265, spades: 0x2660, clubs: 0x2663, hearts: 0x2665, diams: 0x2666,
})) NAMED.set(name, String.fromCodePoint(cp));

// §13.2.5.80: numeric references to 0x80..0x9F mean the windows-1252 characters.
const WINDOWS_1252 = new TextDecoder('windows-1252');

function fromCodePoint(cp: number): string {
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\uFFFD';
  if (cp >= 0x80 && cp <= 0x9f) return WINDOWS_1252.decode(Uint8Array.of(cp));
  return String.fromCodePoint(cp);
}

/** Digits without leading zeros. */
function significant(digits: string): number {
  return digits.replace(/^0+/, '').length;
}

const REFERENCE = /&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|([A-Za-z][A-Za-z0-9]*)(;?))/g;

/** Decodes character references in text. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(REFERENCE, (whole, hex: string | undefined, dec: string | undefined, name: string | undefined, semi: string | undefined) => {
    if (hex !== undefined) return fromCodePoint(significant(hex) > 6 ? Infinity : parseInt(hex, 16));
    if (dec !== undefined) return fromCodePoint(significant(dec) > 7 ? Infinity : parseInt(dec, 10));
    if (name === undefined) return whole;
    if (semi === ';') return NAMED.get(name) ?? whole;
    // without ";", the longest legacy name the text starts with: "&copy2024" is "©2024"
    for (let len = Math.min(name.length, 6); len >= 2; len--) {
      const value = LEGACY.has(name.slice(0, len)) ? NAMED.get(name.slice(0, len)) : undefined;
      if (value !== undefined) return value + name.slice(len);
    }
    return whole;
  });
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

type Token = { kind: 'text'; text: string } | { kind: 'start'; name: string; selfClosing: boolean } | { kind: 'end'; name: string };

function isAsciiAlpha(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\n' || c === '\t' || c === '\f';
}

/**
 * Reads a tag from its name (at p, after "<" or "</") to its ">", stepping over attributes and
 * quoted values (which may hold ">"). Undefined when the input ends inside the tag: the tag is
 * then dropped, as §13.2.5 does ("eof-in-tag").
 */
function readTag(s: string, p: number): { name: string; selfClosing: boolean; end: number } | undefined {
  const n = s.length;
  let j = p;
  while (j < n && !isSpace(s[j]) && s[j] !== '/' && s[j] !== '>') j++;
  const name = s.slice(p, j).toLowerCase();
  while (j < n) {
    const c = s[j];
    if (isSpace(c)) j++;
    else if (c === '>') return { name, selfClosing: false, end: j + 1 };
    else if (c === '/') {
      if (s[j + 1] === '>') return { name, selfClosing: true, end: j + 2 };
      j++;
    } else {
      // attribute name (its first character may be "=") …
      j++;
      while (j < n && !isSpace(s[j]) && s[j] !== '/' && s[j] !== '>' && s[j] !== '=') j++;
      while (j < n && isSpace(s[j])) j++;
      if (s[j] !== '=') continue;
      // … and value
      j++;
      while (j < n && isSpace(s[j])) j++;
      const q = s[j];
      if (q === '"' || q === "'") {
        const close = s.indexOf(q, j + 1);
        if (close < 0) return undefined;
        j = close + 1;
      } else {
        while (j < n && !isSpace(s[j]) && s[j] !== '>') j++;
      }
    }
  }
  return undefined;
}

/** Where the end tag of a raw-text element starts ("</name" then space, "/" or ">"), or -1. */
function findEndTag(s: string, from: number, name: string): number {
  for (let i = s.indexOf('</', from); i >= 0; i = s.indexOf('</', i + 2)) {
    const after = s[i + 2 + name.length];
    if (s.slice(i + 2, i + 2 + name.length).toLowerCase() === name && (isSpace(after) || after === '/' || after === '>')) return i;
  }
  return -1;
}

/** Skips a bogus comment ("<!…>", "<?…>", "</ …>"): to the next ">". */
function skipPast(s: string, from: number, end: string): number {
  const i = s.indexOf(end, from);
  return i < 0 ? s.length : i + end.length;
}

function* tokenize(input: string): Generator<Token> {
  const s = input.replace(/\r\n?/g, '\n');
  const n = s.length;
  let text = '';
  let i = 0;
  const flush = function* (): Generator<Token> {
    if (text !== '') yield { kind: 'text', text: decodeEntities(text) };
    text = '';
  };
  while (i < n) {
    const lt = s.indexOf('<', i);
    if (lt < 0) {
      text += s.slice(i);
      break;
    }
    text += s.slice(i, lt);
    i = lt;
    const next = s[i + 1];
    if (isAsciiAlpha(next)) {
      const tag = readTag(s, i + 1);
      if (tag === undefined) break;
      yield* flush();
      yield { kind: 'start', name: tag.name, selfClosing: tag.selfClosing };
      i = tag.end;
      if (tag.name === 'plaintext') {
        yield { kind: 'text', text: s.slice(i) };
        return;
      }
      if (RAW_TEXT.has(tag.name) || RCDATA.has(tag.name)) {
        const close = findEndTag(s, i, tag.name);
        const content = s.slice(i, close < 0 ? n : close);
        if (content !== '') yield { kind: 'text', text: RCDATA.has(tag.name) ? decodeEntities(content) : content };
        i = close < 0 ? n : close;
      }
    } else if (next === '/') {
      const after = s[i + 2];
      if (isAsciiAlpha(after)) {
        const tag = readTag(s, i + 2);
        if (tag === undefined) break;
        yield* flush();
        yield { kind: 'end', name: tag.name };
        i = tag.end;
      } else if (after === '>') {
        i += 3; // "</>" is ignored
      } else if (after === undefined) {
        text += '</';
        i = n;
      } else {
        i = skipPast(s, i + 2, '>');
      }
    } else if (next === '!') {
      if (s.startsWith('<!--', i)) {
        if (s.startsWith('<!-->', i)) i += 5;
        else if (s.startsWith('<!--->', i)) i += 6;
        else {
          const a = s.indexOf('-->', i + 4);
          const b = s.indexOf('--!>', i + 4);
          i = a < 0 && b < 0 ? n : a < 0 || (b >= 0 && b < a) ? b + 4 : a + 3;
        }
      } else if (s.startsWith('<![CDATA[', i)) {
        i = skipPast(s, i + 9, ']]>');
      } else {
        i = skipPast(s, i + 2, '>'); // doctype and other "<!…>"
      }
    } else if (next === '?') {
      i = skipPast(s, i + 2, '>'); // processing instruction
    } else {
      text += '<';
      i++;
    }
  }
  yield* flush();
}

// ---------------------------------------------------------------------------------------------
// Policy walk: what survives, as a stream of safe events for the two writers.

type SafeEvent =
  | { kind: 'text'; text: string }
  | { kind: 'open' | 'close'; name: string }
  | { kind: 'br' }
  /** a dropped block element began or ended: the text around it is on separate lines */
  | { kind: 'boundary' }
  /** a dropped table cell: the text around it is separate words */
  | { kind: 'space' };

function walk(html: string): SafeEvent[] {
  const out: SafeEvent[] = [];
  const open: string[] = [];
  const dropping: string[] = [];
  const closeTo = (k: number): void => {
    while (open.length > k) out.push({ kind: 'close', name: open.pop() as string });
  };
  for (const t of tokenize(html)) {
    if (dropping.length > 0) {
      if (t.kind === 'start') {
        const head = t.name === 'body' ? dropping.indexOf('head') : -1;
        if (head >= 0) dropping.length = head; // <body> ends an unclosed <head>
        else if (DROP_CONTENT.has(t.name) && !(t.selfClosing && FOREIGN.has(t.name)) && dropping.length < MAX_DROP_DEPTH) dropping.push(t.name);
      } else if (t.kind === 'end') {
        const k = dropping.lastIndexOf(t.name);
        if (k >= 0) dropping.length = k;
      }
      continue;
    }
    if (t.kind === 'text') {
      const text = cleanText(t.text);
      if (text !== '') out.push({ kind: 'text', text });
    } else if (t.kind === 'start') {
      const name = t.name;
      if (DROP_CONTENT.has(name)) {
        if (!(t.selfClosing && FOREIGN.has(name))) dropping.push(name);
      } else if (name === 'br') {
        out.push({ kind: 'br' });
      } else if (ALLOWED_TAGS.has(name)) {
        if (ALLOWED_BLOCKS.has(name)) {
          const p = open.lastIndexOf('p');
          if (p >= 0) closeTo(p);
        }
        if (name === 'li') {
          const li = open.lastIndexOf('li');
          if (li > Math.max(open.lastIndexOf('ul'), open.lastIndexOf('ol'))) closeTo(li);
        }
        if (open.length < MAX_DEPTH) {
          open.push(name);
          out.push({ kind: 'open', name });
        }
      } else if (CELLS.has(name)) {
        out.push({ kind: 'space' });
      } else if (OTHER_BLOCKS.has(name)) {
        out.push({ kind: 'boundary' });
      }
    } else {
      const name = t.name;
      if (name === 'br') {
        out.push({ kind: 'br' }); // "</br>" is a <br> (§13.2.6.4.7)
      } else if (ALLOWED_TAGS.has(name)) {
        const k = open.lastIndexOf(name);
        if (k >= 0) closeTo(k);
        else if (ALLOWED_BLOCKS.has(name)) out.push({ kind: 'boundary' });
      } else if (CELLS.has(name)) {
        out.push({ kind: 'space' });
      } else if (OTHER_BLOCKS.has(name)) {
        out.push({ kind: 'boundary' });
      }
    }
  }
  closeTo(0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writers

/**
 * The safe HTML fragment for untrusted HTML: only ALLOWED_TAGS, with no attributes, every element
 * closed, all text escaped. Never throws.
 */
export function sanitizeHtml(html: string): string {
  let out = '';
  let lineStart = true; // nothing visible since the last line break
  let pendingBreak = false; // a dropped block element was here
  let pendingSpace = false; // a dropped table cell was here
  let endsWithSpace = true;
  for (const ev of walk(html)) {
    switch (ev.kind) {
      case 'text':
        if (/\S/.test(ev.text)) {
          if (pendingBreak && !lineStart) out += '<br>';
          else if (pendingSpace && !lineStart && !endsWithSpace && !/^\s/.test(ev.text)) out += ' ';
          pendingBreak = pendingSpace = lineStart = false;
        }
        out += escapeHtml(ev.text);
        endsWithSpace = /\s$/.test(ev.text);
        break;
      case 'open':
      case 'close':
        out += ev.kind === 'open' ? `<${ev.name}>` : `</${ev.name}>`;
        if (ALLOWED_BLOCKS.has(ev.name)) {
          lineStart = true;
          pendingBreak = false;
        }
        break;
      case 'br':
        out += '<br>';
        lineStart = true;
        pendingBreak = false;
        break;
      case 'boundary':
        pendingBreak = true;
        break;
      case 'space':
        pendingSpace = true;
        break;
    }
  }
  return out;
}

/**
 * The text a person sees in untrusted HTML: tags removed, block elements and <br> as line
 * breaks, list items as "- ", whitespace collapsed as a browser does (except in <pre>),
 * character references decoded. Never throws.
 */
export function htmlToText(html: string): string {
  let out = '';
  let lineHasText = false;
  let prefix = '';
  let pre = 0;
  let afterPreOpen = false;
  const lineBreak = (): void => {
    if (lineHasText) out += '\n';
    lineHasText = false;
  };
  for (const ev of walk(html)) {
    const justOpenedPre = afterPreOpen;
    afterPreOpen = false;
    switch (ev.kind) {
      case 'text': {
        let text = ev.text;
        if (pre > 0) {
          if (justOpenedPre && text.startsWith('\n')) text = text.slice(1); // §13.2.6.4.7: a newline right after <pre> is ignored
        } else {
          text = text.replace(/[ \t\n]+/g, ' ');
          if (!lineHasText || out.endsWith(' ')) text = text.trimStart();
        }
        if (text === '') break;
        if (!lineHasText && prefix !== '') out += prefix;
        prefix = '';
        out += text;
        lineHasText = !text.endsWith('\n');
        break;
      }
      case 'open':
      case 'close':
        if (!ALLOWED_BLOCKS.has(ev.name)) break;
        lineBreak();
        if (ev.name === 'pre') {
          pre = Math.max(0, pre + (ev.kind === 'open' ? 1 : -1));
          afterPreOpen = ev.kind === 'open';
        }
        prefix = ev.kind === 'open' && ev.name === 'li' ? '- ' : '';
        break;
      case 'br':
        out += '\n';
        lineHasText = false;
        break;
      case 'boundary':
        lineBreak();
        break;
      case 'space':
        if (lineHasText && !out.endsWith(' ')) out += ' ';
        break;
    }
  }
  return out
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/^\n+|\n+$/g, '');
}
