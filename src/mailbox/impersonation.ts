// The ApplicationImpersonation right of Exchange, reduced to what Parley needs: a list of accounts
// that may act as any local user through the ExchangeImpersonation SOAP header. Nobody has it by default.
import { parseAddress } from '../directory/index.ts';
import type { Database } from '../storage/index.ts';

export function grantImpersonation(db: Database, address: string, now: () => number = Date.now): void {
  db.prepare('INSERT INTO mail_impersonation_rights (address, granted_at) VALUES (?, ?) ON CONFLICT (address) DO NOTHING').run(parseAddress(address).address, now());
}

/** True when the account had the right. */
export function revokeImpersonation(db: Database, address: string): boolean {
  return Number(db.prepare('DELETE FROM mail_impersonation_rights WHERE address = ?').run(parseAddress(address).address).changes) > 0;
}

export function canImpersonate(db: Database, address: string): boolean {
  return db.prepare('SELECT 1 AS x FROM mail_impersonation_rights WHERE address = ?').get(address.toLowerCase()) !== undefined;
}

export function listImpersonators(db: Database): string[] {
  return (db.prepare('SELECT address FROM mail_impersonation_rights ORDER BY address').all() as Array<{ address: string }>).map((r) => r.address);
}
