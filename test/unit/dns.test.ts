// src/dns: the caching stub resolver both the federation link (SRV, A/AAAA) and outbound mail (MX,
// A/AAAA) ask. Answers and their TTLs, NXDOMAIN against NODATA, truncation, failing servers: a fake
// wire and clock, no socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import packet from 'dns-packet';
import type { Answer } from 'dns-packet';
import { CachingResolver, DnsError, parseServer } from '../../src/dns/index.ts';
import type { DnsWire } from '../../src/dns/index.ts';

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
    assert.deepEqual(await dns.srv('_sipfederationtls._tcp.org-c.test'), { records: [], ttl: 30, noSuchName: true });
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

const mxAnswer = (name: string, ttl: number, preference: number, exchange: string): Answer => ({ type: 'MX', name, ttl, class: 'IN', data: { preference, exchange } });

describe('MX records and NXDOMAIN', () => {
  it('reads MX records, lower case without the trailing dot; the null MX "." as an empty exchange', async () => {
    const { wire } = fakeWire({
      'MX org-c.test': { answers: [mxAnswer('org-c.test', 300, 10, 'Mail.Org-C.test.'), mxAnswer('org-c.test', 120, 20, 'backup.org-c.test')] },
      'MX nomail.test': { answers: [mxAnswer('nomail.test', 300, 0, '.')] },
    });
    const dns = new CachingResolver({ servers: ['127.0.0.1'], wire });
    assert.deepEqual(await dns.mx('org-c.test'), { records: [{ preference: 10, exchange: 'mail.org-c.test' }, { preference: 20, exchange: 'backup.org-c.test' }], ttl: 120 });
    assert.deepEqual((await dns.mx('nomail.test')).records, [{ preference: 0, exchange: '' }]);
  });

  it('tells a name that does not exist (NXDOMAIN) from one without records of the type (NODATA)', async () => {
    const { wire } = fakeWire({ 'MX web-only.test': {}, 'A web-only.test': { answers: [aAnswer('web-only.test', 60, '192.0.2.80')] }, 'AAAA web-only.test': {} });
    const dns = new CachingResolver({ servers: ['127.0.0.1'], wire });
    assert.deepEqual(await dns.mx('web-only.test'), { records: [], ttl: 60 });
    assert.deepEqual(await dns.mx('gone.test'), { records: [], ttl: 60, noSuchName: true });
    assert.deepEqual(await dns.addresses('gone.test'), { records: [], ttl: 60, noSuchName: true });
    assert.deepEqual(await dns.addresses('web-only.test'), { records: ['192.0.2.80'], ttl: 60 });
  });
});
