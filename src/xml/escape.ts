// Escaping for XML we write ourselves (we use no XML builder). Characters that XML 1.0 does not
// allow at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF) cannot be escaped either
// (XML 1.0 §2.2, production [2] Char), so they are removed.

// Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
const ILLEGAL = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Removes the characters XML 1.0 does not allow. */
export function stripIllegalXmlChars(s: string): string {
  return s.replace(ILLEGAL, '');
}

/** For element content. `\r` is written as a reference so that it survives end-of-line handling. */
export function escapeXmlText(s: string): string {
  return stripIllegalXmlChars(s).replace(/[&<>\r]/g, (c) => TEXT[c] ?? c);
}

/** For an attribute value in double or single quotes; whitespace is kept through attribute-value normalisation. */
export function escapeXmlAttr(s: string): string {
  return stripIllegalXmlChars(s).replace(/[&<>"'\t\n\r]/g, (c) => ATTR[c] ?? c);
}

const TEXT: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const ATTR: Record<string, string> = { ...TEXT, '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;' };
