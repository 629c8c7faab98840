// Where a partner's requests go: the hosts and ports to try, in order (RFC 3263 §4.2 as Skype for
// Business federation uses it): the allowed domain's ProxyFqdn, else the default route, else the
// `_sipfederationtls._tcp.<domain>` SRV records by priority and weight, else the domain itself on
// 5061. The addresses of each host come from the same resolver (A, then AAAA).

import { isIP } from 'node:net';
import { DnsError } from '../../dns/index.ts';
import type { AddressLookup, SrvLookup } from '../../dns/index.ts';
import { orderSrv, serviceRefused } from './srv.ts';
import type { PartnerRoute } from '../decision.ts';

/** The lookups the link makes (src/dns's CachingResolver answers them, with the TTLs' cache). */
export type PartnerDns = SrvLookup & AddressLookup;

export const FEDERATION_PORT = 5061;
export const SRV_PREFIX = '_sipfederationtls._tcp.';

export interface Target {
  /** the host the certificate must name (RFC 6125 reference identifier) */
  readonly host: string;
  readonly port: number;
  /** how it was found, for warnings: `ProxyFqdn`, `DefaultRouteFqdn`, `SRV`, `A/AAAA of the domain` */
  readonly source: string;
}

export type Targets =
  | { readonly ok: true; readonly targets: readonly Target[] }
  | { readonly ok: false; readonly warning: string };

/** The targets of a route, in the order to try them. */
export async function routeTargets(dns: PartnerDns, domain: string, route: PartnerRoute, random: () => number = Math.random): Promise<Targets> {
  switch (route.kind) {
    case 'proxy':
      return { ok: true, targets: [{ host: route.target.host, port: route.target.port ?? FEDERATION_PORT, source: 'ProxyFqdn' }] };
    case 'default-route':
      return { ok: true, targets: [{ host: route.target.host, port: route.target.port ?? FEDERATION_PORT, source: 'DefaultRouteFqdn' }] };
    case 'dns-srv': {
      const name = `${SRV_PREFIX}${domain}`;
      let records;
      try {
        records = (await dns.srv(name)).records;
      } catch (err) {
        return { ok: false, warning: `${domain} cannot be looked up: ${(err as Error).message}` };
      }
      if (serviceRefused(records)) return { ok: false, warning: `${domain} takes no federation: its ${name} record names "."` };
      if (records.length > 0) return { ok: true, targets: orderSrv(records, random).map((r) => ({ host: r.target, port: r.port, source: `SRV ${name}` })) };
      // no SRV record: the domain itself, on the federation port
      return { ok: true, targets: [{ host: domain, port: FEDERATION_PORT, source: `A/AAAA of ${domain} (it has no ${name} record)` }] };
    }
  }
}

/** The hosts a partner's certificate may name for `domain` to be verified: its route's host, or its SRV targets. */
export async function expectedHosts(dns: PartnerDns, domain: string, route: PartnerRoute): Promise<{ hosts: string[]; dnsProblem?: string }> {
  const hosts: string[] = [];
  if (route.kind !== 'dns-srv') hosts.push(route.target.host);
  try {
    const records = (await dns.srv(`${SRV_PREFIX}${domain}`)).records;
    const targets = records.map((r) => r.target).filter((t) => t !== '');
    // with no SRV record, requests to the domain go to the domain's own name (routeTargets)
    if (records.length === 0 && route.kind === 'dns-srv') hosts.push(domain);
    hosts.push(...targets);
  } catch (err) {
    if (!(err instanceof DnsError)) throw err;
    return { hosts, dnsProblem: err.message };
  }
  return { hosts: [...new Set(hosts)] };
}

/** The addresses of a target's host: itself when it is an IP address. */
export async function targetAddresses(dns: PartnerDns, host: string): Promise<{ ok: true; addresses: readonly string[] } | { ok: false; warning: string }> {
  if (isIP(host) !== 0) return { ok: true, addresses: [host] };
  try {
    const answer = await dns.addresses(host);
    if (answer.records.length === 0) return { ok: false, warning: `${host} has no A or AAAA record` };
    return { ok: true, addresses: answer.records };
  } catch (err) {
    return { ok: false, warning: `${host} cannot be looked up: ${(err as Error).message}` };
  }
}
