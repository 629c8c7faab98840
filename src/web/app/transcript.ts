// "Save conversation": the open conversation as a plain-text file, made in the page (nothing goes
// to the server). Pure (download.ts hands the file to the browser). Skype for Business's DisableSavingIM
// (CsClientPolicy) hides the action; the view decides whether to offer it.

export interface TranscriptMessage {
  at: number;
  /** who wrote it, as the conversation shows them ("You", "Bob Brown") */
  who: string;
  /** its text (an HTML message already made into text) */
  text: string;
}

/** A title line, a blank line, then `[date time] who: text`; a message's further lines indented under it. */
export function transcriptText(title: string, messages: readonly TranscriptMessage[], lang: string): string {
  const format = new Intl.DateTimeFormat(lang, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const lines = [title, ''];
  for (const m of messages) {
    const [first = '', ...rest] = m.text.replace(/\r\n?/g, '\n').split('\n');
    lines.push(`[${format.format(new Date(m.at))}] ${m.who}: ${first}`);
    for (const line of rest) lines.push(`    ${line}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `conversation-bob-at-parley.test-2026-12-06.txt`: no character a file system refuses */
export function transcriptFileName(address: string, at: number): string {
  const day = new Date(at).toISOString().slice(0, 10);
  return `conversation-${address.replace('@', '-at-').replace(/[^A-Za-z0-9._-]/g, '_')}-${day}.txt`;
}
