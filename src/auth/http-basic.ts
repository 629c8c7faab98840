// HTTP Basic (RFC 7617) with the user's Parley password — EWS, autodiscover and the user's presence
// endpoints sign in this way — and where such a password may travel.
import type http from 'node:http';
import { findUser, verifyPassword } from '../directory/index.ts';
import type { Database } from '../storage/index.ts';

/** The user's address when the credentials are right. Accepts `alice`, `alice@domain` and `DOMAIN\alice`. */
export async function authenticateBasic(db: Database, domain: string, header: string | undefined): Promise<string | undefined> {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon).trim().replace(/^[^\\]*\\/, '');
  const password = decoded.slice(colon + 1);
  const address = (user.includes('@') ? user : `${user}@${domain}`).toLowerCase();
  if (!(await verifyPassword(db, address, password))) return undefined;
  return findUser(db, address)?.address;
}

/** The WWW-Authenticate header of a 401 that asks for Basic credentials. */
export function basicChallenge(domain: string): Record<string, string> {
  return { 'www-authenticate': `Basic realm="${domain.replace(/["\\]/g, '')}", charset="UTF-8"` };
}

/** TLS, or a peer on loopback (a local TLS-terminating proxy, tests, the CLI on the server): where a password or token may travel. */
export function isSecureOrLocal(req: http.IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  const peer = req.socket.remoteAddress ?? '';
  return peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
}
