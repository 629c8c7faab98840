import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../../src/server/config.ts';
import { connectionLimits } from '../../src/server/connections.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(content: string): string {
  const p = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, content);
  return p;
}

describe('server configuration', () => {
  it('uses the documented defaults', () => {
    const c = loadConfig(undefined, {});
    assert.equal(c.domain, 'parley.local');
    assert.equal(c.sipPort, 5060);
    assert.equal(c.httpPort, 8080);
    assert.equal(c.dataDir, './data');
    assert.equal(c.messaging.maxBody, 64 * 1024);
  });

  it('lets flags override the file, and the file override defaults', () => {
    const c = loadConfig(file(JSON.stringify({ domain: 'example.org', sipPort: 5070, registrar: { minExpires: 30 } })), { sipPort: 0 });
    assert.equal(c.domain, 'example.org');
    assert.equal(c.sipPort, 0);
    assert.equal(c.registrar.minExpires, 30);
    assert.equal(c.registrar.maxExpires, DEFAULT_CONFIG.registrar.maxExpires);
  });

  it('keeps state in SQLite unless database names PostgreSQL, from the file or --database', () => {
    assert.equal(loadConfig(undefined, {}).database, null);
    assert.equal(loadConfig(file('{"database": "postgres://parley@db.example.com/parley"}'), {}).database, 'postgres://parley@db.example.com/parley');
    assert.equal(loadConfig(undefined, { database: 'postgresql:///parley?host=/var/run/postgresql' }).database, 'postgresql:///parley?host=/var/run/postgresql');
    assert.throws(() => loadConfig(file('{"database": "mysql://db/parley"}'), {}), /config\.database must be a PostgreSQL address such as "postgres:\/\/parley@db\.example\.com\/parley", or null for SQLite/);
  });

  it('is frozen after start-up', () => {
    const c = loadConfig(undefined, {});
    assert.throws(() => {
      (c as { domain: string }).domain = 'x';
    }, TypeError);
  });

  it('wants whole seconds and bindings for the registrar', () => {
    assert.throws(() => loadConfig(file('{"registrar": {"maxBindings": 1.5}}'), {}), /config\.registrar\.maxBindings must be a whole number from 1 to 1000, not 1.5/);
    assert.throws(() => loadConfig(file('{"registrar": {"minExpires": 60.5}}'), {}), /config\.registrar\.minExpires must be a whole number/);
  });

  it('names the setting that is wrong', () => {
    assert.throws(() => loadConfig(file('{"sipPort": 70000}'), {}), (e: Error) => e instanceof ConfigError && /config\.sipPort must be a port/.test(e.message));
    assert.throws(() => loadConfig(file('{"sipPrt": 1}'), {}), /unknown setting config\.sipPrt; known: domain/);
    assert.throws(() => loadConfig(file('{"domain": "Not A Domain"}'), {}), /config\.domain must be a lower-case domain/);
    assert.throws(() => loadConfig(file('{"tls": {"cert": "a.pem"}}'), {}), /config\.tls\.key is required/);
    assert.throws(() => loadConfig(file('{nope'), {}), /is not valid JSON/);
    assert.throws(() => loadConfig(path.join(dir, 'missing.json'), {}), /cannot read config file/);
    assert.throws(() => loadConfig(undefined, { logLevel: 'loud' as 'info' }), /flag\.logLevel must be one of/);
  });
});

describe('digest algorithms setting', () => {
  it('defaults to SHA-256 then MD5, and takes a flag or the file', () => {
    assert.deepEqual(loadConfig(undefined, {}).sip.digestAlgorithms, ['SHA-256', 'MD5']);
    assert.deepEqual(loadConfig(undefined, { digestAlgorithms: ['MD5'] }).sip.digestAlgorithms, ['MD5']);
    assert.deepEqual(loadConfig(file('{"sip": {"digestAlgorithms": ["SHA-256"]}}'), {}).sip.digestAlgorithms, ['SHA-256']);
  });

  it('refuses unknown, repeated or no algorithms', () => {
    assert.throws(() => loadConfig(undefined, { digestAlgorithms: ['SHA-1' as 'MD5'] }), /flag\.digestAlgorithms must list one or more of SHA-256, MD5/);
    assert.throws(() => loadConfig(undefined, { digestAlgorithms: ['MD5', 'MD5'] }), /no repeats/);
    assert.throws(() => loadConfig(file('{"sip": {"digestAlgorithms": []}}'), {}), /config\.sip\.digestAlgorithms must list/);
  });
});

describe('SIP connection settings (sip.connections)', () => {
  it('has defaults, and takes some keys from the file over the others', () => {
    assert.deepEqual(loadConfig(undefined, {}).sip.connections, { idleTimeout: 60, messageTimeout: 20, maxPerSource: 3000, maxTotal: 50_000, unauthenticatedBufferBudget: 16 * 1024 * 1024 });
    const c = loadConfig(file('{"sip": {"t1": 400, "connections": {"idleTimeout": 1.5, "maxPerSource": 8}}}'), {});
    assert.equal(c.sip.t1, 400);
    assert.deepEqual(c.sip.connections, { idleTimeout: 1.5, messageTimeout: 20, maxPerSource: 8, maxTotal: 50_000, unauthenticatedBufferBudget: 16 * 1024 * 1024 });
  });

  it('names what is wrong', () => {
    assert.throws(() => loadConfig(file('{"sip": {"connections": {"maxPerSource": 2.5}}}'), {}), /config\.sip\.connections\.maxPerSource must be a whole number from 1/);
    assert.throws(() => loadConfig(file('{"sip": {"connections": {"idleTimeout": 0}}}'), {}), /config\.sip\.connections\.idleTimeout must be a number from 0\.1/);
    assert.throws(() => loadConfig(file('{"sip": {"connections": {"maxIdle": 1}}}'), {}), /unknown setting config\.sip\.connections\.maxIdle; known: idleTimeout/);
    assert.throws(() => loadConfig(file('{"sip": {"connections": {"maxPerSource": 10, "maxTotal": 5}}}'), {}), /maxPerSource \(10\) must not exceed sip\.connections\.maxTotal \(5\)/);
    assert.throws(
      () => loadConfig(file('{"messaging": {"maxBody": 100000}, "sip": {"connections": {"unauthenticatedBufferBudget": 150000}}}'), {}),
      /unauthenticatedBufferBudget \(150000\) must be at least twice the largest body a request may have \(100000: messaging\.maxBody/,
    );
  });

  it('becomes the limits of the guard in ms, the total kept under the open-file limit', () => {
    const settings = { idleTimeout: 1.5, messageTimeout: 20, maxPerSource: 100, maxTotal: 50_000, unauthenticatedBufferBudget: 1 << 20 };
    assert.deepEqual(connectionLimits(settings, null), { limits: { idleTimeoutMs: 1500, messageTimeoutMs: 20_000, maxPerSource: 100, maxTotal: 50_000, unauthenticatedBufferBudget: 1 << 20 }, lowered: false });
    assert.equal(connectionLimits(settings, 20_000).limits.maxTotal, 19_000, '5 % of the files are kept for the rest');
    assert.equal(connectionLimits(settings, 1024).limits.maxTotal, 768, 'at least 256 are kept');
    assert.equal(connectionLimits(settings, 20_000).lowered, true);
    assert.equal(connectionLimits(settings, 1_000_000).lowered, false);
  });
});

describe('SMTP settings', () => {
  it('accepts routes per domain and a smarthost, and names what is wrong', () => {
    const c = loadConfig(file(JSON.stringify({ smtpPort: 2525, smtpRoutes: { domains: { 'partner.example': { host: '127.0.0.1', port: 2526 } }, smarthost: { host: 'relay.example', port: 587, requireTls: true } } })), {});
    assert.equal(c.smtpPort, 2525);
    assert.equal(c.smtpRoutes.domains?.['partner.example']?.port, 2526);
    assert.throws(() => loadConfig(file(JSON.stringify({ smtpRoutes: { domains: { 'partner.example': { host: 'x' } } } })), {}), /config\.smtpRoutes\.domains\.partner\.example needs host and port/);
    assert.throws(() => loadConfig(file(JSON.stringify({ smtpRoutes: { smarthost: { host: 'x', port: 25, tls: true } } })), {}), /unknown setting config\.smtpRoutes\.smarthost\.tls/);
    assert.throws(() => loadConfig(file(JSON.stringify({ smtpRoutes: { domains: { 'Bad Domain': { host: 'x', port: 25 } } } })), {}), /must be a lower-case domain/);
  });

  it('MX routing is on unless smtpRoutes.mx is false; dnsServers are addresses, [] the system resolver', () => {
    const d = loadConfig(undefined, {});
    assert.equal(d.smtpRoutes.mx, undefined, 'absent: on');
    assert.deepEqual(d.dnsServers, [], 'the system resolver\'s servers');
    const c = loadConfig(file(JSON.stringify({ smtpRoutes: { mx: false }, dnsServers: ['192.0.2.53', '[2001:db8::53]:5353'] })), {});
    assert.equal(c.smtpRoutes.mx, false);
    assert.deepEqual(c.dnsServers, ['192.0.2.53', '[2001:db8::53]:5353']);
    assert.throws(() => loadConfig(file(JSON.stringify({ smtpRoutes: { mx: 'yes' } })), {}), /config\.smtpRoutes\.mx/);
    assert.throws(() => loadConfig(file(JSON.stringify({ dnsServers: ['dns.example'] })), {}), /config\.dnsServers must list up to 8 DNS servers as IP addresses/);
  });
});

describe('publicHosts setting', () => {
  it('defaults to none, takes host names and addresses (lower-cased), and names what is wrong', () => {
    assert.deepEqual(loadConfig(undefined, {}).publicHosts, []);
    assert.deepEqual(loadConfig(file('{"publicHosts": ["IM.Example.com", "192.0.2.10", "[2001:db8::1]"]}'), {}).publicHosts, ['im.example.com', '192.0.2.10', '2001:db8::1']);
    assert.throws(() => loadConfig(file('{"publicHosts": "im.example.com"}'), {}), /config\.publicHosts must be a list/);
    assert.throws(() => loadConfig(file('{"publicHosts": ["https://im.example.com"]}'), {}), /config\.publicHosts\[0\] must be a host name or IP address without port or scheme/);
    assert.throws(() => loadConfig(file('{"publicHosts": ["ok.example", "im.example.com:443"]}'), {}), /config\.publicHosts\[1\]/);
  });
});

describe('publicUrl and sip.advertise settings', () => {
  it('default to none; publicUrl is kept as its origin, also from --public-url', () => {
    const d = loadConfig(undefined, {});
    assert.equal(d.publicUrl, null);
    assert.equal(d.sip.advertise, null);
    assert.equal(loadConfig(file('{"publicUrl": "HTTPS://Chat.Example.com:443/"}'), {}).publicUrl, 'https://chat.example.com');
    assert.equal(loadConfig(file('{"publicUrl": "http://[2001:db8::1]:8080"}'), {}).publicUrl, 'http://[2001:db8::1]:8080');
    assert.equal(loadConfig(undefined, { publicUrl: 'http://192.0.2.10:8080/' }).publicUrl, 'http://192.0.2.10:8080');
  });

  it('refuse what no client could use, naming the setting and the reason', () => {
    assert.throws(() => loadConfig(file('{"publicUrl": "chat.example.com"}'), {}), /config\.publicUrl must be the URL clients reach this server at/);
    assert.throws(() => loadConfig(file('{"publicUrl": "ftp://chat.example.com"}'), {}), /config\.publicUrl .*the scheme is not http or https/);
    assert.throws(() => loadConfig(file('{"publicUrl": "https://chat.example.com/parley"}'), {}), /config\.publicUrl .*no path, query or fragment/);
    assert.throws(() => loadConfig(file('{"publicUrl": "https://chat.example.com/?a=1"}'), {}), /no path, query or fragment/);
    assert.throws(() => loadConfig(file('{"publicUrl": "https://u:p@chat.example.com"}'), {}), /no user name or password/);
    assert.throws(() => loadConfig(file('{"publicUrl": "http://0.0.0.0:8080"}'), {}), /"every address"/);
    assert.throws(() => loadConfig(undefined, { publicUrl: 'nope' }), /flag\.publicUrl must be/);
  });

  it('listen takes IPv4 and IPv6 addresses, and nothing that only looks like one', () => {
    for (const listen of ['0.0.0.0', '::', '::1', '2001:db8::5', '127.0.0.1', 'localhost']) assert.equal(loadConfig(undefined, { listen }).listen, listen);
    for (const listen of ['1.2', ':::', '[::1]', '0.0.0.0:5060']) assert.throws(() => loadConfig(undefined, { listen }), /flag\.listen must be an IP address to listen on/, listen);
  });

  it('sip.advertise takes host[:port], IPv6 in brackets', () => {
    assert.equal(loadConfig(file('{"sip": {"advertise": "SIP.Example.com"}}'), {}).sip.advertise, 'sip.example.com');
    assert.equal(loadConfig(file('{"sip": {"advertise": "203.0.113.5:5070"}}'), {}).sip.advertise, '203.0.113.5:5070');
    assert.equal(loadConfig(file('{"sip": {"advertise": "[2001:DB8::5]:5060"}}'), {}).sip.advertise, '[2001:db8::5]:5060');
    assert.throws(() => loadConfig(file('{"sip": {"advertise": "sip:me@host"}}'), {}), /config\.sip\.advertise must be the host\[:port\]/);
    assert.throws(() => loadConfig(file('{"sip": {"advertise": "2001:db8::5"}}'), {}), /config\.sip\.advertise must be/);
    assert.throws(() => loadConfig(file('{"sip": {"advertise": "0.0.0.0"}}'), {}), /config\.sip\.advertise must name an address clients can reach/);
  });
});

describe('quota settings', () => {
  it('defaults to Exchange-like mailbox quotas scaled to IM and per-user spool limits', () => {
    const c = loadConfig(undefined, {});
    assert.deepEqual(c.mailboxQuota, { issueWarningQuota: 400 * 2 ** 20, prohibitSendQuota: 450 * 2 ** 20, prohibitSendReceiveQuota: 500 * 2 ** 20, recoverableItemsQuota: 500 * 2 ** 20 });
    assert.deepEqual(c.offlineIm.senderQuota, { maxBytes: 10 * 2 ** 20, maxMessages: 1000, perMinute: 60 });
    assert.deepEqual(c.offlineIm.recipientQuota, { maxBytes: 20 * 2 ** 20, maxMessages: 2000 });
  });

  it('takes sizes as bytes, "10MB" or "unlimited", key by key over the defaults', () => {
    const c = loadConfig(file(JSON.stringify({ offlineIm: { commitWindowMs: 5, senderQuota: { maxBytes: '1MB', perMinute: 'unlimited' } }, mailboxQuota: { prohibitSendReceiveQuota: '2.3 GB' } })), {});
    assert.deepEqual(c.offlineIm.senderQuota, { maxBytes: 2 ** 20, maxMessages: 1000, perMinute: Infinity });
    assert.equal(c.offlineIm.commitWindowMs, 5);
    assert.equal(c.offlineIm.recipientQuota.maxMessages, 2000);
    assert.equal(c.mailboxQuota.prohibitSendReceiveQuota, Math.floor(2.3 * 2 ** 30));
    assert.equal(c.mailboxQuota.prohibitSendQuota, 450 * 2 ** 20);
  });

  it('names the quota setting that is wrong', () => {
    assert.throws(() => loadConfig(file('{"mailboxQuota": {"prohibitSendReceiveQuota": "lots"}}'), {}), /config\.mailboxQuota\.prohibitSendReceiveQuota must be a size such as 10485760, "10MB", "2.3 GB" or "unlimited", not "lots"/);
    assert.throws(() => loadConfig(file('{"offlineIm": {"senderQuota": {"maxMessages": 0}}}'), {}), /config\.offlineIm\.senderQuota\.maxMessages must be a whole number of at least 1, or "unlimited"/);
    assert.throws(() => loadConfig(file('{"offlineIm": {"recipientQuota": {"perMinute": 5}}}'), {}), /unknown setting config\.offlineIm\.recipientQuota\.perMinute; known: maxBytes, maxMessages/);
  });
});

describe('httpsPort', () => {
  it('is off by default and needs a certificate', () => {
    assert.equal(loadConfig(undefined, {}).httpsPort, null);
    assert.throws(() => loadConfig(undefined, { httpsPort: 8443 }), /httpsPort needs a certificate: set tls/);
    assert.throws(() => loadConfig(file('{"httpsPort": "8443"}'), {}), /config\.httpsPort must be a port number/);
    const c = loadConfig(file('{"tls": {"cert": "c.pem", "key": "k.pem"}, "httpsPort": 8443}'), {});
    assert.equal(c.httpsPort, 8443);
  });
});

describe('acme', () => {
  const good = { directoryUrl: 'https://acme.example/directory', domains: ['im.example.com'], termsOfServiceAgreed: true };
  it('is off by default; renewBeforeDays defaults to 30; it gives httpsPort its certificate', () => {
    assert.equal(loadConfig(undefined, {}).acme, null);
    const c = loadConfig(file(JSON.stringify({ acme: good, httpsPort: 8443 })), {});
    assert.deepEqual(c.acme, { ...good, renewBeforeDays: 30 });
    assert.equal(c.httpsPort, 8443);
  });

  it('names the setting that is wrong or missing', () => {
    const bad = (acme: object): string => {
      try {
        loadConfig(file(JSON.stringify({ acme })), {});
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    assert.match(bad({ ...good, termsOfServiceAgreed: false }), /config\.acme\.termsOfServiceAgreed must be true/);
    assert.match(bad({ ...good, directoryUrl: 'http://acme.example/directory' }), /config\.acme\.directoryUrl must be the https:\/\/ URL/);
    assert.match(bad({ ...good, domains: [] }), /config\.acme\.domains must list 1 to 100 domain names/);
    assert.match(bad({ ...good, domains: ['Im.Example.com'] }), /config\.acme\.domains\[0\] must be a lower-case domain name/);
    assert.match(bad({ ...good, renewBeforeDays: 0 }), /config\.acme\.renewBeforeDays must be a whole number from 1 to 3650/);
    assert.match(bad({ directoryUrl: good.directoryUrl, termsOfServiceAgreed: true }), /config\.acme\.domains is required/);
    assert.match(bad({ ...good, staging: true }), /unknown setting config\.acme\.staging/);
    assert.throws(() => loadConfig(file(JSON.stringify({ acme: good, tls: { cert: 'c.pem', key: 'k.pem' } })), {}), /set tls \(your own PEM files\) or acme .*not both/);
  });
});
