// Federation with partner organisations (issue 15): the administration (the organisation's
// switches, CsAccessEdgeConfiguration; the allowed and blocked partner domains; the decisions), the
// gate the router asks (gate.ts) and the link's machinery (link/: DNS, certificates, connections).
// Users' CsExternalAccessPolicy is in src/settings.
export type { FederationDecision, FederationQuestion, FederationRefusalCode, InboundQuestion, PartnerRoute } from './decision.ts';
export { describeRoute, federationDecision, FederationRules, inboundDecision, partnerRoute } from './decision.ts';
export { FederationLink, type GateOptions } from './gate.ts';
export * from './link/index.ts';
export type { HostPort } from './names.ts';
export { formatHostPort, parseDomain, parseHostPort } from './names.ts';
export type { AccessEdgeChanges, AccessEdgeConfiguration, DomainChanges, DomainList, PartnerDomain } from './repository.ts';
export {
  ACCESS_EDGE_IDENTITY, accessEdgeValues, addDomain, findDomain, getAccessEdge, listDomains, removeDomain, requireDomain, updateAccessEdge, updateDomain,
} from './repository.ts';
export { FEDERATION_MIGRATIONS } from './schema.ts';
