// The FederationGate (src/federation/gate.ts) on a real SQLite database: the certificate check
// against ProxyFqdn and SRV targets, the organisation's rules, the recipient's policy with one
// answer for unknown and not-enabled users, the outbound decision and connect's route. DNS is a table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, addUser } from '../../src/directory/index.ts';
import { DnsError } from '../../src/dns/index.ts';
import type { SrvRecord } from '../../src/dns/index.ts';
import { FEDERATION_MIGRATIONS, FederationLink, addDomain, inboundDecision, updateAccessEdge } from '../../src/federation/index.ts';
import type { PartnerDns, PartnerRoute } from '../../src/federation/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { EXTERNAL_ACCESS_POLICY, SETTINGS_MIGRATIONS, createInstance, grantPolicy } from '../../src/settings/index.ts';
import type { Flow, PartnerPeer } from '../../src/sip/index.ts';
import type { Database } from '../../src/storage/index.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';

const change = { actor: 'test', cmdlet: 'test', now: () => 1000 };
const OWN = 'org-a.test';

async function fresh(): Promise<Database> {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, FEDERATION_MIGRATIONS]);
  await addUser(sqliteSql(db), { address: `alice@${OWN}`, password: 'pw-alice-1' });
  await addUser(sqliteSql(db), { address: `bob@${OWN}`, password: 'pw-bob-1' });
  await createInstance(sqliteSql(db), EXTERNAL_ACCESS_POLICY, { scope: 'tag', name: 'Federated' }, { EnableFederationAccess: true }, change);
  await grantPolicy(sqliteSql(db), EXTERNAL_ACCESS_POLICY, `alice@${OWN}`, 'Federated', change);
  updateAccessEdge(db, { AllowFederatedUsers: true }, change);
  return db;
}

function gate(db: Database, srv: Record<string, SrvRecord[]> = {}, failing = false) {
  const asked: string[] = [];
  const routes: Array<[string, PartnerRoute]> = [];
  const dns: PartnerDns = {
    srv: async (name) => {
      asked.push(name);
      if (failing) throw new DnsError('DNS_TIMEOUT', 'no answer within 2000 ms');
      return { records: srv[name] ?? [], ttl: 60 };
    },
    addresses: async () => ({ records: [], ttl: 60 }),
  };
  const link = new FederationLink({
    db,
    domain: OWN,
    sentBy: 'sip.org-a.test:5061',
    dns,
    logger: createLogger('silent'),
    pool: { connect: async (domain, route) => (routes.push([domain, route]), { ok: false, status: 503, warning: 'test' }) },
  });
  return { link, asked, routes };
}

const partnerFlow = (partner: PartnerPeer | undefined, id = 'tls:x'): Flow => ({ id, partner, closed: false }) as unknown as Flow;
const target = (host: string): SrvRecord => ({ priority: 0, weight: 0, port: 5061, target: host });

describe('federation gate: inbound', () => {
  it('verifies the certificate by ProxyFqdn, without asking DNS', async () => {
    const db = await fresh();
    addDomain(db, 'allowed', 'org-b.test', { ProxyFqdn: 'sip.org-b.test:5061' }, change);
    const { link, asked } = gate(db);
    assert.equal(await link.inboundRefusal(partnerFlow({ names: ['sip.org-b.test'] }), 'Org-B.test', `alice@${OWN}`), null);
    assert.equal(await link.inboundRefusal(partnerFlow({ names: ['*.org-b.test'] }), 'org-b.test', undefined), null, 'a wildcard name covers the proxy');
    assert.deepEqual(asked, []);
  });

  it('verifies by the SRV targets, once per connection and domain', async () => {
    const db = await fresh();
    updateAccessEdge(db, { EnablePartnerDiscovery: true }, change);
    const { link, asked } = gate(db, { '_sipfederationtls._tcp.org-b.test': [target('edge1.org-b.test'), target('edge2.org-b.test')] });
    const flow = partnerFlow({ names: ['edge2.org-b.test'] });
    assert.equal(await link.inboundRefusal(flow, 'org-b.test', `alice@${OWN}`), null);
    assert.equal(await link.inboundRefusal(flow, 'org-b.test', `alice@${OWN}`), null);
    assert.equal(asked.length, 1, 'remembered for the connection');
  });

  it('accepts a connection we opened for the domain', async () => {
    const db = await fresh();
    addDomain(db, 'allowed', 'org-b.test', {}, change);
    const { link, asked } = gate(db);
    assert.equal(await link.inboundRefusal(partnerFlow({ names: ['anything.test'], openedFor: 'org-b.test' }), 'org-b.test', `alice@${OWN}`), null);
    assert.deepEqual(asked, []);
  });

  it('refuses a certificate for another name, naming what it names and what was expected (spoofing)', async () => {
    const db = await fresh();
    addDomain(db, 'allowed', 'org-b.test', { ProxyFqdn: 'sip.org-b.test' }, change);
    addDomain(db, 'allowed', 'org-c.test', { ProxyFqdn: 'sip.org-c.test' }, change);
    const { link } = gate(db, { '_sipfederationtls._tcp.org-c.test': [target('sip.org-c.test')] });
    // org-b's connection claiming a user of org-c
    const refusal = await link.inboundRefusal(partnerFlow({ names: ['sip.org-b.test'] }), 'org-c.test', `alice@${OWN}`);
    assert.equal(refusal?.code, 'PARTNER_NOT_VERIFIED');
    assert.match(refusal?.warning ?? '', /certificate names sip.org-b.test, none of which is a server of org-c.test \(expected sip.org-c.test/);
    const noCertName = await link.inboundRefusal(partnerFlow({ names: [] }), 'org-b.test', undefined);
    assert.match(noCertName?.warning ?? '', /names no DNS name/);
    const notPartner = await link.inboundRefusal(partnerFlow(undefined), 'org-b.test', undefined);
    assert.equal(notPartner?.code, 'PARTNER_NOT_VERIFIED');
  });

  it('does not remember a refusal that came from DNS failing', async () => {
    const db = await fresh();
    updateAccessEdge(db, { EnablePartnerDiscovery: true }, change);
    const { link, asked } = gate(db, {}, true);
    const flow = partnerFlow({ names: ['sip.org-b.test'] });
    const first = await link.inboundRefusal(flow, 'org-b.test', undefined);
    assert.equal(first?.code, 'PARTNER_NOT_VERIFIED');
    assert.match(first?.warning ?? '', /DNS could not be asked.*no answer within 2000 ms/);
    await link.inboundRefusal(flow, 'org-b.test', undefined);
    assert.equal(asked.length, 2);
  });

  it('applies the organisation rules after the certificate: off, blocked, not allowed', async () => {
    const db = await fresh();
    addDomain(db, 'blocked', 'org-b.test', {}, change);
    const { link } = gate(db, { '_sipfederationtls._tcp.org-b.test': [target('sip.org-b.test')], '_sipfederationtls._tcp.org-d.test': [target('sip.org-d.test')] });
    assert.equal((await link.inboundRefusal(partnerFlow({ names: ['sip.org-b.test'] }), 'org-b.test', `alice@${OWN}`))?.code, 'DOMAIN_BLOCKED');
    assert.equal((await link.inboundRefusal(partnerFlow({ names: ['sip.org-d.test'] }), 'org-d.test', `alice@${OWN}`))?.code, 'DOMAIN_NOT_ALLOWED');
    assert.equal((await link.inboundRefusal(partnerFlow({ names: ['sip.org-d.test'] }), OWN, undefined))?.code, 'BAD_DOMAIN', 'our own domain is no partner');
    updateAccessEdge(db, { AllowFederatedUsers: false }, change);
    const off = await link.inboundRefusal(partnerFlow({ names: ['sip.org-d.test'] }), 'org-d.test', `alice@${OWN}`);
    assert.equal(off?.code, 'FEDERATION_DISABLED');
  });

  it('refuses a recipient without federation and an unknown one with the same text', async () => {
    const db = await fresh();
    addDomain(db, 'allowed', 'org-b.test', { ProxyFqdn: 'sip.org-b.test' }, change);
    const { link } = gate(db);
    const flow = partnerFlow({ names: ['sip.org-b.test'] });
    const bob = await link.inboundRefusal(flow, 'org-b.test', `bob@${OWN}`);
    const nobody = await link.inboundRefusal(flow, 'org-b.test', `nobody@${OWN}`);
    assert.equal(bob?.code, 'USER_NOT_ENABLED');
    assert.equal(nobody?.code, 'USER_NOT_ENABLED');
    assert.equal(bob?.warning.replace('bob', 'X'), nobody?.warning.replace('nobody', 'X'));
    assert.doesNotMatch(bob?.warning ?? '', /Policy|Global|Tag:/, 'no word of our policies');
    assert.equal((inboundDecision(db, { partnerDomain: 'org-b.test', recipient: 'not an address' }) as { code?: string }).code, 'USER_NOT_ENABLED');
  });
});

describe('federation gate: outbound', () => {
  it('refuses as federationDecision does, and connects by the route', async () => {
    const db = await fresh();
    addDomain(db, 'allowed', 'org-b.test', { ProxyFqdn: 'sip.org-b.test:5071' }, change);
    const { link, routes } = gate(db);
    assert.equal(link.outboundRefusal(`alice@${OWN}`, 'org-b.test'), null);
    const bob = link.outboundRefusal(`bob@${OWN}`, 'org-b.test');
    assert.equal(bob?.code, 'USER_NOT_ENABLED');
    assert.match(bob?.warning ?? '', /Grant-CsExternalAccessPolicy/);
    assert.equal(link.outboundRefusal(`alice@${OWN}`, 'org-x.test')?.code, 'DOMAIN_NOT_ALLOWED');
    await link.connect('ORG-B.test');
    assert.deepEqual(routes, [['org-b.test', { kind: 'proxy', target: { host: 'sip.org-b.test', port: 5071 } }]]);
    const own = await link.connect(OWN);
    assert.ok(!own.ok && own.status === 503);
    assert.equal(link.sentBy, 'sip.org-a.test:5061');
  });
});
