// Federation with partner organisations (issue 15). So far the administration only: the
// organisation's switches (CsAccessEdgeConfiguration), the allowed and blocked partner domains,
// and the decision the federation link will ask. Users' CsExternalAccessPolicy is in src/settings.
export type { FederationDecision, FederationQuestion, FederationRefusalCode, PartnerRoute } from './decision.ts';
export { describeRoute, federationDecision, partnerRoute } from './decision.ts';
export type { HostPort } from './names.ts';
export { formatHostPort, parseDomain, parseHostPort } from './names.ts';
export type { AccessEdgeChanges, AccessEdgeConfiguration, DomainChanges, DomainList, PartnerDomain } from './repository.ts';
export {
  ACCESS_EDGE_IDENTITY, accessEdgeValues, addDomain, findDomain, getAccessEdge, listDomains, removeDomain, requireDomain, updateAccessEdge, updateDomain,
} from './repository.ts';
export { FEDERATION_MIGRATIONS } from './schema.ts';
