// What `parley chat` shows, as lines of at most `width` columns. Pure: values in, text out.
// Text from others (messages, names, notes, subjects) is cleaned of control characters first: a
// message must not be able to move the cursor, recolour or retitle the user's terminal.

import type { MissedConversation, MailboxItem, PresenceInfo, PresenceStateName, ResponseInfo } from '../client/index.ts';
import { warningTextOf } from '../client/index.ts';

export interface Style {
  /** columns available; lines are wrapped to this */
  width: number;
  /** ANSI colours for presence states (a TTY without NO_COLOR) */
  color: boolean;
}

export const HELP = [
  'Commands:',
  '  /msg USER text       send text to USER (bob or bob@domain); USER becomes the',
  '                       current conversation',
  '  text                 send to the current conversation (//text sends "/text")',
  '  /to USER             switch the current conversation to USER, showing what',
  '                       USER wrote while another conversation was on screen',
  '  /presence STATE ["note"]  set your presence: available, busy, dnd, brb, away,',
  '                       offline (appear offline); /presence alone shows yours',
  '  /contacts            your contacts and their presence',
  '  /missed              list your missed conversations; /missed N opens one',
  '  /help                this text',
  '  /quit or Ctrl-D      sign out and leave (Ctrl-C too)',
];

const ANSI: Record<PresenceStateName, string> = {
  Available: '\u001b[32m',
  Busy: '\u001b[31m',
  'Do Not Disturb': '\u001b[31m',
  'Be Right Back': '\u001b[33m',
  Away: '\u001b[33m',
  Offline: '\u001b[90m',
};
const RESET = '\u001b[0m';

/** Removes C0/C1 controls (ESC included) except line feeds and tabs, which become spaces where a line is one line. */
export function clean(text: string, keepNewlines = false): string {
  const flat = text.replace(/\r\n?/g, '\n').replace(/\t/g, '    ');
  const stripped = flat.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '');
  return keepNewlines ? stripped : stripped.replace(/\n/g, ' ');
}

/** `14:03` in local time. */
export function clock(at: Date): string {
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** Wraps `text` (may hold newlines) to `width`, the first line after `lead`, the others indented as wide as it. */
export function wrap(lead: string, text: string, width: number): string[] {
  const indent = ' '.repeat(Math.min(lead.length, Math.floor(width / 2)));
  const room = Math.max(10, width - indent.length);
  const out: string[] = [];
  let first = true;
  for (const paragraph of text.split('\n')) {
    let rest = paragraph;
    do {
      const avail = first ? Math.max(10, width - lead.length) : room;
      let cut = rest.length <= avail ? rest.length : rest.lastIndexOf(' ', avail);
      if (cut <= 0) cut = Math.min(avail, rest.length);
      out.push(`${first ? lead : indent}${rest.slice(0, cut)}`);
      rest = rest.slice(cut).replace(/^ /, '');
      first = false;
    } while (rest.length > 0);
  }
  return out;
}

export function nameOf(address: string, displayName: string | undefined | null): string {
  return displayName === undefined || displayName === null || displayName.trim() === '' ? address : clean(displayName);
}

export function stateText(state: PresenceStateName, style: Style): string {
  return style.color ? `${ANSI[state]}${state}${RESET}` : state;
}

export function presenceLine(info: PresenceInfo, at: Date, style: Style): string[] {
  const note = info.note === undefined ? '' : ` (${clean(info.note)})`;
  return wrap(`[${clock(at)}] `, `${nameOf(info.address, info.displayName)} is now ${stateText(info.state, style)}${note}`, style.width);
}

export function contactLines(contacts: Iterable<PresenceInfo>, style: Style): string[] {
  const list = [...contacts].sort((a, b) => nameOf(a.address, a.displayName).localeCompare(nameOf(b.address, b.displayName)));
  if (list.length === 0) return ['No contacts yet. Add some in the web client, or with /msg to talk to anyone.'];
  const lines = ['Contacts:'];
  for (const c of list) {
    const who = c.displayName === undefined ? c.address : `${clean(c.displayName)} <${c.address}>`;
    const mark = c.state === 'Offline' ? 'o' : '*';
    const state = `${c.state}${c.note === undefined ? '' : ` - ${clean(c.note)}`}`;
    const left = `  ${mark} ${who}`;
    const pad = Math.max(1, 44 - left.length);
    const line = `${left}${' '.repeat(pad)}${state}`;
    const fitted = line.length > style.width ? `${line.slice(0, style.width - 3)}...` : line;
    lines.push(style.color ? fitted.replace(c.state, stateText(c.state, style)) : fitted);
  }
  return lines;
}

export function incomingLines(from: string, text: string, at: Date, style: Style): string[] {
  return wrap(`[${clock(at)}] ${clean(from)}: `, clean(text, true), style.width);
}

export function outgoingLines(to: string, text: string, at: Date, style: Style): string[] {
  return wrap(`[${clock(at)}] you -> ${clean(to)}: `, clean(text, true), style.width);
}

/** Words for a MESSAGE's final response (RFC 3428 §7): 200 delivered, 202 to the mailbox, any failure with the server's reason. */
export function outcomeText(result: Pick<ResponseInfo, 'status' | 'reason' | 'headers'>): string {
  const warning = clean(warningTextOf(result as ResponseInfo));
  if (result.status >= 200 && result.status < 300) {
    if (result.status === 202) return `offline — will be delivered to their mailbox${warning === '' ? '' : ` (${warning})`}`;
    return 'delivered';
  }
  return `not delivered: ${warning !== '' ? warning : (FAILURES[result.status] ?? (clean(result.reason) || 'the server refused it'))}`;
}

const FAILURES: Record<number, string> = {
  403: 'the server does not allow this message',
  404: 'there is no such user',
  408: 'the server did not answer in time',
  413: 'the message is too long',
  480: 'they are offline and cannot take messages now',
  486: 'they are busy and cannot take messages now',
  503: 'the server is busy; try again shortly',
};

export function missedListLines(items: readonly MissedConversation[], style: Style): string[] {
  if (items.length === 0) return ['No missed conversations.'];
  const lines = ['Missed conversations, newest first (* unread; /missed N opens one):'];
  items.forEach((item, i) => {
    const when = `${item.receivedAt.toISOString().slice(5, 10)} ${clock(item.receivedAt)}`;
    const from = nameOf(item.from.address, item.from.name);
    const line = `${String(i + 1).padStart(3)}. ${item.isRead ? ' ' : '*'} ${when}  ${from}: ${clean(item.preview ?? item.subject)}`;
    lines.push(line.length > style.width ? `${line.slice(0, style.width - 3)}...` : line);
  });
  return lines;
}

export function missedItemLines(item: MailboxItem, style: Style): string[] {
  const rule = '-'.repeat(Math.min(style.width, 60));
  return [
    rule,
    ...wrap('From:     ', `${nameOf(item.from.address, item.from.name)} <${clean(item.from.address)}>`, style.width),
    ...wrap('Received: ', item.receivedAt.toLocaleString(), style.width),
    ...wrap('Subject:  ', clean(item.subject), style.width),
    '',
    ...clean(item.bodyText, true).trim().split('\n').flatMap((l) => wrap('', l, style.width)),
    rule,
  ];
}
