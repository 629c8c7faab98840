// The federation link's machinery: partners' certificates (RFC 6125), DNS with TTLs, SRV order
// (RFC 2782), the targets of a route and the pool of outbound connections.
export { certificateNames, checkPartnerIdentity, matchingName, nameMatches } from './cert-names.ts';
export { CachingResolver, DNS_CODES, DnsError, parseServer, readAnswer } from './dns.ts';
export type { DnsAnswer, DnsServer, DnsType, DnsWire, PartnerDns, ResolverOptions } from './dns.ts';
export { orderSrv, serviceRefused } from './srv.ts';
export type { SrvRecord } from './srv.ts';
export { expectedHosts, FEDERATION_PORT, routeTargets, SRV_PREFIX, targetAddresses } from './targets.ts';
export type { Target, Targets } from './targets.ts';
export { PartnerPool, unreachable } from './pool.ts';
export type { Dial, PoolOptions } from './pool.ts';
export { PartnerCas } from './trust.ts';
