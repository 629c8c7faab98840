// Federation administration (issue 15): partner names, the repository, and the decision the
// federation link will ask, on every branch, on both engines; and the cache of the organisation's
// rules the router's gate keeps, which sees every change of the federation tables.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import {
  FEDERATION_MIGRATIONS, FederationRules, addDomain, federationDecision, findDomain, getAccessEdge, listDomains, parseDomain, parseHostPort, partnerRoute, removeDomain, updateAccessEdge, updateDomain,
} from '../../src/federation/index.ts';
import type { FederationDecision } from '../../src/federation/index.ts';
import { EXTERNAL_ACCESS_POLICY, GLOBAL, SettingsError, createInstance, grantPolicy, listAudit, updateInstance } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { addTestUser, migrateSettings } from './settings-fixture.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1000 };
const code = (c: string) => (e: unknown) => e instanceof SettingsError && e.code === c;

after(() => closeTestPostgres());

describe('partner names', () => {
  it('lower-cases a DNS name and refuses what is not one, or the own domain', () => {
    assert.equal(parseDomain(' Partner.Example. '), 'partner.example');
    for (const bad of ['', 'localhost', 'a..b', '-x.example', 'x-.example', 'under_score.example', '10.0.0.1', `${'a'.repeat(64)}.example`, 'sip:x.example']) {
      assert.throws(() => parseDomain(bad), code('BAD_IDENTITY'), bad);
    }
    assert.throws(() => parseDomain('Parley.Test', 'parley.test'), /this server's own domain/);
  });

  it('reads host[:port] with a port from 1 to 65535', () => {
    assert.deepEqual(parseHostPort('SIP.Partner.Example', 'ProxyFqdn'), { host: 'sip.partner.example' });
    assert.deepEqual(parseHostPort('sip.partner.example:5061', 'ProxyFqdn'), { host: 'sip.partner.example', port: 5061 });
    assert.deepEqual(parseHostPort('192.0.2.7:65535', 'ProxyFqdn'), { host: '192.0.2.7', port: 65535 });
    for (const bad of ['host:0', 'host:65536', 'host:', ':5061', 'a b', '[::1]:5061', '300.1.1.1', 'host:50a']) {
      assert.throws(() => parseHostPort(bad, 'ProxyFqdn'), (e: unknown) => e instanceof SettingsError && e.code === 'BAD_VALUE' && e.message.startsWith('-ProxyFqdn'), bad);
    }
  });
});

for (const engine of ENGINES) {
  describe(`federation repository on ${engine.name}`, () => {
    let sql: SqlDatabase;
    beforeEach(async () => {
      sql = await engine.open();
      await migrateSettings(sql, [FEDERATION_MIGRATIONS]);
    });
    afterEach(() => sql.close());
    const audit = async () => (await listAudit(sql)).map((e) => [e.identity, e.property, e.oldValue, e.newValue]);

    it('starts with federation off, no discovery, DNS SRV routing', async () => {
      assert.deepEqual(await getAccessEdge(sql), { AllowFederatedUsers: false, EnablePartnerDiscovery: false, DefaultRouteFqdn: null });
    });

    it('switches routing and checks it as a whole, auditing each change', async () => {
      await assert.rejects(updateAccessEdge(sql, { UseDefaultRouting: true }, change), /-UseDefaultRouting needs -DefaultRouteFqdn/);
      await assert.rejects(updateAccessEdge(sql, { DefaultRouteFqdn: 'edge.example' }, change), /add -UseDefaultRouting/);
      await updateAccessEdge(sql, { AllowFederatedUsers: true, UseDefaultRouting: true, DefaultRouteFqdn: 'Edge.Example:5061' }, change);
      assert.deepEqual(await getAccessEdge(sql), { AllowFederatedUsers: true, EnablePartnerDiscovery: false, DefaultRouteFqdn: { host: 'edge.example', port: 5061 } });
      await updateAccessEdge(sql, { DefaultRouteFqdn: 'edge2.example' }, change);
      assert.deepEqual((await getAccessEdge(sql)).DefaultRouteFqdn, { host: 'edge2.example' }, 'a new host while default routing is on');
      await updateAccessEdge(sql, { UseDefaultRouting: false }, change);
      assert.equal((await getAccessEdge(sql)).DefaultRouteFqdn, null);
      assert.deepEqual(await audit(), [
        ['Global', 'AllowFederatedUsers', 'False', 'True'],
        ['Global', 'UseDnsSrvRouting', 'True', 'False'],
        ['Global', 'UseDefaultRouting', 'False', 'True'],
        ['Global', 'DefaultRouteFqdn', null, 'edge.example:5061'],
        ['Global', 'DefaultRouteFqdn', 'edge.example:5061', 'edge2.example'],
        ['Global', 'UseDnsSrvRouting', 'False', 'True'],
        ['Global', 'UseDefaultRouting', 'True', 'False'],
        ['Global', 'DefaultRouteFqdn', 'edge2.example', null],
      ]);
    });

    it('keeps a domain on one list at most, naming the other list', async () => {
      await addDomain(sql, 'allowed', 'partner.example', { ProxyFqdn: 'SIP.partner.example:5061', Comment: 'Contoso' }, change);
      await assert.rejects(addDomain(sql, 'blocked', 'partner.example', {}, change), (e: unknown) => e instanceof SettingsError && e.code === 'IDENTITY_EXISTS' && /already on the allowed list \(CsAllowedDomain\).*Remove-CsAllowedDomain -Identity partner.example/.test(e.message));
      await assert.rejects(addDomain(sql, 'allowed', 'partner.example', {}, change), /already exists; change it with Set-CsAllowedDomain/);
      await assert.rejects(removeDomain(sql, 'blocked', 'partner.example', change), (e: unknown) => e instanceof SettingsError && e.code === 'UNKNOWN_IDENTITY' && /see Get-CsAllowedDomain/.test(e.message));
      await assert.rejects(addDomain(sql, 'blocked', 'spam.example', { ProxyFqdn: 'x.example' }, change), /a blocked domain has no ProxyFqdn/);
      await addDomain(sql, 'blocked', 'spam.example', {}, change);
      assert.deepEqual((await listDomains(sql)).map((d) => [d.domain, d.list]), [['partner.example', 'allowed'], ['spam.example', 'blocked']]);
      assert.deepEqual((await listDomains(sql, 'blocked')).map((d) => d.domain), ['spam.example']);
      const changed = await updateDomain(sql, 'allowed', 'partner.example', { ProxyFqdn: null }, change);
      assert.equal(changed.proxyFqdn, null);
      assert.equal(changed.comment, 'Contoso', 'a property not given is kept');
      assert.deepEqual(changed.createdAt, new Date(1000));
      await removeDomain(sql, 'allowed', 'partner.example', change);
      assert.equal(await findDomain(sql, 'partner.example'), undefined);
      assert.deepEqual(await audit(), [
        ['partner.example', null, null, 'created'],
        ['partner.example', 'ProxyFqdn', null, 'sip.partner.example:5061'],
        ['partner.example', 'Comment', null, 'Contoso'],
        ['spam.example', null, null, 'created'],
        ['partner.example', 'ProxyFqdn', 'sip.partner.example:5061', null],
        ['partner.example', null, 'existed', 'removed'],
      ]);
    });
  });

  describe(`federationDecision and partnerRoute on ${engine.name}`, () => {
    let sql: SqlDatabase;
    before(async () => {
      sql = await engine.open();
      await migrateSettings(sql, [FEDERATION_MIGRATIONS]);
      await addTestUser(sql, 'alice@parley.test');
      await addTestUser(sql, 'bob@parley.test');
      await createInstance(sql, EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'Federated' }, { EnableFederationAccess: true }, change);
      await grantPolicy(sql, EXTERNAL_ACCESS_POLICY, 'alice@parley.test', 'Federated', change);
      await addDomain(sql, 'allowed', 'partner.example', { ProxyFqdn: 'sip.partner.example:5061' }, change);
      await addDomain(sql, 'allowed', 'srv.example', {}, change);
      await addDomain(sql, 'blocked', 'spam.example', {}, change);
    });
    after(() => sql.close());
    const ask = (user: string, domain: string): Promise<FederationDecision> => federationDecision(sql, { localUser: user, partnerDomain: domain, ownDomain: 'parley.test' });
    const refusal = (d: FederationDecision) => (d.allowed ? 'allowed' : d.code);

    it('refuses everything while federation is off', async () => {
      const d = await ask('alice@parley.test', 'partner.example');
      assert.equal(refusal(d), 'FEDERATION_DISABLED');
      assert.match(d.allowed ? '' : d.reason, /Set-CsAccessEdgeConfiguration -AllowFederatedUsers \$True/);
    });

    it('then decides by the domain lists, discovery and the user policy, in that order', async () => {
      await updateAccessEdge(sql, { AllowFederatedUsers: true }, change);
      assert.deepEqual(await ask('alice@parley.test', 'Partner.Example'), { allowed: true, domain: 'partner.example', route: { kind: 'proxy', target: { host: 'sip.partner.example', port: 5061 } } });
      const blocked = await ask('alice@parley.test', 'spam.example');
      assert.equal(refusal(blocked), 'DOMAIN_BLOCKED');
      assert.match(blocked.allowed ? '' : blocked.reason, /Remove-CsBlockedDomain -Identity spam.example/);
      const unknown = await ask('alice@parley.test', 'other.example');
      assert.equal(refusal(unknown), 'DOMAIN_NOT_ALLOWED');
      assert.match(unknown.allowed ? '' : unknown.reason, /New-CsAllowedDomain -Identity other.example.*-EnablePartnerDiscovery \$True/);
      const bob = await ask('bob@parley.test', 'partner.example');
      assert.equal(refusal(bob), 'USER_NOT_ENABLED');
      assert.match(bob.allowed ? '' : bob.reason, /bob@parley.test \(Global\) has EnableFederationAccess False.*Set-CsExternalAccessPolicy -Identity Global -EnableFederationAccess \$True/);
      assert.equal(refusal(await ask('alice@parley.test', 'parley.test')), 'BAD_DOMAIN');
      assert.equal(refusal(await ask('alice@parley.test', 'not a domain')), 'BAD_DOMAIN');
    });

    it('with partner discovery, reaches unlisted domains but never blocked ones; a changed policy applies at once', async () => {
      await updateAccessEdge(sql, { EnablePartnerDiscovery: true }, change);
      assert.deepEqual(await ask('alice@parley.test', 'other.example'), { allowed: true, domain: 'other.example', route: { kind: 'dns-srv', domain: 'other.example' } });
      assert.equal(refusal(await ask('alice@parley.test', 'spam.example')), 'DOMAIN_BLOCKED');
      await updateInstance(sql, EXTERNAL_ACCESS_POLICY, GLOBAL, { EnableFederationAccess: true }, change);
      assert.equal(refusal(await ask('bob@parley.test', 'other.example')), 'allowed');
      await assert.rejects(ask('nobody@parley.test', 'other.example'), /does not exist/);
    });

    it('routes by ProxyFqdn, else the default route, else DNS SRV', async () => {
      assert.deepEqual(await partnerRoute(sql, 'srv.example'), { kind: 'dns-srv', domain: 'srv.example' });
      await updateAccessEdge(sql, { UseDefaultRouting: true, DefaultRouteFqdn: 'edge.hosting.example' }, change);
      assert.deepEqual(await partnerRoute(sql, 'srv.example'), { kind: 'default-route', target: { host: 'edge.hosting.example' } });
      assert.deepEqual(await partnerRoute(sql, 'PARTNER.example'), { kind: 'proxy', target: { host: 'sip.partner.example', port: 5061 } });
      await updateAccessEdge(sql, { UseDefaultRouting: false }, change);
    });
  });

  // Only the federation tables: runs on both engines now. The tables are written straight, as
  // another process or node would (`parley admin` elsewhere): the version row's triggers tell
  // the cache, on each engine.
  describe(`the organisation's rules, cached, on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let rules: FederationRules;
    before(async () => {
      sql = await engine.open();
      await migrate(sql, [FEDERATION_MIGRATIONS]);
      // checked at every question: each change counts at once, so the test needs no waiting
      rules = new FederationRules(sql, { checkEveryMs: 0 });
    });
    after(() => sql.close());
    const refusal = async (domain: string) => {
      const d = await rules.organisation(domain, 'parley.test');
      return d.allowed ? 'allowed' : d.code;
    };

    it('answers from the tables, and again after every kind of write to them', async () => {
      assert.equal(await refusal('partner.example'), 'FEDERATION_DISABLED');
      await sql.run('UPDATE access_edge_configuration SET allow_federated_users = 1 WHERE id = 1');
      assert.equal(await refusal('partner.example'), 'DOMAIN_NOT_ALLOWED', 'an UPDATE of the configuration');
      await sql.run("INSERT INTO federation_domains (domain, list, proxy_fqdn, comment, created_at) VALUES ('partner.example', 'allowed', NULL, NULL, 1)");
      assert.equal(await refusal('partner.example'), 'allowed', 'an INSERT of a domain');
      assert.deepEqual(await rules.route('partner.example'), { kind: 'dns-srv', domain: 'partner.example' });
      await sql.run("UPDATE federation_domains SET proxy_fqdn = 'sip.partner.example:5061' WHERE domain = 'partner.example'");
      assert.deepEqual(await rules.route('Partner.Example.'), { kind: 'proxy', target: { host: 'sip.partner.example', port: 5061 } }, 'an UPDATE of a domain');
      await sql.run("UPDATE federation_domains SET list = 'blocked', proxy_fqdn = NULL WHERE domain = 'partner.example'");
      assert.equal(await refusal('partner.example'), 'DOMAIN_BLOCKED');
      await sql.run("DELETE FROM federation_domains WHERE domain = 'partner.example'");
      assert.equal(await refusal('partner.example'), 'DOMAIN_NOT_ALLOWED', 'a DELETE of a domain');
      assert.equal(await refusal('parley.test'), 'BAD_DOMAIN', 'the own domain is no partner');
    });

    it('keeps answers while the version row stands still', async () => {
      const kept = new FederationRules(sql, { checkEveryMs: 0 });
      await sql.run('UPDATE access_edge_configuration SET enable_partner_discovery = 1 WHERE id = 1');
      assert.equal((await kept.organisation('other.example', 'parley.test')).allowed, true);
      // behind the triggers' back (a write the version row does not see), the kept answer stays:
      // what the cache serves is exactly what the version row vouches for
      await sql.exec('DROP TRIGGER federation_version_edge' + (sql.engine === 'postgres' ? ' ON access_edge_configuration' : ''));
      await sql.run('UPDATE access_edge_configuration SET enable_partner_discovery = 0 WHERE id = 1');
      assert.equal((await kept.organisation('other.example', 'parley.test')).allowed, true);
      assert.equal((await new FederationRules(sql).organisation('other.example', 'parley.test')).allowed, false, 'uncached, the table is read');
    });
  });
}
