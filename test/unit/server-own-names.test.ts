// The one rule for which host names are this server's (src/server/own-names.ts): what a Host header
// may put into a URL Parley gives a client. Pure: the machine's names are given, the clock is ours.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatAuthority, isLoopback, OwnNames, parseHostHeader } from '../../src/server/own-names.ts';

function names(options: { listen?: string; publicHosts?: string[]; addresses?: string[]; publicUrl?: string } = {}) {
  let now = 0;
  let addresses = options.addresses ?? ['127.0.0.1', '::1', '192.0.2.10'];
  let reads = 0;
  const own = new OwnNames({
    listen: options.listen ?? '0.0.0.0',
    domain: 'parley.test',
    publicHosts: options.publicHosts ?? ['im.example.com'],
    publicUrl: options.publicUrl ?? null,
    httpPort: () => 8080,
    system: { hostname: () => 'Parley-Host', addresses: () => (reads++, addresses) },
    now: () => now,
  });
  return {
    own,
    advance: (ms: number) => void (now += ms),
    setAddresses: (a: string[]) => void (addresses = a),
    reads: () => reads,
  };
}

describe('parseHostHeader (RFC 9110 §7.2)', () => {
  it('takes host names, IPv4 and bracketed IPv6, with an optional port, lower-cased', () => {
    assert.deepEqual(parseHostHeader('Mail.Example.COM'), { host: 'mail.example.com', port: null });
    assert.deepEqual(parseHostHeader('mail.example.com.:443'), { host: 'mail.example.com', port: 443 });
    assert.deepEqual(parseHostHeader('192.0.2.1:8080'), { host: '192.0.2.1', port: 8080 });
    assert.deepEqual(parseHostHeader('[2001:DB8::1]:80'), { host: '2001:db8::1', port: 80 });
  });

  it('refuses what is not a host: user info, paths, spaces, bad ports and bad addresses', () => {
    for (const bad of ['evil.example@127.0.0.1', 'evil.example/x', 'a b', 'host:0', 'host:65536', 'host:', '[::g]', '[127.0.0.1]', '-bad.example', 'a..b', '', ':80']) {
      assert.equal(parseHostHeader(bad), undefined, bad);
    }
  });

  it('writes an authority back with IPv6 in brackets', () => {
    assert.equal(formatAuthority('2001:db8::1', 80), '[2001:db8::1]:80');
    assert.equal(formatAuthority('mail.example.com', null), 'mail.example.com');
  });
});

describe('isLoopback', () => {
  it('knows localhost and the loopback addresses, and nothing else', () => {
    for (const host of ['localhost', 'app.localhost', '127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(host), true, host);
    for (const host of ['localhost.example', '128.0.0.1', '::2', '::ffff:10.0.0.1', '127.0.0.1.nip.io']) assert.equal(isLoopback(host), false, host);
  });
});

describe('OwnNames', () => {
  it('owns the domain and its subdomains, the listen address, loopback, publicHosts, the host name and interface addresses', () => {
    const { own } = names({ listen: '198.51.100.7' });
    for (const host of ['parley.test', 'autodiscover.parley.test', 'PARLEY.TEST.', '198.51.100.7', 'localhost', '127.0.0.1', '[::1]', 'im.example.com', 'parley-host', '192.0.2.10']) {
      assert.equal(own.isOwn(host), true, host);
    }
    for (const host of ['evil.example', 'parley.test.evil.example', 'evilparley.test', 'example.com', '192.0.2.11']) assert.equal(own.isOwn(host), false, host);
  });

  it("answers a Host of its own rebuilt from its parts, and anything else with the server's own default", () => {
    const { own } = names({ listen: '198.51.100.7' });
    assert.deepEqual(own.authorityFor('Autodiscover.Parley.Test:443'), { authority: 'autodiscover.parley.test:443', foreign: null });
    assert.deepEqual(own.authorityFor('evil.example'), { authority: '198.51.100.7:8080', foreign: 'evil.example' });
    assert.deepEqual(own.authorityFor('evil.example@127.0.0.1'), { authority: '198.51.100.7:8080', foreign: 'evil.example@127.0.0.1' });
    assert.deepEqual(own.authorityFor(undefined), { authority: '198.51.100.7:8080', foreign: null }, 'HTTP/1.0 without Host: nothing refused');
  });

  it('names the machine\'s first routable address by default when listening on every address (the domain when it has none), and an IPv6 listen address in brackets', () => {
    assert.equal(names({ listen: '0.0.0.0' }).own.defaultAuthority(), '192.0.2.10:8080');
    assert.equal(names({ listen: '::', addresses: ['::1', 'fe80::1', '2001:db8::7', '192.0.2.10'] }).own.defaultAuthority(), '192.0.2.10:8080', 'IPv4 first');
    assert.equal(names({ listen: '::', addresses: ['::1', 'fe80::1', '2001:db8::7'] }).own.defaultAuthority(), '[2001:db8::7]:8080', 'never link-local');
    assert.equal(names({ listen: '0.0.0.0', addresses: ['127.0.0.1', '::1'] }).own.defaultAuthority(), 'parley.test:8080');
    assert.equal(names({ listen: '2001:db8::5' }).own.defaultAuthority(), '[2001:db8::5]:8080');
    assert.equal(names({ listen: '127.0.0.1' }).own.defaultAuthority(), '127.0.0.1:8080');
  });

  it('prefers the local address of the connection to anything but a Host of its own, and never a wildcard', () => {
    const { own } = names({ listen: '0.0.0.0' });
    assert.deepEqual(own.authorityFor('evil.example', '10.1.2.3'), { authority: '10.1.2.3:8080', foreign: 'evil.example' });
    assert.deepEqual(own.authorityFor(undefined, '::ffff:127.0.0.1'), { authority: '127.0.0.1:8080', foreign: null }, 'a dual-stack socket\'s IPv4 address, plain');
    assert.deepEqual(own.authorityFor(undefined, '::1'), { authority: '[::1]:8080', foreign: null });
    assert.deepEqual(own.authorityFor(undefined, '0.0.0.0'), { authority: '192.0.2.10:8080', foreign: null });
    assert.deepEqual(own.authorityFor('127.0.0.1:9000', '10.1.2.3'), { authority: '127.0.0.1:9000', foreign: null }, 'a Host of ours wins');
    assert.deepEqual(own.baseFor({ host: 'evil.example', localAddress: '10.1.2.3', secure: true }), { base: 'https://10.1.2.3:8080', foreign: 'evil.example' });
    assert.equal(own.clientBase('10.1.2.3'), 'http://10.1.2.3:8080');
  });

  it('with publicUrl, gives it to everyone and owns its host', () => {
    const { own } = names({ listen: '0.0.0.0', publicUrl: 'https://chat.example.com' });
    assert.deepEqual(own.baseFor({ host: '127.0.0.1:8080', localAddress: '127.0.0.1' }), { base: 'https://chat.example.com', foreign: null });
    assert.deepEqual(own.baseFor({ host: 'evil.example', localAddress: '10.1.2.3' }), { base: 'https://chat.example.com', foreign: null });
    assert.equal(own.clientBase('10.1.2.3'), 'https://chat.example.com');
    assert.equal(own.isOwn('chat.example.com'), true);
    assert.equal(own.startupWarning(null), null);
  });

  it('warns at start-up only when listening everywhere with no publicUrl and no routable address, naming the settings', () => {
    assert.equal(names({ listen: '0.0.0.0' }).own.startupWarning(null), null, 'the machine has 192.0.2.10');
    assert.equal(names({ listen: '127.0.0.1', addresses: ['127.0.0.1'] }).own.startupWarning(null), null, 'loopback on purpose');
    const warning = names({ listen: '0.0.0.0', addresses: ['127.0.0.1', '::1'] }).own.startupWarning(null);
    assert.match(warning ?? '', /listening on 0\.0\.0\.0.*parley\.test:8080.*Set publicUrl.*sip\.advertise/);
    assert.doesNotMatch(names({ listen: '::', addresses: ['::1'] }).own.startupWarning('sip.example.com') ?? '', /sip\.advertise/);
  });

  it('reads the interface addresses again for an unknown name, at most once a minute', () => {
    const t = names();
    assert.equal(t.reads(), 1);
    t.setAddresses(['192.0.2.99']);
    assert.equal(t.own.isOwn('192.0.2.99'), false, 'read less than a minute ago');
    assert.equal(t.own.isOwn('evil.example'), false);
    assert.equal(t.reads(), 1, 'unknown names within the minute cost no new read');
    t.advance(60_000);
    assert.equal(t.own.isOwn('192.0.2.99'), true, 'a new address is seen after the minute');
    assert.equal(t.reads(), 2);
    assert.equal(t.own.isOwn('192.0.2.10'), false, 'an address the machine no longer has is not ours');
  });
});
