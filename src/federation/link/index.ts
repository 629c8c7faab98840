// The federation link's machinery: partners' certificates (RFC 6125), SRV order (RFC 2782), the
// targets of a route and the pool of outbound connections. The DNS it asks is src/dns.
export { certificateNames, checkPartnerIdentity, matchingName, nameMatches } from './cert-names.ts';
export { orderSrv, serviceRefused } from './srv.ts';
export { expectedHosts, FEDERATION_PORT, routeTargets, SRV_PREFIX, targetAddresses } from './targets.ts';
export type { PartnerDns, Target, Targets } from './targets.ts';
export { PartnerPool, unreachable } from './pool.ts';
export type { Dial, PoolOptions } from './pool.ts';
export { PartnerCas } from './trust.ts';
