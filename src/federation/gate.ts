// The router's FederationGate (src/router/context.ts): the administration's decisions for
// requests across organisations, the check that a partner connection's certificate vouches for
// the domain a request claims, and connections to partners' servers.

import type { Logger } from '../observability/logger.ts';
import type { FederationGate, FederationRefusal, PartnerConnection } from '../router/context.ts';
import type { Flow } from '../sip/index.ts';
import type { Sql, VersionedCacheOptions } from '../storage/index.ts';
import type { PartnerRoute } from './decision.ts';
import { FederationRules } from './decision.ts';
import { matchingName } from './link/cert-names.ts';
import { expectedHosts, SRV_PREFIX } from './link/targets.ts';
import type { PartnerDns } from './link/targets.ts';
import { parseDomain } from './names.ts';

export interface GateOptions {
  sql: Sql;
  /** this organisation's SIP domain */
  domain: string;
  /** host:port partners reach us by (federation.fqdn and the federation port) */
  sentBy: string;
  dns: PartnerDns;
  /** the outbound pool (link/pool.ts) */
  pool: { connect(domain: string, route: PartnerRoute): Promise<PartnerConnection> };
  logger: Logger;
  /** how the organisation's rules are cached (tests: checkEveryMs 0 to see each change at once); default VersionedCache's */
  cache?: VersionedCacheOptions;
}

type Verification = { verified: true; name: string } | { verified: false; warning: string; transient: boolean };

/** Domains remembered per connection: a peer sending many From domains cannot grow it without bound. */
const MAX_DOMAINS_PER_FLOW = 32;

export class FederationLink implements FederationGate {
  readonly sentBy: string;
  readonly #o: GateOptions;
  readonly #rules: FederationRules;
  /** per partner connection, per domain: whether its certificate vouches for it (it cannot change while the connection lives) */
  readonly #verified = new WeakMap<Flow, Map<string, Promise<Verification>>>();

  constructor(opts: GateOptions) {
    this.#o = opts;
    this.sentBy = opts.sentBy;
    this.#rules = new FederationRules(opts.sql, opts.cache ?? {});
  }

  async outboundRefusal(sender: string, domain: string): Promise<FederationRefusal | null> {
    const decision = await this.#rules.outbound({ localUser: sender, partnerDomain: domain, ownDomain: this.#o.domain });
    return decision.allowed ? null : { code: decision.code, warning: decision.reason };
  }

  /**
   * (1) the connection's certificate was verified for `fromDomain`; (2) the organisation's rules for
   * that domain; (3) the recipient's policy. Federation off and a name that is no partner domain are
   * answered first: no DNS question is worth asking for them.
   */
  async inboundRefusal(flow: Flow, fromDomain: string, recipient: string | undefined): Promise<FederationRefusal | null> {
    const own = this.#o.domain;
    const early = await this.#rules.organisation(fromDomain, own);
    if (!early.allowed && (early.code === 'FEDERATION_DISABLED' || early.code === 'BAD_DOMAIN')) return { code: early.code, warning: early.reason };
    const domain = parseDomain(fromDomain, own);
    const verification = await this.#verify(flow, domain);
    if (!verification.verified) return { code: 'PARTNER_NOT_VERIFIED', warning: verification.warning };
    const decision = await this.#rules.inbound({ partnerDomain: domain, ownDomain: own, recipient });
    return decision.allowed ? null : { code: decision.code, warning: decision.reason };
  }

  async connect(domain: string): Promise<PartnerConnection> {
    let name: string;
    try {
      name = parseDomain(domain, this.#o.domain);
    } catch (err) {
      return { ok: false, status: 503, warning: (err as Error).message };
    }
    return this.#o.pool.connect(name, await this.#rules.route(name));
  }

  #verify(flow: Flow, domain: string): Promise<Verification> {
    let known = this.#verified.get(flow);
    if (known === undefined) {
      known = new Map();
      this.#verified.set(flow, known);
    }
    const cached = known.get(domain);
    if (cached !== undefined) return cached;
    const map = known;
    const pending = this.#check(flow, domain).then(
      (v) => {
        // DNS failing now says nothing of the certificate: ask again next time
        if (!v.verified && v.transient) map.delete(domain);
        return v;
      },
      (err: unknown) => {
        map.delete(domain);
        throw err;
      },
    );
    if (map.size >= MAX_DOMAINS_PER_FLOW) map.delete(map.keys().next().value as string);
    map.set(domain, pending);
    return pending;
  }

  async #check(flow: Flow, domain: string): Promise<Verification> {
    const peer = flow.partner;
    if (peer === undefined) return { verified: false, warning: `this connection is not a partner connection (the federation port is ${this.sentBy})`, transient: false };
    // a connection we opened to the domain's server: verified for it when it was opened
    if (peer.openedFor === domain) return { verified: true, name: domain };
    const route = await this.#rules.route(domain);
    if (route.kind !== 'dns-srv') {
      const name = matchingName(peer.names, [route.target.host]);
      if (name !== undefined) return { verified: true, name };
    }
    const expected = await expectedHosts(this.#o.dns, domain, route);
    const name = matchingName(peer.names, expected.hosts);
    if (name !== undefined) return { verified: true, name };
    const names = peer.names.length === 0 ? 'no DNS name' : peer.names.join(', ');
    const hosts = expected.hosts.length === 0 ? `no host (${SRV_PREFIX}${domain} has no record)` : expected.hosts.join(', ');
    const dns = expected.dnsProblem === undefined ? '' : `; DNS could not be asked for the SRV targets of ${domain}: ${expected.dnsProblem}`;
    this.#o.logger.info({ flow: flow.id, partner: domain, names: peer.names, expected: expected.hosts }, 'request for %s on a connection whose certificate names %s refused: not verified for %s', domain, names, domain);
    return {
      verified: false,
      transient: expected.dnsProblem !== undefined,
      warning: `this connection's certificate names ${names}, none of which is a server of ${domain} (expected ${hosts}: its ProxyFqdn or the targets of ${SRV_PREFIX}${domain})${dns}`,
    };
  }
}
