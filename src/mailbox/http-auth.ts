// HTTP Basic (RFC 7617) with the user's Parley password, for EWS and autodiscover, and the small
// response writer both use. TLS is the deployment's business (plain HTTP only on loopback by default).
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

export function challenge(domain: string): Record<string, string> {
  return { 'www-authenticate': `Basic realm="${domain.replace(/["\\]/g, '')}", charset="UTF-8"` };
}

export function send(res: http.ServerResponse, product: string, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), server: product, ...extra });
  res.end(body);
}

/** TLS, or a peer on loopback (a local TLS-terminating proxy, tests): where a Basic password may travel. */
export function isSecureOrLocal(req: http.IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  const peer = req.socket.remoteAddress ?? '';
  return peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
}
