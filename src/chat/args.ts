// The command line of `parley chat`. Pure: argv in, options or a usage error out (exit 2).

import { parseArgs } from 'node:util';
import { ClientError, parseServerUrl } from '../client/index.ts';
import { parseAddress, DirectoryError } from '../directory/index.ts';

export const DEFAULT_SERVER = 'tcp://127.0.0.1:5060';

export const CHAT_USAGE = `Usage: parley chat --user ADDRESS [--server URL] [--ews-url URL]

  --user ADDRESS   your SIP address, e.g. alice@parley.local
  --server URL     tcp://HOST:PORT, tls://HOST:PORT, ws://HOST:PORT/sip or wss://…
                   (default ${DEFAULT_SERVER}: a server on this machine)
  --ews-url URL    where your mailbox's EWS is, for /missed (default: what the
                   server announces, else http://SERVER-HOST:8080/EWS/Exchange.asmx)

The password is asked for without echo, or read from PARLEY_PASSWORD.
Inside, /help lists the commands; Ctrl-D or /quit signs out.`;

export interface ChatOptions {
  /** `alice@parley.local` */
  address: string;
  server: string;
  ewsUrl?: string;
}

export class ChatUsageError extends Error {}

/** `--help` gives 'help'; anything wrong throws ChatUsageError with what to fix. */
export function parseChatArgs(argv: readonly string[]): ChatOptions | 'help' {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: { user: { type: 'string' }, server: { type: 'string' }, 'ews-url': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    throw new ChatUsageError((error as Error).message);
  }
  if (values.help === true) return 'help';
  if (positionals.length > 0) throw new ChatUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.user === undefined) throw new ChatUsageError('missing --user ADDRESS (your SIP address, e.g. alice@parley.local)');
  if (!values.user.replace(/^sips?:/i, '').includes('@')) throw new ChatUsageError(`--user ${JSON.stringify(values.user)} has no domain: write it as user@domain, e.g. ${values.user}@parley.local`);
  let address: string;
  try {
    address = parseAddress(values.user).address;
  } catch (error) {
    if (error instanceof DirectoryError) throw new ChatUsageError(`--user: ${error.message}`);
    throw error;
  }
  const server = values.server ?? DEFAULT_SERVER;
  try {
    parseServerUrl(server);
  } catch (error) {
    if (error instanceof ClientError) throw new ChatUsageError(`--server: ${error.message}`);
    throw error;
  }
  const options: ChatOptions = { address, server };
  if (values['ews-url'] !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(values['ews-url']);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ChatUsageError(`--ews-url ${JSON.stringify(values['ews-url'])} is not an http(s) URL`);
    options.ewsUrl = values['ews-url'];
  }
  return options;
}

/** Where EWS is when the server does not say: its HTTP port on the SIP server's host (8080 unless the URL is ws). */
export function fallbackEwsUrl(server: string): string {
  const s = parseServerUrl(server);
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  if (s.scheme === 'ws' || s.scheme === 'wss') return `${s.scheme === 'wss' ? 'https' : 'http'}://${host}:${s.port}/EWS/Exchange.asmx`;
  return `http://${host}:8080/EWS/Exchange.asmx`;
}
