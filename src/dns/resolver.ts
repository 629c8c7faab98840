// A caching stub resolver: SRV, MX, A and AAAA records with their TTLs, kept for as long as the TTLs
// say. node's dns.Resolver answers SRV and MX without TTLs, so we ask ourselves: dns-packet encodes
// and decodes the wire format (RFC 1035), wire.ts carries the query over UDP to the configured
// servers (or the system's), over TCP when the answer was truncated, and this module caches.
// Time and the wire are passed in: the cache and the answers' reading are testable without sockets.
// One instance serves the federation link (SRV, A/AAAA) and outbound mail (MX, A/AAAA).

import { randomInt } from 'node:crypto';
import { getServers } from 'node:dns';
import packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { DNS_CODES, DnsError } from './errors.ts';
import type { Dns, DnsAnswer, DnsType, MxRecord, SrvRecord } from './records.ts';
import { formatServer, parseServer, udpThenTcp } from './wire.ts';
import type { DnsServer, DnsWire } from './wire.ts';

export interface ResolverOptions {
  /** `host` or `host:port` (`[v6]:port`); empty: the system's servers (resolv.conf) */
  servers: readonly string[];
  wire?: DnsWire;
  now?: () => number;
  /** per server and attempt, ms */
  timeoutMs?: number;
  /** the longest an answer is kept whatever its TTL, seconds */
  maxTtl?: number;
  /** how long "no such name" is kept when the answer carries no SOA (RFC 2308 §5), seconds */
  negativeTtl?: number;
}

type Cached = { expires: number; answer: DnsAnswer<unknown> };
const MAX_CACHED = 10_000;

export class CachingResolver implements Dns {
  readonly #servers: DnsServer[];
  readonly #wire: DnsWire;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #maxTtl: number;
  readonly #negativeTtl: number;
  readonly #cache = new Map<string, Cached>();
  /** questions on their way: a second asker waits for the same answer */
  readonly #pending = new Map<string, Promise<DnsAnswer<unknown>>>();

  constructor(opts: ResolverOptions) {
    this.#servers = (opts.servers.length > 0 ? opts.servers : getServers()).map(parseServer);
    this.#wire = opts.wire ?? udpThenTcp;
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? 2_000;
    this.#maxTtl = opts.maxTtl ?? 3_600;
    this.#negativeTtl = opts.negativeTtl ?? 60;
  }

  get servers(): readonly DnsServer[] {
    return this.#servers;
  }

  srv(name: string): Promise<DnsAnswer<SrvRecord>> {
    return this.#lookup(name, 'SRV') as Promise<DnsAnswer<SrvRecord>>;
  }

  mx(domain: string): Promise<DnsAnswer<MxRecord>> {
    return this.#lookup(domain, 'MX') as Promise<DnsAnswer<MxRecord>>;
  }

  /** IPv4 then IPv6 addresses of a host; the TTL is the shorter of the two answers'. */
  async addresses(host: string): Promise<DnsAnswer<string>> {
    const [a, aaaa] = await Promise.allSettled([this.#lookup(host, 'A'), this.#lookup(host, 'AAAA')]);
    const answers = [a, aaaa].flatMap((r) => (r.status === 'fulfilled' ? [r.value as DnsAnswer<string>] : []));
    // one family failing is not the host failing, unless the other has nothing either
    if (answers.every((x) => x.records.length === 0) && a.status === 'rejected') throw a.reason;
    const noSuchName = answers.length > 0 && answers.every((x) => x.noSuchName === true);
    return { records: answers.flatMap((x) => x.records), ttl: Math.min(...answers.map((x) => x.ttl)), ...(noSuchName ? { noSuchName } : {}) };
  }

  #lookup(rawName: string, type: DnsType): Promise<DnsAnswer<unknown>> {
    const name = rawName.toLowerCase().replace(/\.$/, '');
    const key = `${type} ${name}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      if (cached.expires > this.#now()) return Promise.resolve(cached.answer);
      this.#cache.delete(key);
    }
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#ask(name, type).then((answer) => {
        const ttl = Math.min(answer.ttl, this.#maxTtl);
        // a TTL of 0 means "use it for this transaction only" (RFC 1035 §3.2.1)
        if (ttl > 0) {
          if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string);
          this.#cache.set(key, { expires: this.#now() + ttl * 1000, answer });
        }
        return answer;
      });
      const settle = () => this.#pending.delete(key);
      pending.then(settle, settle);
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #ask(name: string, type: DnsType): Promise<DnsAnswer<unknown>> {
    // unpredictable, so that an off-path sender cannot guess the answer it would have to forge
    const id = randomInt(0x10000);
    const query = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
    const problems: string[] = [];
    let timedOut = 0;
    for (const server of this.#servers) {
      try {
        let raw = await this.#wire(query, server, this.#timeoutMs, false);
        let reply = packet.decode(raw);
        if (reply.flag_tc) {
          raw = await this.#wire(query, server, this.#timeoutMs, true);
          reply = packet.decode(raw);
        }
        if (reply.id !== id) throw new Error('the answer is for another query');
        return readAnswer(reply, type, this.#negativeTtl);
      } catch (err) {
        if ((err as DnsError).code === DNS_CODES.TIMEOUT) timedOut++;
        problems.push(`${formatServer(server)}: ${(err as Error).message}`);
      }
    }
    const code = timedOut === this.#servers.length ? DNS_CODES.TIMEOUT : DNS_CODES.FAILED;
    throw new DnsError(code, `DNS could not answer ${type} ${name} (${problems.join('; ') || 'no DNS server configured'})`);
  }
}

/** A domain name as we compare it: lower case, no trailing dot; the root `.` as ''. */
const bareName = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * The records of the asked type in a reply, with the TTL they may be kept: the smallest TTL of
 * the answer section (a CNAME chain included). NXDOMAIN and an empty answer are answers too: kept
 * for the SOA's negative TTL (RFC 2308 §5: the smaller of the SOA's TTL and its MINIMUM).
 */
export function readAnswer(reply: DecodedPacket, type: DnsType, negativeTtl: number): DnsAnswer<unknown> {
  const rcode = (reply.flags ?? 0) & 0xf;
  // 0 NOERROR, 3 NXDOMAIN; anything else (SERVFAIL 2, REFUSED 5…) is the server failing
  if (rcode !== 0 && rcode !== 3) throw new DnsError(DNS_CODES.FAILED, `the server answered rcode ${rcode}`);
  const answers = (reply.answers ?? []) as Answer[];
  const records = answers.filter((a) => a.type === type);
  if (records.length === 0) {
    const soa = (reply.authorities ?? []).find((a) => a.type === 'SOA');
    const ttl = soa === undefined ? negativeTtl : Math.min(soa.ttl ?? negativeTtl, soa.data.minimum ?? negativeTtl);
    return { records: [], ttl, ...(rcode === 3 ? { noSuchName: true } : {}) };
  }
  const ttl = Math.min(...answers.map((a) => ('ttl' in a && typeof a.ttl === 'number' ? a.ttl : 0)));
  switch (type) {
    case 'SRV':
      return {
        ttl,
        records: records.map((r) => {
          const d = (r as packet.SrvAnswer).data;
          return { priority: d.priority ?? 0, weight: d.weight ?? 0, port: d.port, target: bareName(d.target) } satisfies SrvRecord;
        }),
      };
    case 'MX':
      return {
        ttl,
        records: records.map((r) => {
          const d = (r as packet.MxAnswer).data;
          return { preference: d.preference ?? 0, exchange: bareName(d.exchange) } satisfies MxRecord;
        }),
      };
    case 'A':
    case 'AAAA':
      return { ttl, records: records.map((r) => String((r as packet.StringAnswer).data).toLowerCase()) };
  }
}
