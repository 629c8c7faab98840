// Federation administration (issue 15): partner names, the repository, and the decision the
// federation link will ask, on every branch.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, addUser } from '../../src/directory/index.ts';
import {
  FEDERATION_MIGRATIONS, addDomain, federationDecision, findDomain, getAccessEdge, listDomains, parseDomain, parseHostPort, partnerRoute, removeDomain, updateAccessEdge, updateDomain,
} from '../../src/federation/index.ts';
import type { FederationDecision } from '../../src/federation/index.ts';
import { EXTERNAL_ACCESS_POLICY, GLOBAL, SETTINGS_MIGRATIONS, SettingsError, createInstance, grantPolicy, listAudit, updateInstance } from '../../src/settings/index.ts';
import type { Database } from '../../src/storage/index.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1000 };
const code = (c: string) => (e: unknown) => e instanceof SettingsError && e.code === c;

function fresh(): Database {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, FEDERATION_MIGRATIONS]);
  return db;
}

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

describe('federation repository', () => {
  it('starts with federation off, no discovery, DNS SRV routing', () => {
    assert.deepEqual(getAccessEdge(fresh()), { AllowFederatedUsers: false, EnablePartnerDiscovery: false, DefaultRouteFqdn: null });
  });

  it('switches routing and checks it as a whole, auditing each change', () => {
    const db = fresh();
    assert.throws(() => updateAccessEdge(db, { UseDefaultRouting: true }, change), /-UseDefaultRouting needs -DefaultRouteFqdn/);
    assert.throws(() => updateAccessEdge(db, { DefaultRouteFqdn: 'edge.example' }, change), /add -UseDefaultRouting/);
    updateAccessEdge(db, { AllowFederatedUsers: true, UseDefaultRouting: true, DefaultRouteFqdn: 'Edge.Example:5061' }, change);
    assert.deepEqual(getAccessEdge(db), { AllowFederatedUsers: true, EnablePartnerDiscovery: false, DefaultRouteFqdn: { host: 'edge.example', port: 5061 } });
    updateAccessEdge(db, { DefaultRouteFqdn: 'edge2.example' }, change);
    assert.deepEqual(getAccessEdge(db).DefaultRouteFqdn, { host: 'edge2.example' }, 'a new host while default routing is on');
    updateAccessEdge(db, { UseDefaultRouting: false }, change);
    assert.equal(getAccessEdge(db).DefaultRouteFqdn, null);
    assert.deepEqual(listAudit(db).map((e) => [e.identity, e.property, e.oldValue, e.newValue]), [
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

  it('keeps a domain on one list at most, naming the other list', () => {
    const db = fresh();
    addDomain(db, 'allowed', 'partner.example', { ProxyFqdn: 'SIP.partner.example:5061', Comment: 'Contoso' }, change);
    assert.throws(() => addDomain(db, 'blocked', 'partner.example', {}, change), (e: unknown) => e instanceof SettingsError && e.code === 'IDENTITY_EXISTS' && /already on the allowed list \(CsAllowedDomain\).*Remove-CsAllowedDomain -Identity partner.example/.test(e.message));
    assert.throws(() => addDomain(db, 'allowed', 'partner.example', {}, change), /already exists; change it with Set-CsAllowedDomain/);
    assert.throws(() => removeDomain(db, 'blocked', 'partner.example', change), (e: unknown) => e instanceof SettingsError && e.code === 'UNKNOWN_IDENTITY' && /see Get-CsAllowedDomain/.test(e.message));
    assert.throws(() => addDomain(db, 'blocked', 'spam.example', { ProxyFqdn: 'x.example' }, change), /a blocked domain has no ProxyFqdn/);
    addDomain(db, 'blocked', 'spam.example', {}, change);
    assert.deepEqual(listDomains(db).map((d) => [d.domain, d.list]), [['partner.example', 'allowed'], ['spam.example', 'blocked']]);
    assert.deepEqual(listDomains(db, 'blocked').map((d) => d.domain), ['spam.example']);
    const changed = updateDomain(db, 'allowed', 'partner.example', { ProxyFqdn: null }, change);
    assert.equal(changed.proxyFqdn, null);
    assert.equal(changed.comment, 'Contoso', 'a property not given is kept');
    removeDomain(db, 'allowed', 'partner.example', change);
    assert.equal(findDomain(db, 'partner.example'), undefined);
    assert.deepEqual(listAudit(db).map((e) => [e.identity, e.property, e.oldValue, e.newValue]), [
      ['partner.example', null, null, 'created'],
      ['partner.example', 'ProxyFqdn', null, 'sip.partner.example:5061'],
      ['partner.example', 'Comment', null, 'Contoso'],
      ['spam.example', null, null, 'created'],
      ['partner.example', 'ProxyFqdn', 'sip.partner.example:5061', null],
      ['partner.example', null, 'existed', 'removed'],
    ]);
  });
});

describe('federationDecision and partnerRoute', () => {
  let db: Database;
  before(async () => {
    db = fresh();
    await addUser(sqliteSql(db), { address: 'alice@parley.test', password: 'pw' });
    await addUser(sqliteSql(db), { address: 'bob@parley.test', password: 'pw' });
    await createInstance(sqliteSql(db), EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'Federated' }, { EnableFederationAccess: true }, change);
    await grantPolicy(sqliteSql(db), EXTERNAL_ACCESS_POLICY, 'alice@parley.test', 'Federated', change);
    addDomain(db, 'allowed', 'partner.example', { ProxyFqdn: 'sip.partner.example:5061' }, change);
    addDomain(db, 'allowed', 'srv.example', {}, change);
    addDomain(db, 'blocked', 'spam.example', {}, change);
  });
  const ask = (user: string, domain: string): FederationDecision => federationDecision(db, { localUser: user, partnerDomain: domain, ownDomain: 'parley.test' });
  const refusal = (d: FederationDecision) => (d.allowed ? 'allowed' : d.code);

  it('refuses everything while federation is off', () => {
    const d = ask('alice@parley.test', 'partner.example');
    assert.equal(refusal(d), 'FEDERATION_DISABLED');
    assert.match(d.allowed ? '' : d.reason, /Set-CsAccessEdgeConfiguration -AllowFederatedUsers \$True/);
  });

  it('then decides by the domain lists, discovery and the user policy, in that order', () => {
    updateAccessEdge(db, { AllowFederatedUsers: true }, change);
    assert.deepEqual(ask('alice@parley.test', 'Partner.Example'), { allowed: true, domain: 'partner.example', route: { kind: 'proxy', target: { host: 'sip.partner.example', port: 5061 } } });
    const blocked = ask('alice@parley.test', 'spam.example');
    assert.equal(refusal(blocked), 'DOMAIN_BLOCKED');
    assert.match(blocked.allowed ? '' : blocked.reason, /Remove-CsBlockedDomain -Identity spam.example/);
    const unknown = ask('alice@parley.test', 'other.example');
    assert.equal(refusal(unknown), 'DOMAIN_NOT_ALLOWED');
    assert.match(unknown.allowed ? '' : unknown.reason, /New-CsAllowedDomain -Identity other.example.*-EnablePartnerDiscovery \$True/);
    const bob = ask('bob@parley.test', 'partner.example');
    assert.equal(refusal(bob), 'USER_NOT_ENABLED');
    assert.match(bob.allowed ? '' : bob.reason, /bob@parley.test \(Global\) has EnableFederationAccess False.*Set-CsExternalAccessPolicy -Identity Global -EnableFederationAccess \$True/);
    assert.equal(refusal(ask('alice@parley.test', 'parley.test')), 'BAD_DOMAIN');
    assert.equal(refusal(ask('alice@parley.test', 'not a domain')), 'BAD_DOMAIN');
  });

  it('with partner discovery, reaches unlisted domains but never blocked ones; a changed policy applies at once', async () => {
    updateAccessEdge(db, { EnablePartnerDiscovery: true }, change);
    assert.deepEqual(ask('alice@parley.test', 'other.example'), { allowed: true, domain: 'other.example', route: { kind: 'dns-srv', domain: 'other.example' } });
    assert.equal(refusal(ask('alice@parley.test', 'spam.example')), 'DOMAIN_BLOCKED');
    await updateInstance(sqliteSql(db), EXTERNAL_ACCESS_POLICY, GLOBAL, { EnableFederationAccess: true }, change);
    assert.equal(refusal(ask('bob@parley.test', 'other.example')), 'allowed');
    assert.throws(() => ask('nobody@parley.test', 'other.example'), /does not exist/);
  });

  it('routes by ProxyFqdn, else the default route, else DNS SRV', () => {
    assert.deepEqual(partnerRoute(db, 'srv.example'), { kind: 'dns-srv', domain: 'srv.example' });
    updateAccessEdge(db, { UseDefaultRouting: true, DefaultRouteFqdn: 'edge.hosting.example' }, change);
    assert.deepEqual(partnerRoute(db, 'srv.example'), { kind: 'default-route', target: { host: 'edge.hosting.example' } });
    assert.deepEqual(partnerRoute(db, 'PARTNER.example'), { kind: 'proxy', target: { host: 'sip.partner.example', port: 5061 } });
    updateAccessEdge(db, { UseDefaultRouting: false }, change);
  });
});
