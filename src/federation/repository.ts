// Storage of CsAccessEdgeConfiguration and of the allowed and blocked partner domains, on either
// engine. The only place with federation SQL. Every write runs in one transaction with its audit
// rows, as in src/settings.

import type { ChangeContext } from '../settings/index.ts';
import { SettingsError, recordAudit } from '../settings/index.ts';
import type { Sql } from '../storage/index.ts';
import type { HostPort } from './names.ts';
import { formatHostPort, parseHostPort } from './names.ts';

/** CsAccessEdgeConfiguration (Global only). */
export interface AccessEdgeConfiguration {
  readonly AllowFederatedUsers: boolean;
  readonly EnablePartnerDiscovery: boolean;
  /** set: -UseDefaultRouting, every partner is reached through this host; null: -UseDnsSrvRouting */
  readonly DefaultRouteFqdn: HostPort | null;
}

export interface AccessEdgeChanges {
  readonly AllowFederatedUsers?: boolean;
  readonly EnablePartnerDiscovery?: boolean;
  /** true: -UseDefaultRouting (needs a DefaultRouteFqdn, given or kept); false: -UseDnsSrvRouting */
  readonly UseDefaultRouting?: boolean;
  readonly DefaultRouteFqdn?: string;
}

export type DomainList = 'allowed' | 'blocked';

export interface PartnerDomain {
  readonly domain: string;
  readonly list: DomainList;
  /** allowed domains only: where the partner is reached instead of its DNS SRV record */
  readonly proxyFqdn: HostPort | null;
  readonly comment: string | null;
  readonly createdAt: Date;
}

export interface DomainChanges {
  /** null clears it */
  readonly ProxyFqdn?: string | null;
  readonly Comment?: string | null;
}

export const ACCESS_EDGE_IDENTITY = 'Global';
const NOUN: Readonly<Record<DomainList, string>> = { allowed: 'CsAllowedDomain', blocked: 'CsBlockedDomain' };
const MAX_COMMENT = 1024;

export async function getAccessEdge(sql: Sql): Promise<AccessEdgeConfiguration> {
  const row = await sql.get<{ allow_federated_users: number; enable_partner_discovery: number; default_route_fqdn: string | null }>(
    'SELECT allow_federated_users, enable_partner_discovery, default_route_fqdn FROM access_edge_configuration WHERE id = 1',
  );
  if (row === undefined) throw new SettingsError('UNKNOWN_IDENTITY', 'the Global CsAccessEdgeConfiguration row is missing from the database; restore it from a backup (the federation migration creates it)');
  return {
    AllowFederatedUsers: Number(row.allow_federated_users) !== 0,
    EnablePartnerDiscovery: Number(row.enable_partner_discovery) !== 0,
    DefaultRouteFqdn: row.default_route_fqdn === null ? null : parseHostPort(row.default_route_fqdn, 'DefaultRouteFqdn'),
  };
}

/** Set-CsAccessEdgeConfiguration: checks the result as a whole (default routing needs its host), audits what changes. */
export async function updateAccessEdge(sql: Sql, changes: AccessEdgeChanges, change: ChangeContext): Promise<AccessEdgeConfiguration> {
  return sql.transaction(async (tx) => {
    const current = await getAccessEdge(tx);
    const given = changes.DefaultRouteFqdn === undefined ? undefined : parseHostPort(changes.DefaultRouteFqdn, 'DefaultRouteFqdn');
    const useDefault = changes.UseDefaultRouting ?? current.DefaultRouteFqdn !== null;
    if (!useDefault && given !== undefined) {
      throw new SettingsError('BAD_VALUE', '-DefaultRouteFqdn applies only with default routing: add -UseDefaultRouting (or leave -DefaultRouteFqdn out to keep DNS SRV routing)');
    }
    const route = useDefault ? given ?? current.DefaultRouteFqdn : null;
    if (useDefault && route === null) throw new SettingsError('BAD_VALUE', '-UseDefaultRouting needs -DefaultRouteFqdn host[:port], the host every partner is reached through');
    const next: AccessEdgeConfiguration = {
      AllowFederatedUsers: changes.AllowFederatedUsers ?? current.AllowFederatedUsers,
      EnablePartnerDiscovery: changes.EnablePartnerDiscovery ?? current.EnablePartnerDiscovery,
      DefaultRouteFqdn: route,
    };
    await tx.run('UPDATE access_edge_configuration SET allow_federated_users = ?, enable_partner_discovery = ?, default_route_fqdn = ? WHERE id = 1',
      [Number(next.AllowFederatedUsers), Number(next.EnablePartnerDiscovery), route === null ? null : formatHostPort(route)]);
    const before = accessEdgeValues(current);
    for (const [name, after] of Object.entries(accessEdgeValues(next))) {
      if (before[name] !== after) await recordAudit(tx, change, ACCESS_EDGE_IDENTITY, name, before[name] ?? null, after);
    }
    return next;
  });
}

/** The configuration as the cmdlets show it and the audit log records it. */
export function accessEdgeValues(c: AccessEdgeConfiguration): Record<string, string | null> {
  return {
    AllowFederatedUsers: c.AllowFederatedUsers ? 'True' : 'False',
    EnablePartnerDiscovery: c.EnablePartnerDiscovery ? 'True' : 'False',
    UseDnsSrvRouting: c.DefaultRouteFqdn === null ? 'True' : 'False',
    UseDefaultRouting: c.DefaultRouteFqdn === null ? 'False' : 'True',
    DefaultRouteFqdn: c.DefaultRouteFqdn === null ? null : formatHostPort(c.DefaultRouteFqdn),
  };
}

/** The domains of one list (or both), by name. */
export async function listDomains(sql: Sql, list?: DomainList): Promise<PartnerDomain[]> {
  const rows = list === undefined
    ? await sql.all<Row>(`SELECT ${COLUMNS} FROM federation_domains ORDER BY domain`)
    : await sql.all<Row>(`SELECT ${COLUMNS} FROM federation_domains WHERE list = ? ORDER BY domain`, [list]);
  return rows.map(domainOf);
}

/** A domain on either list, or undefined. `domain` as parseDomain returns it. */
export async function findDomain(sql: Sql, domain: string): Promise<PartnerDomain | undefined> {
  const row = await sql.get<Row>(`SELECT ${COLUMNS} FROM federation_domains WHERE domain = ?`, [domain]);
  return row === undefined ? undefined : domainOf(row);
}

/** The domain on `list`; UNKNOWN_IDENTITY otherwise (saying when it is on the other list). */
export async function requireDomain(sql: Sql, list: DomainList, domain: string): Promise<PartnerDomain> {
  const found = await findDomain(sql, domain);
  if (found?.list === list) return found;
  const other = found === undefined ? '' : ` (it is on the ${found.list} list: see Get-${NOUN[found.list]})`;
  throw new SettingsError('UNKNOWN_IDENTITY', `there is no ${NOUN[list]} ${domain}${other}; see them with Get-${NOUN[list]}`);
}

/** New-CsAllowedDomain / New-CsBlockedDomain. A domain is on at most one list. */
export async function addDomain(sql: Sql, list: DomainList, domain: string, given: DomainChanges, change: ChangeContext): Promise<PartnerDomain> {
  return sql.transaction(async (tx) => {
    const found = await findDomain(tx, domain);
    if (found !== undefined) {
      throw new SettingsError('IDENTITY_EXISTS', found.list === list
        ? `${NOUN[list]} ${domain} already exists; change it with Set-${NOUN[list]}`
        : `${domain} is already on the ${found.list} list (${NOUN[found.list]}) and cannot be on both; remove it first with Remove-${NOUN[found.list]} -Identity ${domain}`);
    }
    const values = checked(list, given);
    await tx.run('INSERT INTO federation_domains (domain, list, proxy_fqdn, comment, created_at) VALUES (?, ?, ?, ?, ?)',
      [domain, list, values.proxyFqdn, values.comment, change.now()]);
    await recordAudit(tx, change, domain, null, null, 'created');
    if (values.proxyFqdn !== null) await recordAudit(tx, change, domain, 'ProxyFqdn', null, values.proxyFqdn);
    if (values.comment !== null) await recordAudit(tx, change, domain, 'Comment', null, values.comment);
    return requireDomain(tx, list, domain);
  });
}

/** Set-CsAllowedDomain / Set-CsBlockedDomain: the given properties; audits those that change. */
export async function updateDomain(sql: Sql, list: DomainList, domain: string, changes: DomainChanges, change: ChangeContext): Promise<PartnerDomain> {
  return sql.transaction(async (tx) => {
    const current = await requireDomain(tx, list, domain);
    const before = { proxyFqdn: current.proxyFqdn === null ? null : formatHostPort(current.proxyFqdn), comment: current.comment };
    const given = checked(list, changes);
    const after = {
      proxyFqdn: changes.ProxyFqdn === undefined ? before.proxyFqdn : given.proxyFqdn,
      comment: changes.Comment === undefined ? before.comment : given.comment,
    };
    await tx.run('UPDATE federation_domains SET proxy_fqdn = ?, comment = ? WHERE domain = ?', [after.proxyFqdn, after.comment, domain]);
    if (before.proxyFqdn !== after.proxyFqdn) await recordAudit(tx, change, domain, 'ProxyFqdn', before.proxyFqdn, after.proxyFqdn);
    if (before.comment !== after.comment) await recordAudit(tx, change, domain, 'Comment', before.comment, after.comment);
    return requireDomain(tx, list, domain);
  });
}

export async function removeDomain(sql: Sql, list: DomainList, domain: string, change: ChangeContext): Promise<void> {
  await sql.transaction(async (tx) => {
    await requireDomain(tx, list, domain);
    await tx.run('DELETE FROM federation_domains WHERE domain = ?', [domain]);
    await recordAudit(tx, change, domain, null, 'existed', 'removed');
  });
}

// ---------------------------------------------------------------------------------------------

type Row = { domain: string; list: DomainList; proxy_fqdn: string | null; comment: string | null; created_at: number };
const COLUMNS = 'domain, list, proxy_fqdn, comment, created_at';

function domainOf(row: Row): PartnerDomain {
  return {
    domain: row.domain,
    list: row.list,
    proxyFqdn: row.proxy_fqdn === null ? null : parseHostPort(row.proxy_fqdn, 'ProxyFqdn'),
    comment: row.comment,
    createdAt: new Date(Number(row.created_at)),
  };
}

function checked(list: DomainList, given: DomainChanges): { proxyFqdn: string | null; comment: string | null } {
  if (list === 'blocked' && given.ProxyFqdn !== undefined && given.ProxyFqdn !== null) {
    throw new SettingsError('BAD_VALUE', 'a blocked domain has no ProxyFqdn: nothing is ever sent to it');
  }
  const comment = given.Comment ?? null;
  if (comment !== null && comment.length > MAX_COMMENT) throw new SettingsError('BAD_VALUE', `-Comment is longer than ${MAX_COMMENT} characters`);
  return {
    proxyFqdn: given.ProxyFqdn === undefined || given.ProxyFqdn === null ? null : formatHostPort(parseHostPort(given.ProxyFqdn, 'ProxyFqdn')),
    comment: comment === '' ? null : comment,
  };
}
