// Message text cut into what the views show: plain runs and links. Pure, and never HTML: the
// views put each run into a text node, and a link only as an <a> whose href is an http(s) URL
// the URL parser accepted (no javascript:, data:, or anything else).

export type TextRun = { kind: 'text'; text: string } | { kind: 'link'; text: string; href: string };

// A URL as people paste them; trailing punctuation of the sentence is not part of it.
const URL_LIKE = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"»]+$/;

/** The runs of `text`: links only for http: and https:. */
export function textRuns(text: string): TextRun[] {
  const runs: TextRun[] = [];
  let at = 0;
  for (const match of text.matchAll(URL_LIKE)) {
    const start = match.index;
    const raw = match[0].replace(TRAILING, '');
    const href = safeHref(raw);
    if (href === null) continue;
    if (start > at) runs.push({ kind: 'text', text: text.slice(at, start) });
    runs.push({ kind: 'link', text: raw, href });
    at = start + raw.length;
  }
  if (at < text.length) runs.push({ kind: 'text', text: text.slice(at) });
  return runs;
}

/** The normalised URL when it is http(s), else null. */
export function safeHref(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}
