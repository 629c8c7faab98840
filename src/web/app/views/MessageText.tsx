// A message's text: text nodes, line breaks kept by CSS (white-space: pre-wrap), and links only
// for http(s), opening in a new tab without opener or referrer. Never HTML.

import { textRuns } from '../text.ts';

export function MessageText({ text }: { text: string }) {
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
