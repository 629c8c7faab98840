// The federation link's pure parts (issue 15): certificate names (RFC 6125), SRV order (RFC 2782),
// DNS answers and their TTLs (a fake wire and clock: no socket), targets, the pool's outcomes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import packet from 'dns-packet';
import type { Answer } from 'dns-packet';
import {
  CachingResolver, DnsError, PartnerPool, certificateNames, checkPartnerIdentity, matchingName, nameMatches, orderSrv, parseServer, routeTargets, serviceRefused, unreachable,
} from '../../src/federation/index.ts';
import type { DnsWire, PartnerDns, SrvRecord } from '../../src/federation/index.ts';
import type { Flow, StreamConnectResult } from '../../src/sip/index.ts';
import { createLogger } from '../../src/observability/logger.ts';

describe('certificate names (RFC 6125)', () => {
  it('reads the SAN DNS names, lower case, and the CN only when there is none', () => {
    assert.deepEqual(certificateNames({ subjectaltname: 'DNS:SIP.Org-A.test, IP Address:127.0.0.1, DNS:*.org-a.test.', subject: { CN: 'other.test' } as never }), ['sip.org-a.test', '*.org-a.test']);
    assert.deepEqual(certificateNames({ subjectaltname: 'IP Address:127.0.0.1', subject: { CN: 'Edge.Org-B.test' } as never }), ['edge.org-b.test']);
    assert.deepEqual(certificateNames({ subjectaltname: 'DNS:"a,b.example", DNS:c.example', subject: {} as never }), ['a,b.example', 'c.example']);
    assert.deepEqual(certificateNames(undefined), []);
  });

  it('matches exact names in any case, and a wildcard only as the whole left-most label over one label', () => {
    assert.ok(nameMatches('sip.org-a.test', 'SIP.org-a.test.'));
    assert.ok(!nameMatches('sip.org-a.test', 'sip2.org-a.test'));
    assert.ok(nameMatches('*.org-a.test', 'sip.org-a.test'));
    assert.ok(!nameMatches('*.org-a.test', 'org-a.test'), 'the wildcard stands for one label, not none');
    assert.ok(!nameMatches('*.org-a.test', 'a.sip.org-a.test'), 'nor for two');
    assert.ok(!nameMatches('s*.org-a.test', 'sip.org-a.test'), 'no partial wildcard');
    assert.ok(!nameMatches('sip.*.test', 'sip.org-a.test'), 'only the left-most label');
    assert.ok(!nameMatches('*.test', 'org-a.test'), 'not over a single label');
    assert.ok(!nameMatches('*.*.test', 'a.b.test'));
    assert.ok(!nameMatches('*.0.0.1', '127.0.0.1'), 'never an IP address');
    assert.ok(!nameMatches('', 'x.test'));
    assert.equal(matchingName(['a.test', '*.org-b.test'], ['sip.org-a.test', 'sip.org-b.test']), '*.org-b.test');
    assert.equal(matchingName(['a.test'], ['b.test']), undefined);
  });

  it('checks a partner server by the host it was connected for, by IP SAN for an address', () => {
    const cert = { subjectaltname: 'DNS:sip.org-b.test, IP Address:127.0.0.2', subject: { CN: 'x' } } as never;
    assert.equal(checkPartnerIdentity('sip.org-b.test', cert), undefined);
    assert.equal(checkPartnerIdentity('127.0.0.2', cert), undefined);
    const wrong = checkPartnerIdentity('sip.org-c.test', cert);
    assert.ok(wrong instanceof Error);
    assert.equal((wrong as Error & { code: string }).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(wrong.message, /does not name it: it names sip.org-b.test/);
    assert.match(String(checkPartnerIdentity('127.0.0.3', cert)?.message), /names no IP address 127.0.0.3/);
  });
});

describe('SRV order (RFC 2782)', () => {
  const r = (priority: number, weight: number, target: string): SrvRecord => ({ priority, weight, port: 5061, target });
  /** a sequence of "random" numbers */
  const seq = (...values: number[]) => () => values.shift() ?? 0;

  it('tries the lowest priority first, whatever the weights', () => {
    const order = orderSrv([r(20, 100, 'c'), r(10, 0, 'a'), r(30, 5, 'd'), r(10, 0, 'b')], () => 0.5).map((x) => x.target);
    assert.deepEqual(order.slice(0, 2).sort(), ['a', 'b']);
    assert.deepEqual(order.slice(2), ['c', 'd']);
  });

  it('picks by running sum of weights: the random number selects the first record whose sum reaches it', () => {
    const records = [r(10, 60, 'heavy'), r(10, 30, 'medium'), r(10, 10, 'light')];
    // total 100: floor(0.5 * 101) = 50 → heavy (sum 60); then total 40: floor(0.9 * 41) = 36 → light (30 + 10 = 40)
    assert.deepEqual(orderSrv(records, seq(0.5, 0.9, 0)).map((x) => x.target), ['heavy', 'light', 'medium']);
    // floor(0.61 * 101) = 61 → medium (60 + 30)
    assert.equal(orderSrv(records, seq(0.61, 0, 0))[0]?.target, 'medium');
    // the last number: floor(0.999 * 101) = 100 → light
    assert.equal(orderSrv(records, seq(0.999, 0, 0))[0]?.target, 'light');
  });

  it('places weight 0 first, so it is chosen only when the random number is 0', () => {
    const records = [r(1, 10, 'weighted'), r(1, 0, 'zero')];
    assert.equal(orderSrv(records, seq(0, 0))[0]?.target, 'zero');
    assert.equal(orderSrv(records, seq(0.1, 0))[0]?.target, 'weighted');
  });

  it('spreads picks in proportion to the weights', () => {
    let state = 1;
    // a small deterministic generator (LCG), so the proportions are checked without flakiness
    const lcg = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const first = orderSrv([r(1, 75, 'a'), r(1, 25, 'b')], lcg)[0]?.target ?? '';
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    const share = (counts.get('a') ?? 0) / 4000;
    assert.ok(share > 0.7 && share < 0.8, `a first in ${share} of the orders`);
  });

  it('knows the "." target as no service', () => {
    assert.ok(serviceRefused([r(0, 0, '')]));
    assert.ok(!serviceRefused([r(0, 0, 'sip.x.test')]));
  });
});

/** A fake DNS server behind the wire: answers from a table, counts the questions. */
function fakeWire(table: Record<string, { answers?: Answer[]; authorities?: Answer[]; rcode?: number; truncatedOverUdp?: boolean }>) {
  const asked: string[] = [];
  const wire: DnsWire = async (query, _server, _timeout, overTcp) => {
    const q = packet.decode(query);
    const question = q.questions?.[0];
    const key = `${question?.type} ${question?.name}`;
    asked.push(`${key}${overTcp ? ' tcp' : ''}`);
    const entry = table[key] ?? { rcode: 3 };
    const flags = (entry.rcode ?? 0) | (entry.truncatedOverUdp && !overTcp ? packet.TRUNCATED_RESPONSE : 0);
    return packet.encode({ type: 'response', id: q.id, flags, questions: q.questions, answers: entry.truncatedOverUdp && !overTcp ? [] : entry.answers ?? [], authorities: entry.authorities ?? [] });
  };
  return { wire, asked };
}

const srvAnswer = (name: string, ttl: number, priority: number, weight: number, port: number, target: string): Answer => ({ type: 'SRV', name, ttl, class: 'IN', data: { priority, weight, port, target } });
const aAnswer = (name: string, ttl: number, address: string): Answer => ({ type: 'A', name, ttl, class: 'IN', data: address });

describe('DNS with TTLs', () => {
  const SRV = '_sipfederationtls._tcp.org-b.test';

  it('keeps an answer for its smallest TTL, then asks again', async () => {
    let now = 1_000_000;
    const { wire, asked } = fakeWire({ [`SRV ${SRV}`]: { answers: [srvAnswer(SRV, 300, 10, 5, 5061, 'SIP.org-b.test.'), srvAnswer(SRV, 60, 20, 0, 5062, 'backup.org-b.test')] } });
    const dns = new CachingResolver({ servers: ['127.0.0.1:5353'], wire, now: () => now });
    const first = await dns.srv(SRV);
    assert.equal(first.ttl, 60);
    assert.deepEqual(first.records[0], { priority: 10, weight: 5, port: 5061, target: 'sip.org-b.test' });
    now += 59_000;
    await dns.srv(SRV);
    assert.equal(asked.length, 1, 'cached within its TTL');
    now += 1_000;
    await dns.srv(SRV);
    assert.equal(asked.length, 2, 'asked again once the TTL ran out');
  });

  it('keeps "no such name" for the SOA negative TTL, and never caches TTL 0', async () => {
    let now = 0;
    const soa: Answer = { type: 'SOA', name: 'org-c.test', ttl: 600, class: 'IN', data: { mname: 'ns.org-c.test', rname: 'admin.org-c.test', minimum: 30 } };
    const { wire, asked } = fakeWire({
      'SRV _sipfederationtls._tcp.org-c.test': { rcode: 3, authorities: [soa] },
      'A zero.test': { answers: [aAnswer('zero.test', 0, '192.0.2.1')] },
    });
    const dns = new CachingResolver({ servers: ['127.0.0.1'], wire, now: () => now });
    assert.deepEqual(await dns.srv('_sipfederationtls._tcp.org-c.test'), { records: [], ttl: 30 });
    now += 29_000;
    await dns.srv('_sipfederationtls._tcp.org-c.test');
    assert.equal(asked.length, 1);
    now += 2_000;
    await dns.srv('_sipfederationtls._tcp.org-c.test');
    assert.equal(asked.length, 2);
    await dns.addresses('zero.test');
    await dns.addresses('zero.test');
    assert.equal(asked.filter((q) => q === 'A zero.test').length, 2, 'TTL 0: used once, not kept');
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    const { wire, asked } = fakeWire({ 'A big.test': { answers: [aAnswer('big.test', 100, '192.0.2.7')], truncatedOverUdp: true }, 'AAAA big.test': {} });
    const dns = new CachingResolver({ servers: ['127.0.0.1'], wire });
    assert.deepEqual((await dns.addresses('big.test')).records, ['192.0.2.7']);
    assert.deepEqual(asked.filter((q) => q.startsWith('A ')), ['A big.test', 'A big.test tcp']);
  });

  it('moves on to the next server, and fails with a code when none answers', async () => {
    const tried: string[] = [];
    const inner = fakeWire({ 'A ok.test': { answers: [aAnswer('ok.test', 10, '192.0.2.9')] } }).wire;
    const wire: DnsWire = async (query, server, timeout, tcp) => {
      tried.push(`${server.host}:${server.port}`);
      if (server.port === 1) throw new DnsError('DNS_TIMEOUT', 'no answer within 10 ms');
      return inner(query, server, timeout, tcp);
    };
    const dns = new CachingResolver({ servers: ['127.0.0.1:1', '[::1]:5353'], wire });
    assert.deepEqual((await dns.srv('_x._tcp.ok.test')).records, []);
    assert.deepEqual(tried.slice(0, 2), ['127.0.0.1:1', '::1:5353']);
    const dead = new CachingResolver({ servers: ['127.0.0.1:1'], wire });
    await assert.rejects(dead.srv('_x._tcp.ok.test'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_TIMEOUT' && /127.0.0.1:1: no answer/.test(e.message));
    const failing = new CachingResolver({ servers: ['127.0.0.1'], wire: fakeWire({ 'SRV _x._tcp.f.test': { rcode: 2 } }).wire });
    await assert.rejects(failing.srv('_x._tcp.f.test'), (e: unknown) => e instanceof DnsError && e.code === 'DNS_FAILED' && /rcode 2/.test(e.message));
  });

  it('reads server addresses with and without ports', () => {
    assert.deepEqual(parseServer('192.0.2.53'), { host: '192.0.2.53', port: 53 });
    assert.deepEqual(parseServer('127.0.0.53:5353'), { host: '127.0.0.53', port: 5353 });
    assert.deepEqual(parseServer('[2001:db8::53]:5353'), { host: '2001:db8::53', port: 5353 });
    assert.deepEqual(parseServer('2001:db8::53'), { host: '2001:db8::53', port: 53 });
  });
});

/** A PartnerDns from a table: SRV records and addresses by name. */
function tableDns(srv: Record<string, SrvRecord[]>, hosts: Record<string, string[]>): PartnerDns {
  return {
    srv: async (name) => ({ records: srv[name] ?? [], ttl: 60 }),
    addresses: async (host) => ({ records: hosts[host] ?? [], ttl: 60 }),
  };
}

describe('targets and the pool', () => {
  const logger = createLogger('silent');
  const srv = (priority: number, target: string, port: number): SrvRecord => ({ priority, weight: 0, port, target });

  it('routes by ProxyFqdn, default route, SRV order, then the domain itself on 5061', async () => {
    const dns = tableDns({ '_sipfederationtls._tcp.org-b.test': [srv(20, 'backup.org-b.test', 5062), srv(10, 'sip.org-b.test', 5061)] }, {});
    assert.deepEqual(await routeTargets(dns, 'org-b.test', { kind: 'proxy', target: { host: 'edge.org-b.test' } }), { ok: true, targets: [{ host: 'edge.org-b.test', port: 5061, source: 'ProxyFqdn' }] });
    assert.deepEqual(await routeTargets(dns, 'org-b.test', { kind: 'default-route', target: { host: 'hub.test', port: 6000 } }), { ok: true, targets: [{ host: 'hub.test', port: 6000, source: 'DefaultRouteFqdn' }] });
    const bySrv = await routeTargets(dns, 'org-b.test', { kind: 'dns-srv', domain: 'org-b.test' });
    assert.ok(bySrv.ok);
    assert.deepEqual(bySrv.targets.map((t) => `${t.host}:${t.port}`), ['sip.org-b.test:5061', 'backup.org-b.test:5062']);
    const none = await routeTargets(dns, 'org-z.test', { kind: 'dns-srv', domain: 'org-z.test' });
    assert.ok(none.ok);
    assert.deepEqual(none.targets.map((t) => `${t.host}:${t.port}`), ['org-z.test:5061']);
    const refused = await routeTargets(tableDns({ '_sipfederationtls._tcp.no.test': [srv(0, '', 0)] }, {}), 'no.test', { kind: 'dns-srv', domain: 'no.test' });
    assert.deepEqual(refused, { ok: false, warning: 'no.test takes no federation: its _sipfederationtls._tcp.no.test record names "."' });
  });

  it('moves on to the next target when one fails, and reuses the open connection', async () => {
    const dns = tableDns({ '_sipfederationtls._tcp.org-b.test': [srv(10, 'sip.org-b.test', 5061), srv(20, 'backup.org-b.test', 5062)] }, { 'sip.org-b.test': ['192.0.2.1'], 'backup.org-b.test': ['192.0.2.2'] });
    const dialled: string[] = [];
    const flow = { id: 'tls:1', closed: false } as unknown as Flow;
    const pool = new PartnerPool({
      dns,
      logger,
      credentials: () => ({ cert: Buffer.alloc(0), key: Buffer.alloc(0), ca: undefined }),
      dial: async (o): Promise<StreamConnectResult> => {
        dialled.push(`${o.address}:${o.port} ${o.tls.servername}`);
        return o.address === '192.0.2.1' ? { ok: false, reason: 'tls', message: 'TLS: the certificate of sip.org-b.test does not name it' } : { ok: true, flow, close: () => {} };
      },
    });
    const route = { kind: 'dns-srv', domain: 'org-b.test' } as const;
    const [a, b] = await Promise.all([pool.connect('org-b.test', route), pool.connect('org-b.test', route)]);
    assert.ok(a.ok && b.ok && a.flow === flow && b.flow === flow, 'callers at the same time share one attempt');
    assert.deepEqual(dialled, ['192.0.2.1:5061 sip.org-b.test', '192.0.2.2:5062 backup.org-b.test']);
    await pool.connect('org-b.test', route);
    assert.equal(dialled.length, 2, 'the open connection is reused');
    (flow as { closed: boolean }).closed = true;
    await pool.connect('org-b.test', route);
    assert.equal(dialled.length, 4, 'a closed one is replaced');
  });

  it('answers 503 when DNS names nothing or TLS fails, 480 when every server timed out', async () => {
    const failing = (reason: 'timeout' | 'tls' | 'unreachable') => new PartnerPool({
      dns: tableDns({}, { 'org-b.test': ['192.0.2.1'] }),
      logger,
      credentials: () => ({ cert: Buffer.alloc(0), key: Buffer.alloc(0), ca: undefined }),
      dial: async () => ({ ok: false, reason, message: reason === 'timeout' ? 'no TLS handshake within 10000 ms' : 'TLS: self-signed certificate' }),
    });
    const route = { kind: 'dns-srv', domain: 'org-b.test' } as const;
    const timedOut = await failing('timeout').connect('org-b.test', route);
    assert.ok(!timedOut.ok);
    assert.equal(timedOut.status, 480);
    assert.match(timedOut.warning, /org-b.test cannot be reached: org-b.test:5061 \(A\/AAAA of org-b.test.*192.0.2.1\): no TLS handshake/);
    const tls = await failing('tls').connect('org-b.test', route);
    assert.ok(!tls.ok && tls.status === 503 && /self-signed/.test(tls.warning));
    const nothing = await failing('tls').connect('org-x.test', { kind: 'dns-srv', domain: 'org-x.test' });
    assert.ok(!nothing.ok && nothing.status === 503 && /org-x.test has no A or AAAA record/.test(nothing.warning), JSON.stringify(nothing));
    assert.deepEqual(unreachable('x.test', []), { ok: false, status: 503, warning: 'x.test has no server to connect to' });
    const mixed = unreachable('x.test', [{ reason: 'timeout', text: 'a' }, { reason: 'tls', text: 'b' }]);
    assert.equal(mixed.ok === false && mixed.status, 503, 'a server refused by the TLS checks is not a matter of time');
  });
});
