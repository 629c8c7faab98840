// The federation link (issue 15) at the level of connections: two real `parley serve` processes
// with a `federation` block, the federation test environment's CA and dnsmasq
// (test/e2e/federation-env.ts). Partners' handshakes without a certificate or with one from another
// CA are refused; with a good one an OPTIONS is answered over the link. The outbound side
// (src/federation's PartnerPool over the server's own connect code) runs in this process against
// the real servers and the real DNS server: SRV routing, ProxyFqdn routing, a certificate for
// another name (503), a server that never answers the handshake (480). The certificate reloads on
// SIGHUP and keeps the partners' CA. (MESSAGE and SUBSCRIBE between users are federation.test.ts's.)
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CachingResolver } from '../../src/dns/index.ts';
import { PartnerPool } from '../../src/federation/index.ts';
import type { PartnerRoute } from '../../src/federation/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, connectStream, sipLimits } from '../../src/sip/index.ts';
import type { Flow, SipMessage, SipResponse, TransportSink } from '../../src/sip/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { runCli } from '../harness/server.ts';
import { rawRequest } from './raw-sip.ts';
import {
  enableFederation, messageReceiver, outcome, partnerConnection, startFederationEnv, startSilentServer, tlsHandshake,
  type CertFiles, type FederationEnv, type ParleyOrg, type SilentServer,
} from './federation-env.ts';

const A = 'org-a.test';
const B = 'org-b.test';
/** 127.14.* (see federation-env.ts: each federation test file its own second octet) */
const NET = 14;
/** the silent server's address: no organisation of the environment has index 19 */
const SILENT_ADDRESS = `127.${NET}.19.2`;

let env: FederationEnv;
let orgA: ParleyOrg;
let orgB: ParleyOrg;
let silent: SilentServer;
const atA = sdkClients(() => orgA.server, A);
const atB = sdkClients(() => orgB.server, B);
const partners: Array<{ close(): void }> = [];

before(async () => {
  env = await startFederationEnv({ net: NET, orgs: [{ domain: A, users: ['alice', 'bob'] }, { domain: B, users: ['dave'] }] });
  orgA = env.org(A);
  orgB = env.org(B);
  // a "partner" whose server accepts TCP and never says a word of TLS
  silent = await startSilentServer(SILENT_ADDRESS);
  const srv = (domain: string, target: string, port: number, priority = 10) => ({ name: `_sipfederationtls._tcp.${domain}`, target, port, priority });
  await env.publish({
    srv: [
      // org-x's SRV record names a host whose server presents org-b's certificate
      srv('org-x.test', 'sip.org-x.test', orgB.federation.port),
      // org-s: the preferred server is silent, the next one is org-b's
      srv('org-s.test', 'silent.org-s.test', silent.port),
      srv('org-s.test', orgB.fqdn, orgB.federation.port, 20),
      // org-t: only the silent one
      srv('org-t.test', 'silent.org-s.test', silent.port),
    ],
    a: { 'sip.org-x.test': orgB.federation.host, 'silent.org-s.test': silent.host },
  });
});

after(async () => {
  for (const p of partners) p.close();
  await atA.closeAll();
  await atB.closeAll();
  await silent?.stop();
  await env?.stop();
});

const logs = () => `--- org-a ---\n${orgA.server.logs().slice(-3000)}\n--- org-b ---\n${orgB.server.logs().slice(-3000)}`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A raw partner on `org`'s federation port holding `cert` (closed after the tests). */
async function rawPartner(org: ParleyOrg, cert: CertFiles) {
  const p = await partnerConnection(org.federation, cert, env.pki.ca, org.fqdn);
  partners.push(p);
  return p;
}

const options = (from: string, to: string) => rawRequest('OPTIONS', `sip:${to}`, { from: `sip:${from}`, to: `sip:${to}`, transport: 'TLS' });

describe('federation link: the partners\' listener (mutual TLS)', () => {
  it('names the federation port in the ready line, and /ready checks it', async () => {
    const m = /federation=(\S+):(\d+)/.exec(orgA.server.readyLine);
    assert.ok(m, `no federation= in ${orgA.server.readyLine}`);
    assert.deepEqual({ host: m[1], port: Number(m[2]) }, orgA.federation);
    assert.equal(orgA.federation.host, `127.${NET}.1.2`);
    const ready = await fetch(`http://${orgA.server.http.host}:${orgA.server.http.port}/ready`);
    const text = await ready.text();
    assert.equal(ready.status, 200, text);
    assert.match(text, new RegExp(`federation ${escape(orgA.federation.host)}:${orgA.federation.port}`));
  });

  it('answers OPTIONS from a partner whose certificate chains to the trusted CA', async () => {
    const b = await rawPartner(orgA, env.pki.leaf(orgB.fqdn));
    const response = await b.exchange(options(`dave@${B}`, A));
    assert.equal(response.status, 200, outcome(response));
    assert.match(response.headers.getAll('allow').join(', '), /MESSAGE/);
  });

  it('refuses at the handshake a peer without a certificate, and logs who and why', async () => {
    const none = await tlsHandshake(orgA.federation, null, env.pki.ca, orgA.fqdn);
    assert.equal(none.ok, false);
    // TLS 1.3: the server's alert (certificate required) reaches the client as it reads
    assert.match(none.error ?? '', /CERTIFICATE_REQUIRED|alert certificate required/i);
    const line = await orgA.server.waitForLog(/federation handshake from 127\.0\.0\.1:\d+ failed: .*did not return a certificate/i);
    assert.match(line, /"level":30/, 'at info: a bad peer is not the server\'s fault');
  });

  it('refuses at the handshake a certificate from a CA it does not trust', async () => {
    const rogue = await tlsHandshake(orgA.federation, env.pki.rogue, env.pki.ca, orgA.fqdn);
    assert.equal(rogue.ok, false, JSON.stringify(rogue));
    await orgA.server.waitForLog(/federation handshake from .* failed: .*does not chain to a trusted CA/i);
  });

  it('keeps serving after refused handshakes, and serves its own certificate naming its FQDN', async () => {
    const hs = await tlsHandshake(orgB.federation, env.pki.leaf(orgA.fqdn), env.pki.ca, orgB.fqdn);
    assert.ok(hs.ok, hs.error);
    assert.equal(hs.peerNames, `DNS:${orgB.fqdn}`);
    assert.equal(orgA.server.exitStatus(), null);
  });
});

// ---- the outbound side: PartnerPool over connectStream, as `serve` wires it -----------------------

/** What a partner's server sends on our outbound connections. */
const received: Array<{ message: SipMessage; flow: Flow }> = [];
const sink: TransportSink = {
  onMessage: (message, flow) => received.push({ message, flow }),
  onParseError: () => {},
  onFlowClosed: () => {},
};

/** org-a's connections to partners, holding `cert` (org-a's own unless given). */
function orgAPool(timeoutMs = 2000, cert: CertFiles = env.pki.leaf(orgA.fqdn)): PartnerPool {
  const guard = new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, () => {});
  const limits = sipLimits({});
  return new PartnerPool({
    dns: new CachingResolver({ servers: [env.dns.server] }),
    dial: (o) => connectStream({ ...o, timeoutMs, limits, sink, guard, advertise: `${orgA.fqdn}:${orgA.federation.port}` }),
    credentials: () => ({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), ca: readFileSync(env.pki.ca) }),
    logger: createLogger('silent'),
  });
}

function answerTo(flow: Flow, callId: string): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const look = () => {
      const found = received.find((r) => r.flow === flow && r.message.kind === 'response' && r.message.headers.get('call-id') === callId);
      if (found) resolve(found.message as SipResponse);
      else if (Date.now() - started > 5000) reject(new Error('no answer on the outbound connection'));
      else setTimeout(look, 20);
    };
    look();
  });
}

describe('federation link: connections to partners', () => {
  it('finds the partner by DNS SRV, verifies its certificate, presents ours, and carries SIP both ways', async () => {
    const pool = orgAPool();
    try {
      const route: PartnerRoute = { kind: 'dns-srv', domain: B };
      const c = await pool.connect(B, route);
      assert.ok(c.ok, JSON.stringify(c));
      assert.deepEqual(c.flow.partner, { names: [orgB.fqdn], openedFor: B });
      assert.equal(c.flow.remote.address, orgB.federation.host);
      assert.equal(c.flow.remote.port, orgB.federation.port);
      const again = await pool.connect(B, route);
      assert.ok(again.ok && again.flow === c.flow, 'pooled');
      const request = options(`alice@${A}`, B);
      c.flow.send(Buffer.from(request));
      const callId = /Call-ID: (\S+)/.exec(request)?.[1] ?? '';
      const answer = await answerTo(c.flow, callId);
      assert.equal(answer.status, 200);
    } finally {
      pool.close();
    }
  });

  it('routes by ProxyFqdn', async () => {
    const pool = orgAPool();
    try {
      const c = await pool.connect(B, { kind: 'proxy', target: { host: orgB.fqdn, port: orgB.federation.port } });
      assert.ok(c.ok, JSON.stringify(c));
      assert.equal(c.flow.partner?.openedFor, B);
    } finally {
      pool.close();
    }
  });

  it('answers 503 naming the reason when the server\'s certificate does not name the SRV target', async () => {
    const pool = orgAPool();
    const c = await pool.connect('org-x.test', { kind: 'dns-srv', domain: 'org-x.test' });
    pool.close();
    assert.ok(!c.ok);
    assert.equal(c.status, 503);
    assert.match(c.warning, new RegExp(`sip\\.org-x\\.test:\\d+ \\(SRV _sipfederationtls\\._tcp\\.org-x\\.test, ${escape(orgB.federation.host)}\\): TLS: the certificate of sip\\.org-x\\.test does not name it: it names sip\\.org-b\\.test`));
  });

  it('answers 503 when DNS names no server, 480 when the only server never finishes the handshake', async () => {
    const pool = orgAPool(500);
    const none = await pool.connect('org-n.test', { kind: 'dns-srv', domain: 'org-n.test' });
    assert.ok(!none.ok && none.status === 503, JSON.stringify(none));
    assert.match(none.warning, /org-n\.test has no A or AAAA record/);
    const slow = await pool.connect('org-t.test', { kind: 'dns-srv', domain: 'org-t.test' });
    pool.close();
    assert.ok(!slow.ok && slow.status === 480, JSON.stringify(slow));
    assert.match(slow.warning, /no TLS handshake within 500 ms/);
  });

  it('moves on to the next SRV record when the first server does not answer', async () => {
    const pool = orgAPool(500);
    const c = await pool.connect('org-s.test', { kind: 'dns-srv', domain: 'org-s.test' });
    pool.close();
    assert.ok(c.ok, JSON.stringify(c));
    assert.equal(c.flow.remote.port, orgB.federation.port, 'the priority 20 server, after the silent priority 10 one');
    assert.deepEqual(c.flow.partner, { names: [orgB.fqdn], openedFor: 'org-s.test' });
  });

  it('a server refuses our connection when our certificate is not from its trusted CA', async () => {
    const pool = orgAPool(2000, env.pki.rogue);
    const c = await pool.connect(B, { kind: 'dns-srv', domain: B });
    // TLS 1.3: the client's handshake ends before the server checks its certificate; the alert
    // then closes the connection, and nothing sent on it is answered
    if (c.ok) {
      c.flow.send(Buffer.from(options(`alice@${A}`, B)));
      await new Promise<void>((r) => {
        const look = () => (c.flow.closed ? r() : setTimeout(look, 20));
        look();
      });
    }
    pool.close();
    await orgB.server.waitForLog(/federation handshake from 127\.0\.0\.\d+:\d+ failed: .*does not chain to a trusted CA/);
  });
});

const message = (from: string, to: string, text: string) =>
  rawRequest('MESSAGE', `sip:${to}`, { from: `sip:${from}`, to: `sip:${to}`, transport: 'TLS', headers: ['Content-Type: text/plain'], body: text });
const warningOf = (r: SipResponse) => r.headers.get('warning') ?? '';

describe('federation link: requests across the link (the gate)', () => {
  before(async () => {
    // org-a reaches org-b by ProxyFqdn, and only alice may federate (bob may not); org-b finds
    // org-a by its SRV record
    await enableFederation(orgA, [B], { proxyFqdn: { [B]: `${orgB.fqdn}:${orgB.federation.port}` }, users: [`alice@${A}`] });
    await enableFederation(orgB, [A], { users: [`dave@${B}`] });
  });

  it('carries a MESSAGE from alice@org-a to dave@org-b through both servers', async () => {
    const alice = await atA.connect('alice');
    const dave = await messageReceiver(atB, 'dave', logs);
    const sent = await alice.sendMessage(`sip:dave@${B}`, 'across the link');
    assert.equal(sent.status, 200, outcome(sent, logs));
    assert.equal((await dave.inbox.next()).body, 'across the link');
    await orgA.server.waitForLog(/connected to partner org-b\.test at sip\.org-b\.test:\d+ \(ProxyFqdn\)/);
  });

  it('refuses a From domain the connection\'s certificate was not verified for (403 PARTNER_NOT_VERIFIED)', async () => {
    // org-b's certificate, claiming a user of org-c (whose DNS names no such server)
    const b = await rawPartner(orgA, env.pki.leaf(orgB.fqdn));
    const spoof = await b.exchange(message(`eve@org-c.test`, `alice@${A}`, 'hello'));
    assert.equal(spoof.status, 403, outcome(spoof));
    assert.match(warningOf(spoof), /certificate names sip\.org-b\.test, none of which is a server of org-c\.test/);
    // a certificate for another name, claiming org-b (org-a expects its ProxyFqdn sip.org-b.test)
    const other = await rawPartner(orgA, env.pki.leaf('sip.other.test'));
    const claim = await other.exchange(message(`dave@${B}`, `alice@${A}`, 'hello'));
    assert.equal(claim.status, 403, outcome(claim));
    assert.match(warningOf(claim), /names sip\.other\.test, none of which is a server of org-b\.test \(expected sip\.org-b\.test/);
  });

  it('answers a recipient without federation and one who does not exist alike', async () => {
    const b = await rawPartner(orgA, env.pki.leaf(orgB.fqdn));
    const toBob = await b.exchange(message(`dave@${B}`, `bob@${A}`, 'hi'));
    const toNobody = await b.exchange(message(`dave@${B}`, `nobody@${A}`, 'hi'));
    assert.equal(toBob.status, 403, outcome(toBob));
    assert.equal(toNobody.status, 403, outcome(toNobody));
    assert.equal(warningOf(toBob).replace('bob', 'X'), warningOf(toNobody).replace('nobody', 'X'));
  });
});

describe('federation link: certificates', () => {
  it('reloads the federation certificate on SIGHUP, and still asks partners for theirs', async () => {
    const current = env.pki.leaf(orgB.fqdn);
    const next = env.pki.issue(orgB.fqdn, 0x0b02);
    const original = { cert: readFileSync(current.cert), key: readFileSync(current.key) };
    writeFileSync(`${current.cert}.tmp`, readFileSync(next.cert));
    writeFileSync(`${current.key}.tmp`, readFileSync(next.key));
    renameSync(`${current.key}.tmp`, current.key);
    renameSync(`${current.cert}.tmp`, current.cert);
    try {
      process.kill(orgB.server.pid, 'SIGHUP');
      await orgB.server.waitForLog(/certificate reloaded .*serial 0B02/i);
      const good = await tlsHandshake(orgB.federation, env.pki.leaf(orgA.fqdn), env.pki.ca, orgB.fqdn);
      assert.ok(good.ok, good.error);
      assert.equal(good.serial?.toUpperCase(), '0B02');
      const withoutCert = await tlsHandshake(orgB.federation, null, env.pki.ca, orgB.fqdn);
      assert.equal(withoutCert.ok, false, 'the new context still requires a partner certificate from the CA');
      const a = await rawPartner(orgB, env.pki.leaf(orgA.fqdn));
      const answer = await a.exchange(options(`alice@${A}`, B));
      assert.equal(answer.status, 200, outcome(answer));
    } finally {
      // the environment's certificate for sip.org-b.test is the test CA's leaf again (for the
      // partner certificates the other tests present)
      writeFileSync(current.cert, original.cert);
      writeFileSync(current.key, original.key);
    }
  });

  it('parley check-config reads the federation files and refuses a certificate not naming the FQDN', async () => {
    const file = path.join(env.dir, 'check.json');
    const federation = orgA.config.federation as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ domain: A, federation }));
    const ok = await runCli(['check-config', '--config', file, '--data-dir', path.join(env.dir, 'check-data')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`federation: sip\\.org-a\\.test on ${escape(orgA.federation.host)}:0 \\(mutual TLS; .*partners verified against 1 CA certificate`));
    const other = env.pki.leaf('sip.other.test');
    writeFileSync(file, JSON.stringify({ domain: A, federation: { ...federation, cert: other.cert, key: other.key } }));
    const bad = await runCli(['check-config', '--config', file, '--data-dir', path.join(env.dir, 'check-data')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /federation\.cert: .* does not name federation\.fqdn sip\.org-a\.test/);
  });
});
