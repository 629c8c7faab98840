// DNS for the federation link: SRV, A and AAAA records with their TTLs, cached for as long as the
// TTLs say. node's dns.Resolver answers SRV without TTLs, so we ask ourselves: dns-packet encodes
// and decodes the wire format (RFC 1035), this module sends the query over UDP to the configured
// servers (or the system's), over TCP when the answer was truncated (RFC 7766 §5), and caches.
// Time and the wire are passed in: the cache and the answers' reading are testable without sockets.

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { getServers } from 'node:dns';
import packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import { ParleyError } from '../../errors.ts';
import type { SrvRecord } from './srv.ts';

export type DnsType = 'SRV' | 'A' | 'AAAA';

export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

/** What one question got: its records (none: the name or the type does not exist) and how long it holds. */
export interface DnsAnswer<T> {
  readonly records: readonly T[];
  /** seconds the answer may be cached (the smallest TTL of the records, or the negative TTL) */
  readonly ttl: number;
}

/** DNS could not answer at all (as opposed to answering "no such name"). */
export class DnsError extends ParleyError {}

export const DNS_CODES = {
  /** no server answered in time */
  TIMEOUT: 'DNS_TIMEOUT',
  /** every server answered SERVFAIL, REFUSED or an unreadable packet */
  FAILED: 'DNS_FAILED',
} as const;

/** Sends one query to one server and resolves with the raw answer; the resolver tries the next server when it rejects. */
export type DnsWire = (query: Buffer, server: DnsServer, timeoutMs: number, overTcp: boolean) => Promise<Buffer>;

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

/** The lookups the link makes. */
export interface PartnerDns {
  srv(name: string): Promise<DnsAnswer<SrvRecord>>;
  addresses(host: string): Promise<DnsAnswer<string>>;
}

type Cached = { expires: number; answer: DnsAnswer<unknown> };
const MAX_CACHED = 10_000;

export class CachingResolver implements PartnerDns {
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

  /** SRV records of `name` (`_sipfederationtls._tcp.partner.example`), in the order they came. */
  srv(name: string): Promise<DnsAnswer<SrvRecord>> {
    return this.#lookup(name, 'SRV') as Promise<DnsAnswer<SrvRecord>>;
  }

  /** IPv4 then IPv6 addresses of a host; the TTL is the shorter of the two answers'. */
  async addresses(host: string): Promise<DnsAnswer<string>> {
    const [a, aaaa] = await Promise.allSettled([this.#lookup(host, 'A'), this.#lookup(host, 'AAAA')]);
    const answers = [a, aaaa].flatMap((r) => (r.status === 'fulfilled' ? [r.value as DnsAnswer<string>] : []));
    // one family failing is not the host failing, unless the other has nothing either
    if (answers.every((x) => x.records.length === 0) && a.status === 'rejected') throw a.reason;
    return { records: answers.flatMap((x) => x.records), ttl: Math.min(...answers.map((x) => x.ttl)) };
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
    return { records: [], ttl };
  }
  const ttl = Math.min(...answers.map((a) => ('ttl' in a && typeof a.ttl === 'number' ? a.ttl : 0)));
  if (type === 'SRV') {
    return {
      ttl,
      records: records.map((r) => {
        const d = (r as packet.SrvAnswer).data;
        return { priority: d.priority ?? 0, weight: d.weight ?? 0, port: d.port, target: d.target.toLowerCase().replace(/\.$/, '') } satisfies SrvRecord;
      }),
    };
  }
  return { ttl, records: records.map((r) => String((r as packet.StringAnswer).data).toLowerCase()) };
}

/** `192.0.2.53`, `192.0.2.53:5353`, `[2001:db8::53]:5353`, `2001:db8::53` → host and port (53). */
export function parseServer(text: string): DnsServer {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? 53 : Number(bracketed[2]) };
  const v4 = /^([^:]+):(\d+)$/.exec(text);
  if (v4) return { host: v4[1] as string, port: Number(v4[2]) };
  return { host: text, port: 53 };
}

function formatServer(s: DnsServer): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The real wire: one UDP datagram, or one TCP exchange with the two-byte length prefix (RFC 1035 §4.2.2). */
export const udpThenTcp: DnsWire = (query, server, timeoutMs, overTcp) =>
  new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, data?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      if (err !== null) reject(err);
      else resolve(data as Buffer);
    };
    const timer = setTimeout(() => finish(new DnsError(DNS_CODES.TIMEOUT, `no answer within ${timeoutMs} ms`)), timeoutMs);
    let cleanup: () => void;
    if (!overTcp) {
      const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      cleanup = () => socket.close();
      socket.on('error', (err) => finish(err));
      socket.on('message', (msg, from) => {
        // only the server asked may answer (a spoofed datagram from elsewhere is ignored)
        if (from.port === server.port && (from.address === server.host || !net.isIP(server.host)) && msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) finish(null, msg);
      });
      socket.send(query, server.port, server.host, (err) => {
        if (err) finish(err);
      });
    } else {
      const socket = net.connect({ host: server.host, port: server.port });
      cleanup = () => socket.destroy();
      let buffered = Buffer.alloc(0);
      socket.on('error', (err) => finish(err));
      socket.on('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) finish(null, buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      });
      socket.on('end', () => finish(new Error('the server closed the TCP connection before answering')));
    }
  });
