// Where an IMAP mailbox server is and how the connection is protected: `imaps://host[:993]` (TLS
// from the first byte) or `imap://host[:143]` (STARTTLS, required). Credentials cross this
// connection for every mailbox Parley delivers to (a master user's password reaches them all), so
// a cleartext connection is allowed only to a loopback address, where nothing else is on the path.
import { isIP } from 'node:net';

export interface ImapEndpoint {
  host: string;
  port: number;
  /** TLS from the start (imaps://) */
  secure: boolean;
  /** imap://: upgrade with STARTTLS, and refuse to go on when the server does not offer it */
  starttls: boolean;
}

/** Why `url` (with the `starttls` setting, default: required off loopback) is not usable, or undefined. */
export function imapEndpointError(url: string, starttls?: boolean): string | undefined {
  const parsed = parseImapUrl(url);
  if (typeof parsed === 'string') return parsed;
  if (!parsed.secure && starttls === false && !isLoopback(parsed.host)) {
    return `${url} is not a loopback address, so the connection must be protected: use imaps:// or leave starttls on (the master user's password would cross the network in clear)`;
  }
  return undefined;
}

/** The endpoint of a checked URL (imapEndpointError said nothing). */
export function imapEndpoint(url: string, starttls?: boolean): ImapEndpoint {
  const parsed = parseImapUrl(url);
  if (typeof parsed === 'string') throw new TypeError(parsed);
  return { ...parsed, starttls: !parsed.secure && (starttls ?? !isLoopback(parsed.host)) };
}

function parseImapUrl(url: string): Omit<ImapEndpoint, 'starttls'> | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not a URL such as imaps://mail.example.com or imap://127.0.0.1:143`;
  }
  if (u.protocol !== 'imaps:' && u.protocol !== 'imap:') return `${url} must start with imaps:// (TLS) or imap:// (STARTTLS)`;
  if (u.username !== '' || u.password !== '' || (u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') {
    return `${url} must be only imaps:// or imap://, a host and an optional port (credentials and the folder are separate settings)`;
  }
  if (u.hostname === '') return `${url} names no host`;
  const secure = u.protocol === 'imaps:';
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? (secure ? 993 : 143) : Number(u.port), secure };
}

/** 127.0.0.0/8, ::1 and localhost: a connection that never leaves the machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}
