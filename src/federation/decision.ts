// Whether a local user may talk to a partner domain, and how the partner is reached: the two
// questions the federation link asks for every request across organisations. The organisation's
// rules (CsAccessEdgeConfiguration, the allowed and blocked domains) are kept in a VersionedCache
// by the router's gate, so a request does not wait for the database, and an administrator's
// change (by any process or node) counts from the next version check on; the user's policy is
// the settings capability's effective settings, which keeps its own cache.

import { DirectoryError } from '../directory/index.ts';
import { effectiveSettings } from '../settings/index.ts';
import type { Sql, VersionedCacheOptions } from '../storage/index.ts';
import { VersionedCache } from '../storage/index.ts';
import type { HostPort } from './names.ts';
import { formatHostPort, parseDomain } from './names.ts';
import { findDomain, getAccessEdge } from './repository.ts';

export type FederationRefusalCode =
  /** CsAccessEdgeConfiguration AllowFederatedUsers is False */
  | 'FEDERATION_DISABLED'
  /** not a partner domain name at all (or this server's own domain) */
  | 'BAD_DOMAIN'
  /** the domain is a CsBlockedDomain */
  | 'DOMAIN_BLOCKED'
  /** not a CsAllowedDomain, and EnablePartnerDiscovery is False */
  | 'DOMAIN_NOT_ALLOWED'
  /** the user's effective CsExternalAccessPolicy has EnableFederationAccess False (inbound: or there is no such user) */
  | 'USER_NOT_ENABLED'
  /** inbound: the partner connection's certificate was not verified for the From domain (src/federation/gate.ts) */
  | 'PARTNER_NOT_VERIFIED';

export type FederationDecision =
  | { readonly allowed: true; readonly domain: string; readonly route: PartnerRoute }
  | { readonly allowed: false; readonly code: FederationRefusalCode; readonly reason: string };

export type PartnerRoute =
  /** the allowed domain's ProxyFqdn */
  | { readonly kind: 'proxy'; readonly target: HostPort }
  /** -UseDefaultRouting: every partner through one host */
  | { readonly kind: 'default-route'; readonly target: HostPort }
  /** the partner's _sipfederationtls._tcp.<domain> record */
  | { readonly kind: 'dns-srv'; readonly domain: string };

export interface FederationQuestion {
  /** the local user's address (throws DirectoryError USER_NOT_FOUND when there is no such user) */
  readonly localUser: string;
  /** the partner's domain, any case */
  readonly partnerDomain: string;
  /** this server's own domain, never a partner */
  readonly ownDomain?: string;
}

export interface InboundQuestion {
  /** the partner's domain (the From domain of its request), any case */
  readonly partnerDomain: string;
  /** the local recipient's address; undefined for a request to no user (OPTIONS) */
  readonly recipient?: string | undefined;
  readonly ownDomain?: string;
}

/**
 * The decisions on one database. With `cache` (the router's gate), the organisation's rules are
 * kept in a VersionedCache until the federation tables change; without it every question reads
 * the database (the cmdlets, which must show what is stored now).
 */
export class FederationRules {
  readonly #sql: Sql;
  readonly #decisions: VersionedCache<FederationDecision> | undefined;
  readonly #routes: VersionedCache<PartnerRoute> | undefined;

  constructor(sql: Sql, cache?: VersionedCacheOptions | false) {
    this.#sql = sql;
    if (cache !== undefined && cache !== false) {
      this.#decisions = new VersionedCache(sql, VERSION_QUERY, cache);
      this.#routes = new VersionedCache(sql, VERSION_QUERY, cache);
    }
  }

  /**
   * The organisation's rules first (federation on, domain not blocked, allowed or discoverable),
   * then the user's policy: the first rule that fails is the refusal, with the cmdlet that changes it.
   */
  async outbound(q: FederationQuestion): Promise<FederationDecision> {
    const organisation = await this.organisation(q.partnerDomain, q.ownDomain);
    if (!organisation.allowed) return organisation;
    const settings = await effectiveSettings(this.#sql, q.localUser);
    if (!settings.EnableFederationAccess) {
      const source = settings.sources.ExternalAccessPolicy;
      return refused('USER_NOT_ENABLED', `the CsExternalAccessPolicy that applies to ${q.localUser} (${source}) has EnableFederationAccess False; grant the user one that enables it with Grant-CsExternalAccessPolicy, or change it with Set-CsExternalAccessPolicy -Identity ${source} -EnableFederationAccess $True`);
    }
    return organisation;
  }

  /**
   * The same rules for a request a partner sends: the organisation's first, then the recipient's
   * policy. A recipient who does not exist is refused exactly like one whose policy does not enable
   * federation (same code, same text), so that a partner cannot learn who exists; neither text
   * names a policy, which is this organisation's business.
   */
  async inbound(q: InboundQuestion): Promise<FederationDecision> {
    const organisation = await this.organisation(q.partnerDomain, q.ownDomain);
    if (!organisation.allowed || q.recipient === undefined) return organisation;
    let enabled = false;
    try {
      enabled = (await effectiveSettings(this.#sql, q.recipient)).EnableFederationAccess;
    } catch (error) {
      // no such user, or not an address at all: the same answer as a user not enabled
      if (!(error instanceof DirectoryError)) throw error;
    }
    if (!enabled) return refused('USER_NOT_ENABLED', `${q.recipient.slice(0, 200)} does not take requests from other organisations`);
    return organisation;
  }

  /** The organisation's rules: federation on, a partner domain name, not blocked, allowed or discoverable. */
  organisation(partnerDomain: string, ownDomain: string | undefined): Promise<FederationDecision> {
    if (this.#decisions === undefined) return this.#organisation(partnerDomain, ownDomain);
    // the own domain is part of the question (it is no partner); a NUL cannot be in either name
    return this.#decisions.get(`${partnerDomain}\0${ownDomain ?? ''}`, () => this.#organisation(partnerDomain, ownDomain));
  }

  /** Where requests for `domain` go: its ProxyFqdn, else the default route, else its DNS SRV record. */
  route(domain: string): Promise<PartnerRoute> {
    const name = domain.trim().toLowerCase().replace(/\.$/, '');
    return this.#routes === undefined ? this.#route(name) : this.#routes.get(name, () => this.#route(name));
  }

  async #organisation(partnerDomain: string, ownDomain: string | undefined): Promise<FederationDecision> {
    let domain: string;
    try {
      domain = parseDomain(partnerDomain, ownDomain);
    } catch (error) {
      return refused('BAD_DOMAIN', (error as Error).message);
    }
    const edge = await getAccessEdge(this.#sql);
    if (!edge.AllowFederatedUsers) {
      return refused('FEDERATION_DISABLED', 'federation is off (CsAccessEdgeConfiguration AllowFederatedUsers is False); turn it on with Set-CsAccessEdgeConfiguration -AllowFederatedUsers $True');
    }
    const listed = await findDomain(this.#sql, domain);
    if (listed?.list === 'blocked') {
      return refused('DOMAIN_BLOCKED', `${domain} is a blocked domain; unblock it with Remove-CsBlockedDomain -Identity ${domain}`);
    }
    if (listed === undefined && !edge.EnablePartnerDiscovery) {
      return refused('DOMAIN_NOT_ALLOWED', `${domain} is not an allowed domain and partner discovery is off; allow it with New-CsAllowedDomain -Identity ${domain}, or allow every unblocked domain with Set-CsAccessEdgeConfiguration -EnablePartnerDiscovery $True`);
    }
    return { allowed: true, domain, route: await this.#route(domain) };
  }

  async #route(name: string): Promise<PartnerRoute> {
    const listed = await findDomain(this.#sql, name);
    if (listed?.list === 'allowed' && listed.proxyFqdn !== null) return { kind: 'proxy', target: listed.proxyFqdn };
    const edge = await getAccessEdge(this.#sql);
    if (edge.DefaultRouteFqdn !== null) return { kind: 'default-route', target: edge.DefaultRouteFqdn };
    return { kind: 'dns-srv', domain: name };
  }
}

/** The version row the federation tables' triggers move (schema.ts). */
const VERSION_QUERY = 'SELECT v FROM federation_version';

/** FederationRules.outbound, read from the database now. */
export function federationDecision(sql: Sql, q: FederationQuestion): Promise<FederationDecision> {
  return new FederationRules(sql).outbound(q);
}

/** FederationRules.inbound, read from the database now. */
export function inboundDecision(sql: Sql, q: InboundQuestion): Promise<FederationDecision> {
  return new FederationRules(sql).inbound(q);
}

/** FederationRules.route, read from the database now. */
export function partnerRoute(sql: Sql, domain: string): Promise<PartnerRoute> {
  return new FederationRules(sql).route(domain);
}

/** `sip.partner.example:5061 (ProxyFqdn)`, `DNS SRV _sipfederationtls._tcp.partner.example`. */
export function describeRoute(route: PartnerRoute): string {
  switch (route.kind) {
    case 'proxy':
      return `${formatHostPort(route.target)} (ProxyFqdn)`;
    case 'default-route':
      return `${formatHostPort(route.target)} (DefaultRouteFqdn)`;
    case 'dns-srv':
      return `DNS SRV _sipfederationtls._tcp.${route.domain}`;
  }
}

function refused(code: FederationRefusalCode, reason: string): FederationDecision {
  return { allowed: false, code, reason };
}
