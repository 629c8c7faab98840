// `parley chat`: a terminal client on the client SDK. Exit codes: 0 signed out (/quit, Ctrl-C,
// Ctrl-D), 1 could not sign in or the connection was lost (the reason on stderr), 2 bad arguments.

import { CHAT_USAGE, ChatUsageError, parseChatArgs } from './args.ts';
import { parseCommand } from './commands.ts';
import { ChatSession, ChatStartError } from './session.ts';
import { TerminalScreen } from './terminal.ts';
import type { TerminalInput, TerminalStreams } from './terminal.ts';

export { CHAT_USAGE, DEFAULT_SERVER, parseChatArgs } from './args.ts';
export { parseCommand, type ChatCommand } from './commands.ts';

export interface ChatIo extends TerminalStreams {
  err: (line: string) => void;
}

export async function runChatCommand(argv: readonly string[], io: ChatIo): Promise<number> {
  let options;
  try {
    options = parseChatArgs(argv);
  } catch (error) {
    if (!(error instanceof ChatUsageError)) throw error;
    io.err(`parley chat: ${error.message}\n\n${CHAT_USAGE}`);
    return 2;
  }
  if (options === 'help') {
    io.output.write(`${CHAT_USAGE}\n`);
    return 0;
  }
  const screen = new TerminalScreen(io);
  try {
    const password = io.env.PARLEY_PASSWORD ?? (await screen.askPassword(`Password for ${options.address}: `));
    if (password === null || password === '') {
      io.err('parley chat: no password given');
      return 1;
    }
    const session = new ChatSession(options, password, screen);
    try {
      await session.start();
    } catch (error) {
      if (!(error instanceof ChatStartError)) throw error;
      io.err(`parley chat: ${error.message}`);
      return 1;
    }
    screen.startPrompt();
    const lost = session.lost.then((reason): { kind: 'lost'; reason: string } => ({ kind: 'lost', reason }));
    for (;;) {
      const input: TerminalInput | { kind: 'lost'; reason: string } = await Promise.race([screen.next(), lost]);
      if (input.kind === 'lost') {
        await session.stop();
        screen.close();
        io.err(`parley chat: lost the connection to ${options.server}: ${input.reason}`);
        return 1;
      }
      if (input.kind !== 'line' || !(await session.run(parseCommand(input.line)))) break;
    }
    screen.show(['Signing out…']);
    await session.stop();
    return 0;
  } finally {
    screen.close();
  }
}
