// The body of a message-summary NOTIFY (RFC 3842 §5.2, application/simple-message-summary). Pure.
//
//   message-summary   = msg-status-line CRLF [msg-account CRLF] [*(msg-summary-line CRLF)]
//                       [ *opt-msg-headers ]
//   msg-status-line   = "Messages-Waiting" HCOLON msg-status        ; msg-status = "yes" / "no"
//   msg-account       = "Message-Account" HCOLON Account-URI
//   msg-summary-line  = message-context-class HCOLON newmsgs SLASH oldmsgs
//                       [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
//   opt-msg-headers   = CRLF 1*(extension-header CRLF)
//
// message-context-class is one of RFC 3458's classes (voice-message, fax-message, pager-message,
// multimedia-message, text-message, none). Header names are case-insensitive (RFC 3842 §5.2 uses
// SIP's HCOLON rules); LF alone is accepted for CRLF.

import { ClientError } from './errors.ts';

export const MESSAGE_SUMMARY_EVENT = 'message-summary';
export const MESSAGE_SUMMARY_TYPE = 'application/simple-message-summary';

export interface MessageCounts {
  new: number;
  old: number;
  urgentNew: number;
  urgentOld: number;
}

export interface MessageSummary {
  waiting: boolean;
  /** the Message-Account URI, when given */
  account?: string;
  /** the text-message class (Parley's missed conversations); zeros when the line is absent */
  textMessages: { new: number; old: number };
  /** every message-context-class line, by lower-cased class name */
  classes: Record<string, MessageCounts>;
}

const CLASSES: ReadonlySet<string> = new Set(['voice-message', 'fax-message', 'pager-message', 'multimedia-message', 'text-message', 'none']);
const COUNTS = /^(\d{1,9})\s*\/\s*(\d{1,9})(?:\s*\(\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*\))?$/;

/** Parses the body; throws ClientError INVALID_BODY when the status line or a summary line is malformed. */
export function parseMessageSummary(body: string): MessageSummary {
  const lines = body.replace(/\r\n?/g, '\n').split('\n');
  let waiting: boolean | undefined;
  let account: string | undefined;
  const classes: Record<string, MessageCounts> = {};
  for (const [index, line] of lines.entries()) {
    // a blank line ends the summary: what follows are opt-msg-headers (message headers, ignored)
    if (line.trim() === '') {
      if (waiting !== undefined) break;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw invalid(`line ${index + 1} is not "Name: value": ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'messages-waiting') {
      const status = value.toLowerCase();
      if (status !== 'yes' && status !== 'no') throw invalid(`Messages-Waiting is ${JSON.stringify(value)}, not yes or no`);
      waiting = status === 'yes';
    } else if (name === 'message-account') {
      if (value !== '') account = value;
    } else if (CLASSES.has(name)) {
      const m = COUNTS.exec(value);
      if (m === null) throw invalid(`${line.slice(0, colon).trim()} is ${JSON.stringify(value)}, not new/old or new/old (urgent-new/urgent-old)`);
      classes[name] = { new: Number(m[1]), old: Number(m[2]), urgentNew: Number(m[3] ?? 0), urgentOld: Number(m[4] ?? 0) };
    }
    // other lines: extensions we do not know, ignored
  }
  if (waiting === undefined) throw invalid('the body has no Messages-Waiting line');
  const text = classes['text-message'];
  const summary: MessageSummary = { waiting, textMessages: { new: text?.new ?? 0, old: text?.old ?? 0 }, classes };
  if (account !== undefined) summary.account = account;
  return summary;
}

function invalid(why: string): ClientError {
  return new ClientError('INVALID_BODY', `message-summary body: ${why}`);
}
