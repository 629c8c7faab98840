// A message's text: text nodes, line breaks kept by CSS (white-space: pre-wrap), and links only
// for http(s), opening in a new tab without opener or referrer. A text/html message is shown
// only as the transcripts' allow-list sanitiser leaves it (a few formatting elements, no
// attribute, so no link, image or handler); nothing else ever becomes HTML.

import { sanitizeHtml } from '../../../offline/html.ts';
import { textRuns } from '../text.ts';

export function MessageText({ text, html = false }: { text: string; html?: boolean }) {
  if (html) return <span class="html-text" dangerouslySetInnerHTML={{ __html: sanitizeHtml(text) }} />;
  return (
    <>
      {textRuns(text).map((run, i) =>
        run.kind === 'link' ? (
          <a key={i} href={run.href} target="_blank" rel="noopener noreferrer">
            {run.text}
          </a>
        ) : (
          run.text
        ),
      )}
    </>
  );
}
