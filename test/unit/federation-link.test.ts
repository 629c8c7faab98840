// The federation link's pure parts (issue 15): certificate names (RFC 6125), SRV order (RFC 2782),
// targets, the pool's outcomes. The DNS it asks (src/dns) is test/unit/dns.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SrvRecord } from '../../src/dns/index.ts';
import {
  PartnerPool, certificateNames, checkPartnerIdentity, matchingName, nameMatches, orderSrv, routeTargets, serviceRefused, unreachable,
} from '../../src/federation/index.ts';
import type { PartnerDns } from '../../src/federation/index.ts';
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
