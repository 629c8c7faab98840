// What a line typed in `parley chat` asks for. Pure: a line in, a command (or why not) out.
//
//   /msg USER text        send to USER; USER becomes the current conversation
//   /to USER              make USER the current conversation without sending
//   /presence STATE [NOTE]   STATE: available, busy, dnd, brb, away, offline (or the full names);
//                         NOTE in quotes or as the rest of the line; "/presence" alone shows yours
//   /missed [N]           list the missed conversations, or open the N-th of the list
//   /contacts  /help  /quit
//   text                  to the current conversation ("//text" sends "/text")

import { PRESENCE_STATES, presenceStateNamed } from '../client/index.ts';
import type { PresenceStateName } from '../client/index.ts';

export type ChatCommand =
  | { kind: 'say'; text: string }
  | { kind: 'msg'; to: string; text: string }
  | { kind: 'to'; to: string }
  | { kind: 'presence'; state?: PresenceStateName; note?: string }
  | { kind: 'missed'; index?: number }
  | { kind: 'contacts' }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'none' }
  | { kind: 'error'; message: string };

const STATE_WORDS = 'available, busy, dnd, brb, away or offline';

export function parseCommand(line: string): ChatCommand {
  const text = line.replace(/\s+$/, '');
  if (text.trim() === '') return { kind: 'none' };
  if (text.startsWith('//')) return { kind: 'say', text: text.slice(1) };
  if (!text.startsWith('/')) return { kind: 'say', text };
  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(text);
  const name = (match?.[1] ?? '').toLowerCase();
  const rest = match?.[2] ?? '';
  switch (name) {
    case 'msg':
    case 'm': {
      const m = /^(\S+)\s+([\s\S]+)$/.exec(rest);
      if (m === null) return { kind: 'error', message: 'usage: /msg USER text' };
      return { kind: 'msg', to: m[1]!, text: m[2]! };
    }
    case 'to':
    case 'chat': {
      const user = rest.trim();
      if (user === '' || /\s/.test(user)) return { kind: 'error', message: `usage: /${name} USER` };
      return { kind: 'to', to: user };
    }
    case 'presence':
    case 'status':
      return parsePresence(rest);
    case 'missed': {
      const arg = rest.trim();
      if (arg === '') return { kind: 'missed' };
      if (!/^\d{1,4}$/.test(arg) || Number(arg) < 1) return { kind: 'error', message: `usage: /missed [N], where N is a number from the list, not ${JSON.stringify(arg)}` };
      return { kind: 'missed', index: Number(arg) };
    }
    case 'contacts':
    case 'who':
      return { kind: 'contacts' };
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
    case 'q':
      return { kind: 'quit' };
    default:
      return { kind: 'error', message: `unknown command /${name}; /help lists the commands (start a line with // to send text that begins with /)` };
  }
}

/** `busy "in a meeting"`, `do not disturb`, `brb back in 5`: the longest leading words that name a state, then the note. */
function parsePresence(rest: string): ChatCommand {
  const text = rest.trim();
  if (text === '') return { kind: 'presence' };
  const quote = text.search(/["“]/);
  const head = quote < 0 ? text : text.slice(0, quote).trim();
  const words = head.split(/\s+/).filter((w) => w !== '');
  for (let n = Math.min(words.length, 3); n >= 1; n--) {
    const state = presenceStateNamed(words.slice(0, n).join(' '));
    if (state === undefined) continue;
    let note: string;
    if (quote >= 0) {
      if (n < words.length) return { kind: 'error', message: `put the whole note in quotes: /presence ${words.slice(0, n).join(' ')} "note"` };
      note = text.slice(quote).replace(/^["“]|["”]$/g, '');
    } else {
      note = words.slice(n).join(' ');
    }
    return note === '' ? { kind: 'presence', state } : { kind: 'presence', state, note };
  }
  return { kind: 'error', message: `"${words[0] ?? text}" is not a presence state; use ${STATE_WORDS} (${PRESENCE_STATES.join(', ')})` };
}
