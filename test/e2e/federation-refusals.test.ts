// Federation refusals end to end (issue 15), each with its status and Warning: a partner connection
// whose From claims org-a (spoofing), a certificate for another name (inbound, and a partner server
// presenting one), certificates the test CA did not sign or none, a blocked domain, a domain not
// allowed, a user whose policy forbids federation, federation off. Two Parley organisations
// (test/e2e/federation-env.ts) and raw partners: TLS clients holding a test certificate that speak
// SIP on org-a's federation port, and a TLS server for org-d.test presenting the wrong name.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { rawRequest } from './raw-sip.ts';
import {
  enableFederation, messageReceiver, outcome, partnerConnection, startFederationEnv, tlsHandshake,
  type CertFiles, type FederationEnv, type ParleyOrg, type PartnerConnection,
} from './federation-env.ts';

const A = 'org-a.test';
const B = 'org-b.test';
const D = 'org-d.test';
const NET = 13;
let env: FederationEnv;
let orgA: ParleyOrg;
let orgB: ParleyOrg;
let wrongName: tls.Server;
const atA = sdkClients(() => orgA.server, A, { requestTimeoutMs: 30_000 });
const atB = sdkClients(() => orgB.server, B, { requestTimeoutMs: 30_000 });
const partners: PartnerConnection[] = [];

before(async () => {
  // org-d.test's server: a TLS server with a certificate from the test CA, but for sip.other.test;
  // it listens first (its port goes into the DNS records) and gets the certificate once the
  // environment has made it
  wrongName = tls.createServer({ requestCert: true, rejectUnauthorized: false }, (s) => s.destroy());
  await new Promise<void>((r) => wrongName.listen(0, `127.${NET}.4.2`, () => r()));
  const port = (wrongName.address() as { port: number }).port;
  env = await startFederationEnv({
    net: NET,
    orgs: [{ domain: A, users: ['alice', 'bob'] }, { domain: B, users: ['dave'] }],
    extraDns: { srv: [{ name: `_sipfederationtls._tcp.${D}`, target: `sip.${D}`, port }], a: { [`sip.${D}`]: `127.${NET}.4.2` } },
  });
  const other = env.pki.leaf('sip.other.test');
  wrongName.setSecureContext({ cert: readFileSync(other.cert), key: readFileSync(other.key), ca: readFileSync(env.pki.ca) });
  orgA = env.org(A);
  orgB = env.org(B);
  await enableFederation(orgA, [B]);
  await enableFederation(orgB, [A]);
});

after(async () => {
  for (const p of partners) p.close();
  await atA.closeAll();
  await atB.closeAll();
  await env?.stop();
  await new Promise((r) => wrongName?.close(r));
});

const logs = () => `--- org-a ---\n${orgA.server.logs().slice(-6000)}\n--- org-b ---\n${orgB.server.logs().slice(-3000)}`;
const show = (r: { status: number; headers: { get(name: string): string | undefined } }) => outcome(r, logs);

/** A raw partner on org-a's federation port holding `cert` (a test-CA certificate). */
async function rawPartner(cert: CertFiles): Promise<PartnerConnection> {
  const p = await partnerConnection(orgA.federation, cert, env.pki.ca, orgA.fqdn);
  partners.push(p);
  return p;
}

function message(from: string, to: string, text = 'hello across the link'): string {
  return rawRequest('MESSAGE', `sip:${to}`, { from: `sip:${from}`, to: `sip:${to}`, transport: 'TLS', headers: ['Content-Type: text/plain;charset=UTF-8'], body: text });
}

const warningOf = (r: { headers: { get(name: string): string | undefined } }) => r.headers.get('warning') ?? '';

/** 403 with a Warning from `agent` whose text matches `text`. */
function assertRefused(r: { status: number; headers: { get(name: string): string | undefined } }, agent: string, text: RegExp): void {
  assert.equal(r.status, 403, show(r));
  const w = warningOf(r);
  assert.ok(w.startsWith(`399 ${agent} "`), `Warning from ${agent}: ${w}`);
  assert.match(w, text, show(r));
}

describe('federation refusals', () => {
  it('a partner connection is a partner: org-b\'s certificate, From dave@org-b → 200 (the control for what follows)', async () => {
    const alice = await messageReceiver(atA, 'alice', logs);
    const b = await rawPartner(env.pki.leaf('sip.org-b.test'));
    const res = await b.exchange(message(`dave@${B}`, `alice@${A}`, 'from a raw partner'));
    assert.equal(res.status, 200, show(res));
    assert.equal((await alice.inbox.next()).text, 'from a raw partner');
  });

  it('spoofing: org-b\'s connection with a From of org-a (or of org-c) → 403 with a Warning', async () => {
    const b = await rawPartner(env.pki.leaf('sip.org-b.test'));
    const own = await b.exchange(message(`bob@${A}`, `alice@${A}`, 'I am bob, honest'));
    assertRefused(own, A, /org-a\.test/);
    const third = await b.exchange(message(`erin@org-c.test`, `alice@${A}`, 'I am erin, honest'));
    assertRefused(third, A, /sip\.org-b\.test/);
  });

  it('no open relay: org-b\'s connection may not send to a third domain, nor register or publish at org-a → 403 with a Warning', async () => {
    const b = await rawPartner(env.pki.leaf('sip.org-b.test'));
    const relay = await b.exchange(message(`dave@${B}`, `someone@${D}`, 'pass this on'));
    assert.equal(relay.status, 403, show(relay));
    assert.match(warningOf(relay), /^399 org-a\.test "/, show(relay));
    const register = await b.exchange(rawRequest('REGISTER', `sip:${A}`, { from: `sip:dave@${B}`, to: `sip:dave@${B}`, transport: 'TLS', headers: ['Contact: <sip:dave@127.0.0.1;transport=tls>', 'Expires: 300'] }));
    assert.equal(register.status, 403, show(register));
    assert.match(warningOf(register), /^399 org-a\.test "/, show(register));
    const publish = await b.exchange(rawRequest('PUBLISH', `sip:alice@${A}`, { from: `sip:dave@${B}`, to: `sip:alice@${A}`, transport: 'TLS', headers: ['Event: presence', 'Expires: 60', 'Content-Type: application/pidf+xml'], body: '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@org-a.test"/>' }));
    assert.equal(publish.status, 403, show(publish));
    assert.match(warningOf(publish), /^399 org-a\.test "/, show(publish));
  });

  it('a partner announcing a body over the limit that never comes → 413 with a Warning at once; the link serves on', async () => {
    const b = await rawPartner(env.pki.leaf('sip.org-b.test'));
    // the head of a MESSAGE that claims 10 MB and sends none of it: refused once the head is read
    const head = message(`dave@${B}`, `alice@${A}`, '').replace(/Content-Length: 0\r\n\r\n$/, 'Content-Length: 10000000\r\n\r\n');
    assert.notEqual(head, message(`dave@${B}`, `alice@${A}`, ''), 'the Content-Length was replaced');
    const res = await b.exchange(head);
    assert.equal(res.status, 413, show(res));
    assert.match(warningOf(res), /^399 org-a\.test "/, show(res));
    const after = await rawPartner(env.pki.leaf('sip.org-b.test'));
    const ok = await after.exchange(message(`dave@${B}`, `alice@${A}`, 'still served'));
    assert.notEqual(ok.status, 413, show(ok));
    assert.ok(ok.status < 500, show(ok));
  });

  it('a certificate for another name → 403 naming it; another CA\'s certificate or none → refused at the handshake', async () => {
    const other = await rawPartner(env.pki.leaf('sip.other.test'));
    const res = await other.exchange(message(`dave@${B}`, `alice@${A}`));
    assertRefused(res, A, /sip\.other\.test/);
    assert.match(warningOf(res), /sip\.org-b\.test/, 'and the host it should have named');

    const rogue = await tlsHandshake(orgA.federation, env.pki.rogue, env.pki.ca, orgA.fqdn);
    assert.equal(rogue.ok, false, 'org-b\'s name from a CA nobody trusts');
    const none = await tlsHandshake(orgA.federation, null, env.pki.ca, orgA.fqdn);
    assert.equal(none.ok, false, 'no client certificate');
    // the operator sees who was refused and why
    await eventually('two refused handshakes in org-a\'s log', async () => {
      const refused = orgA.server.logs().split('\n').filter((l) => /federation handshake from 127\.0\.0\.1:\d+ failed/.test(l));
      return refused.length >= 2 ? refused : undefined;
    }, 10_000);
    const good = await tlsHandshake(orgA.federation, env.pki.leaf('sip.org-b.test'), env.pki.ca, orgA.fqdn);
    assert.ok(good.ok, good.error);
    assert.equal(good.peerNames, 'DNS:sip.org-a.test');
  });

  it('a partner server presenting a certificate for another name → 503 with a Warning for the sender', async () => {
    await orgA.admin('New-CsAllowedDomain', { Identity: D });
    const alice = await atA.connect('alice');
    const res = await alice.sendMessage(`sip:someone@${D}`, 'is this org-d?');
    assert.equal(res.status, 503, show(res));
    assert.match(warningOf(res), /^399 org-a\.test ".*sip\.org-d\.test/, show(res));
  });

  it('a blocked domain → 403 both ways; not allowed (and no discovery) → 403 both ways', async () => {
    const alice = await atA.connect('alice');
    const d = await rawPartner(env.pki.leaf('sip.org-d.test'));
    await orgA.admin('Remove-CsAllowedDomain', { Identity: D });
    await orgA.admin('New-CsBlockedDomain', { Identity: D });
    assertRefused(await alice.sendMessage(`sip:someone@${D}`, 'hello?'), A, /org-d\.test is a blocked domain/);
    assertRefused(await d.exchange(message(`someone@${D}`, `alice@${A}`)), A, /blocked/);

    await orgA.admin('Remove-CsBlockedDomain', { Identity: D });
    assertRefused(await alice.sendMessage(`sip:someone@${D}`, 'hello?'), A, /org-d\.test is not an allowed domain/);
    assertRefused(await d.exchange(message(`someone@${D}`, `alice@${A}`)), A, /not an allowed domain/);
  });

  it('a user whose policy forbids federation: 403 for bob\'s messages out, and for dave\'s to him — the same answer as for nobody', async () => {
    await orgA.admin('New-CsExternalAccessPolicy', { Identity: 'Tag:NoFederation', EnableFederationAccess: false });
    await orgA.admin('Grant-CsExternalAccessPolicy', { Identity: `bob@${A}`, PolicyName: 'NoFederation' });
    const bob = await atA.connect('bob');
    assertRefused(await bob.sendMessage(`sip:dave@${B}`, 'hi dave'), A, /EnableFederationAccess False/);

    // dave at org-b, through both servers: org-a's refusal relayed to him
    const dave = await atB.connect('dave');
    const toBob = await dave.sendMessage(`sip:bob@${A}`, 'hi bob');
    assertRefused(toBob, A, /./);
    const toNobody = await dave.sendMessage(`sip:nobody@${A}`, 'hi nobody');
    assertRefused(toNobody, A, /./);
    const same = (w: string, user: string) => w.replaceAll(`${user}@${A}`, 'USER');
    assert.equal(same(warningOf(toBob), 'bob'), same(warningOf(toNobody), 'nobody'), 'one answer whether the user exists or not');
    assert.doesNotMatch(warningOf(toBob), /NoFederation|Tag:/, 'the user\'s policy stays private');
  });

  it('federation off: 403 both ways with a Warning naming the setting; on again: messages flow', async () => {
    const alice = await messageReceiver(atA, 'alice', logs);
    const dave = await messageReceiver(atB, 'dave', logs);
    await orgA.admin('Set-CsAccessEdgeConfiguration', { AllowFederatedUsers: false });
    try {
      assertRefused(await alice.client.sendMessage(`sip:dave@${B}`, 'out'), A, /AllowFederatedUsers/);
      assertRefused(await dave.client.sendMessage(`sip:alice@${A}`, 'in'), A, /federation is off|AllowFederatedUsers/);
    } finally {
      await orgA.admin('Set-CsAccessEdgeConfiguration', { AllowFederatedUsers: true });
    }
    const out = await alice.client.sendMessage(`sip:dave@${B}`, 'federation is back');
    assert.equal(out.status, 200, show(out));
    assert.equal((await dave.inbox.next()).text, 'federation is back');
  });
});
