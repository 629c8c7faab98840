// The ApplicationImpersonation right of Exchange, reduced to what Parley needs: a list of accounts
// that may act as any local user through the ExchangeImpersonation SOAP header. Nobody has it by default.
import { parseAddress } from '../directory/index.ts';
import type { Sql } from '../storage/index.ts';

export async function grantImpersonation(sql: Sql, address: string, now: () => number = Date.now): Promise<void> {
  await sql.run('INSERT INTO mail_impersonation_rights (address, granted_at) VALUES (?, ?) ON CONFLICT (address) DO NOTHING', [parseAddress(address).address, now()]);
}

/** True when the account had the right. */
export async function revokeImpersonation(sql: Sql, address: string): Promise<boolean> {
  return (await sql.run('DELETE FROM mail_impersonation_rights WHERE address = ?', [parseAddress(address).address])).changes > 0;
}

export async function canImpersonate(sql: Sql, address: string): Promise<boolean> {
  return (await sql.get('SELECT 1 AS x FROM mail_impersonation_rights WHERE address = ?', [address.toLowerCase()])) !== undefined;
}

export async function listImpersonators(sql: Sql): Promise<string[]> {
  return (await sql.all<{ address: string }>('SELECT address FROM mail_impersonation_rights ORDER BY address')).map((r) => r.address);
}
