// The federation link (issue 15) at the level of connections: two real `parley serve` processes
// with a `federation` block, a throwaway test CA made with openssl, dnsmasq answering the SRV and A
// records. Partners' handshakes without a certificate or with one from another CA are refused;
// with a good one an OPTIONS is answered over the link. The outbound side (src/federation's
// PartnerPool over the server's own connect code) runs in this process against the real servers
// and the real DNS server: SRV routing, ProxyFqdn routing, a certificate for another name (503),
// a server that never answers the handshake (480). The certificate reloads on SIGHUP and keeps
// the partners' CA. (Requests across organisations, MESSAGE and SUBSCRIBE, are other tests'.)
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CachingResolver, PartnerPool } from '../../src/federation/index.ts';
import type { PartnerRoute } from '../../src/federation/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, connectStream, sipLimits } from '../../src/sip/index.ts';
import type { Flow, SipMessage, SipResponse, TransportSink } from '../../src/sip/index.ts';
import { StreamFramer } from '../../src/sip/framing.ts';
import { SipClient, type IncomingMessage } from '../../src/client/index.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest } from './raw-sip.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-fedlink-'));
const children: ChildProcess[] = [];
const sipClients: SipClient[] = [];

// ---- a throwaway PKI: the partners' CA, and a rogue one nobody trusts ----------------------------

interface Pair { cert: string; key: string }
function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}
function makeCa(name: string): Pair {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert]);
  return { cert, key };
}
/** A leaf certificate for `names` (SAN DNS names), usable as TLS server and client. */
function makeLeaf(ca: Pair, file: string, names: string[], serial: string): Pair {
  const base = path.join(dir, file);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${names[0]}`, '-keyout', `${base}.key`, '-out', `${base}.csr`]);
  writeFileSync(`${base}.ext`, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serial}`, '-days', '1', '-extfile', `${base}.ext`, '-out', `${base}.crt`]);
  return { cert: `${base}.crt`, key: `${base}.key` };
}

// ---- the two organisations and their DNS ---------------------------------------------------------

const A = { domain: 'org-a.test', fqdn: 'sip.org-a.test', address: '127.0.0.11' };
const B = { domain: 'org-b.test', fqdn: 'sip.org-b.test', address: '127.0.0.12' };
const DNS_ADDRESS = '127.0.0.53';

let ca: Pair;
let rogue: Pair;
let certA: Pair;
let certB: Pair;
let certRogueA: Pair;
let certOther: Pair;
let orgA: RunningServer;
let orgB: RunningServer;
let fedA: { host: string; port: number };
let fedB: { host: string; port: number };
let dnsPort: number;
let silent: net.Server;

function federationOf(server: RunningServer): { host: string; port: number } {
  const m = /federation=(\S+):(\d+)/.exec(server.readyLine);
  assert.ok(m, `no federation= in ${server.readyLine}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** A UDP port free now on the DNS address (the servers are told it before dnsmasq listens on it). */
function freeUdpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** dnsmasq with only the records given: nothing forwarded anywhere, no /etc/hosts. */
async function startDnsmasq(records: string[]): Promise<void> {
  const child = spawn('dnsmasq', ['-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--user=root', '--pid-file=', `--listen-address=${DNS_ADDRESS}`, '--bind-interfaces', `--port=${dnsPort}`, '--log-facility=-', '--local=/test/', ...records], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // ready when it answers
  const resolver = new CachingResolver({ servers: [`${DNS_ADDRESS}:${dnsPort}`], timeoutMs: 200 });
  for (let i = 0; ; i++) {
    try {
      await resolver.addresses(B.fqdn);
      return;
    } catch {
      if (i > 50 || child.exitCode !== null) throw new Error(`dnsmasq did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function orgConfig(org: typeof A, pair: Pair) {
  return {
    federation: { fqdn: org.fqdn, listen: org.address, port: 0, cert: pair.cert, key: pair.key, ca: ca.cert, dnsServers: [`${DNS_ADDRESS}:${dnsPort}`], connectTimeout: 2 },
  };
}

before(async () => {
  ca = makeCa('partners-ca');
  rogue = makeCa('rogue-ca');
  certA = makeLeaf(ca, 'org-a', [A.fqdn], '0a01');
  certB = makeLeaf(ca, 'org-b', [B.fqdn], '0b01');
  certRogueA = makeLeaf(rogue, 'rogue-org-a', [A.fqdn], '0e01');
  certOther = makeLeaf(ca, 'other', ['sip.elsewhere.test'], '0c01');
  dnsPort = await freeUdpPort(DNS_ADDRESS);
  [orgA, orgB] = await Promise.all([
    startServer({ domain: A.domain, users: [{ address: `alice@${A.domain}`, password: 'alice-pw-1' }, { address: `bob@${A.domain}`, password: 'bob-pw-1' }], config: orgConfig(A, certA) }),
    startServer({ domain: B.domain, users: [{ address: `dave@${B.domain}`, password: 'dave-pw-1' }], config: orgConfig(B, certB) }),
  ]);
  fedA = federationOf(orgA);
  fedB = federationOf(orgB);
  // a "partner" whose server accepts TCP and never says a word of TLS
  silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.13', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  await startDnsmasq([
    `--srv-host=_sipfederationtls._tcp.${B.domain},${B.fqdn},${fedB.port},10,0`,
    `--srv-host=_sipfederationtls._tcp.${A.domain},${A.fqdn},${fedA.port},10,0`,
    // org-x's SRV record names a host whose server presents org-b's certificate
    `--srv-host=_sipfederationtls._tcp.org-x.test,sip.org-x.test,${fedB.port},10,0`,
    // org-s: the preferred server is silent, the next one is org-b's
    `--srv-host=_sipfederationtls._tcp.org-s.test,silent.org-s.test,${silentPort},10,0`,
    `--srv-host=_sipfederationtls._tcp.org-s.test,${B.fqdn},${fedB.port},20,0`,
    `--srv-host=_sipfederationtls._tcp.org-t.test,silent.org-s.test,${silentPort},10,0`,
    `--host-record=${A.fqdn},${A.address}`,
    `--host-record=${B.fqdn},${B.address}`,
    `--host-record=sip.org-x.test,${B.address}`,
    '--host-record=silent.org-s.test,127.0.0.13',
  ]);
});

after(async () => {
  await Promise.all(sipClients.map((c) => c.close().catch(() => {})));
  for (const c of children) c.kill('SIGTERM');
  silent?.close();
  await Promise.all([orgA?.stop(), orgB?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

// ---- a raw partner: TLS with or without a client certificate --------------------------------------

type Outcome = { kind: 'answered'; response: SipResponse } | { kind: 'refused'; error: string };

/** Connects to a federation port as a partner would, sends one request, and says what happened. */
function partnerExchange(at: { host: string; port: number }, servername: string, client: Pair | null, request: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: at.host,
      port: at.port,
      servername,
      ca: readFileSync(ca.cert),
      ...(client === null ? {} : { cert: readFileSync(client.cert), key: readFileSync(client.key) }),
    });
    const framer = new StreamFramer();
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'refused', error: 'no answer within 5 s' }), 5000);
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      for (const e of framer.push(chunk)) if (e.type === 'message' && e.message.kind === 'response' && e.message.status >= 200) finish({ kind: 'answered', response: e.message });
    });
    socket.on('error', (err: Error & { code?: string }) => finish({ kind: 'refused', error: `${err.code ?? ''} ${err.message}` }));
    socket.on('close', () => finish({ kind: 'refused', error: 'closed without an answer' }));
  });
}

const options = (from: string, to: string) => rawRequest('OPTIONS', `sip:${to}`, { from: `sip:${from}`, to: `sip:${to}`, transport: 'TLS' });

describe('federation link: the partners\' listener (mutual TLS)', () => {
  it('names the federation port in the ready line, and /ready checks it', async () => {
    assert.equal(fedA.host, A.address);
    const ready = await fetch(`http://${orgA.http.host}:${orgA.http.port}/ready`);
    const text = await ready.text();
    assert.equal(ready.status, 200, text);
    assert.match(text, new RegExp(`federation ${A.address.replace(/\./g, '\\.')}:${fedA.port}`));
  });

  it('answers OPTIONS from a partner whose certificate chains to the trusted CA', async () => {
    const outcome = await partnerExchange(fedA, A.fqdn, certB, options(`dave@${B.domain}`, A.domain));
    assert.equal(outcome.kind, 'answered', JSON.stringify(outcome));
    assert.equal(outcome.kind === 'answered' && outcome.response.status, 200);
    assert.match(outcome.kind === 'answered' ? outcome.response.headers.getAll('allow').join(', ') : '', /MESSAGE/);
  });

  it('refuses at the handshake a peer without a certificate, and logs who and why', async () => {
    const outcome = await partnerExchange(fedA, A.fqdn, null, options(`dave@${B.domain}`, A.domain));
    assert.equal(outcome.kind, 'refused');
    // TLS 1.3: the server's alert (certificate required) reaches the client as it reads
    assert.match(outcome.kind === 'refused' ? outcome.error : '', /CERTIFICATE_REQUIRED|alert certificate required/i);
    const line = await orgA.waitForLog(/federation handshake from 127\.0\.0\.1:\d+ failed: .*did not return a certificate/i);
    assert.match(line, /"level":30/, 'at info: a bad peer is not the server\'s fault');
  });

  it('refuses at the handshake a certificate from a CA it does not trust', async () => {
    const outcome = await partnerExchange(fedA, A.fqdn, certRogueA, options(`mallory@${A.domain}`, A.domain));
    assert.equal(outcome.kind, 'refused', JSON.stringify(outcome));
    await orgA.waitForLog(/federation handshake from .* failed: .*does not chain to a trusted CA/i);
  });

  it('keeps serving after refused handshakes, and serves its own certificate naming its FQDN', async () => {
    const served = await new Promise<string | undefined>((resolve, reject) => {
      const socket = tls.connect({ host: fedB.host, port: fedB.port, servername: B.fqdn, ca: readFileSync(ca.cert), cert: readFileSync(certA.cert), key: readFileSync(certA.key) }, () => {
        resolve(socket.getPeerCertificate().subjectaltname);
        socket.destroy();
      });
      socket.once('error', reject);
    });
    assert.equal(served, `DNS:${B.fqdn}`);
    assert.equal(orgA.exitStatus(), null);
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

function orgAPool(timeoutMs = 2000): PartnerPool {
  const guard = new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, () => {});
  const limits = sipLimits({});
  return new PartnerPool({
    dns: new CachingResolver({ servers: [`${DNS_ADDRESS}:${dnsPort}`] }),
    dial: (o) => connectStream({ ...o, timeoutMs, limits, sink, guard, advertise: `${A.fqdn}:${fedA.port}` }),
    credentials: () => ({ cert: readFileSync(certA.cert), key: readFileSync(certA.key), ca: readFileSync(ca.cert) }),
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
      const route: PartnerRoute = { kind: 'dns-srv', domain: B.domain };
      const c = await pool.connect(B.domain, route);
      assert.ok(c.ok, JSON.stringify(c));
      assert.deepEqual(c.flow.partner, { names: [B.fqdn], openedFor: B.domain });
      assert.equal(c.flow.remote.address, B.address);
      assert.equal(c.flow.remote.port, fedB.port);
      const again = await pool.connect(B.domain, route);
      assert.ok(again.ok && again.flow === c.flow, 'pooled');
      const request = options(`alice@${A.domain}`, B.domain);
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
      const c = await pool.connect(B.domain, { kind: 'proxy', target: { host: B.fqdn, port: fedB.port } });
      assert.ok(c.ok, JSON.stringify(c));
      assert.equal(c.flow.partner?.openedFor, B.domain);
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
    assert.match(c.warning, /sip\.org-x\.test:\d+ \(SRV _sipfederationtls\._tcp\.org-x\.test, 127\.0\.0\.12\): TLS: the certificate of sip\.org-x\.test does not name it: it names sip\.org-b\.test/);
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
    assert.equal(c.flow.remote.port, fedB.port, 'the priority 20 server, after the silent priority 10 one');
    assert.deepEqual(c.flow.partner, { names: [B.fqdn], openedFor: 'org-s.test' });
  });

  it('a server refuses our connection when our certificate is not from its trusted CA', async () => {
    const guard = new ConnectionGuard(DEFAULT_CONNECTION_LIMITS, () => {});
    const pool = new PartnerPool({
      dns: new CachingResolver({ servers: [`${DNS_ADDRESS}:${dnsPort}`] }),
      dial: (o) => connectStream({ ...o, timeoutMs: 2000, limits: sipLimits({}), sink, guard }),
      credentials: () => ({ cert: readFileSync(certRogueA.cert), key: readFileSync(certRogueA.key), ca: readFileSync(ca.cert) }),
      logger: createLogger('silent'),
    });
    const c = await pool.connect(B.domain, { kind: 'dns-srv', domain: B.domain });
    // TLS 1.3: the client's handshake ends before the server checks its certificate; the alert
    // then closes the connection, and nothing sent on it is answered
    if (c.ok) {
      c.flow.send(Buffer.from(options(`alice@${A.domain}`, B.domain)));
      await new Promise<void>((r) => {
        const look = () => (c.flow.closed ? r() : setTimeout(look, 20));
        look();
      });
    }
    pool.close();
    await orgB.waitForLog(/federation handshake from 127\.0\.0\.\d+:\d+ failed: .*does not chain to a trusted CA/);
  });
});

/** A cmdlet through the server's admin API. */
async function admin(server: RunningServer, cmdlet: string, parameters: Record<string, unknown>): Promise<void> {
  const token = readFileSync(path.join(server.dataDir, 'secrets', 'admin.token'), 'utf8').trim();
  const res = await fetch(`http://${server.http.host}:${server.http.port}/admin/cmdlets/${cmdlet}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ parameters }),
  });
  assert.equal(res.status, 200, `${cmdlet}: ${await res.text()}`);
}

/** Federation on, `partner` allowed (by ProxyFqdn when given, else found by DNS SRV), `users` granted a policy that enables it. */
async function federate(server: RunningServer, partner: string, proxyFqdn: string | undefined, users: string[]): Promise<void> {
  await admin(server, 'Set-CsAccessEdgeConfiguration', { AllowFederatedUsers: true });
  await admin(server, 'New-CsAllowedDomain', { Identity: partner, ...(proxyFqdn === undefined ? {} : { ProxyFqdn: proxyFqdn }) });
  await admin(server, 'New-CsExternalAccessPolicy', { Identity: 'Tag:Federated', EnableFederationAccess: true });
  for (const user of users) await admin(server, 'Grant-CsExternalAccessPolicy', { Identity: user, PolicyName: 'Federated' });
}

const message = (from: string, to: string, text: string) =>
  rawRequest('MESSAGE', `sip:${to}`, { from: `sip:${from}`, to: `sip:${to}`, transport: 'TLS', headers: ['Content-Type: text/plain'], body: text });
const warningOf = (o: Outcome) => (o.kind === 'answered' ? o.response.headers.get('warning') ?? '' : o.error);

describe('federation link: requests across the link (the gate)', () => {
  before(async () => {
    // org-a reaches org-b by ProxyFqdn; org-b finds org-a by its SRV record
    await federate(orgA, B.domain, `${B.fqdn}:${fedB.port}`, [`alice@${A.domain}`]);
    await federate(orgB, A.domain, undefined, [`dave@${B.domain}`]);
  });

  it('carries a MESSAGE from alice@org-a to dave@org-b through both servers', async () => {
    const alice = new SipClient({ server: `tcp://${orgA.tcp.host}:${orgA.tcp.port}`, aor: `sip:alice@${A.domain}`, password: 'alice-pw-1', keepAliveIntervalMs: 0 });
    const dave = new SipClient({ server: `tcp://${orgB.tcp.host}:${orgB.tcp.port}`, aor: `sip:dave@${B.domain}`, password: 'dave-pw-1', keepAliveIntervalMs: 0 });
    sipClients.push(alice, dave);
    await alice.connect();
    await dave.connect();
    await dave.register({ expires: 300 });
    const arrived = new Promise<IncomingMessage>((resolve) => dave.once('message', resolve));
    const sent = await alice.sendMessage(`sip:dave@${B.domain}`, 'across the link');
    assert.equal(sent.status, 200, `${sent.status} ${sent.headers.get('warning')}\n${orgA.logs().slice(-3000)}`);
    assert.equal((await arrived).body, 'across the link');
    await orgA.waitForLog(/connected to partner org-b\.test at sip\.org-b\.test:\d+ \(ProxyFqdn\)/);
  });

  it('refuses a From domain the connection\'s certificate was not verified for (403 PARTNER_NOT_VERIFIED)', async () => {
    // org-b's certificate, claiming a user of org-c (whose DNS names no such server)
    const spoof = await partnerExchange(fedA, A.fqdn, certB, message(`eve@org-c.test`, `alice@${A.domain}`, 'hello'));
    assert.equal(spoof.kind === 'answered' && spoof.response.status, 403, JSON.stringify(spoof));
    assert.match(warningOf(spoof), /certificate names sip\.org-b\.test, none of which is a server of org-c\.test/);
    // a certificate for another name, claiming org-b (org-a expects its ProxyFqdn sip.org-b.test)
    const other = await partnerExchange(fedA, A.fqdn, certOther, message(`dave@${B.domain}`, `alice@${A.domain}`, 'hello'));
    assert.equal(other.kind === 'answered' && other.response.status, 403, JSON.stringify(other));
    assert.match(warningOf(other), /names sip\.elsewhere\.test, none of which is a server of org-b\.test \(expected sip\.org-b\.test/);
  });

  it('answers a recipient without federation and one who does not exist alike', async () => {
    const toBob = await partnerExchange(fedA, A.fqdn, certB, message(`dave@${B.domain}`, `bob@${A.domain}`, 'hi'));
    const toNobody = await partnerExchange(fedA, A.fqdn, certB, message(`dave@${B.domain}`, `nobody@${A.domain}`, 'hi'));
    assert.equal(toBob.kind === 'answered' && toBob.response.status, 403, JSON.stringify(toBob));
    assert.equal(toNobody.kind === 'answered' && toNobody.response.status, 403, JSON.stringify(toNobody));
    assert.equal(warningOf(toBob).replace('bob', 'X'), warningOf(toNobody).replace('nobody', 'X'));
  });
});

describe('federation link: certificates', () => {
  it('reloads the federation certificate on SIGHUP, and still asks partners for theirs', async () => {
    const next = makeLeaf(ca, 'org-b-2', [B.fqdn], '0b02');
    const original = { cert: readFileSync(certB.cert), key: readFileSync(certB.key) };
    writeFileSync(`${certB.cert}.tmp`, readFileSync(next.cert));
    writeFileSync(`${certB.key}.tmp`, readFileSync(next.key));
    renameSync(`${certB.key}.tmp`, certB.key);
    renameSync(`${certB.cert}.tmp`, certB.cert);
    process.kill(orgB.pid, 'SIGHUP');
    await orgB.waitForLog(/certificate reloaded .*serial 0B02/i);
    const serial = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: fedB.host, port: fedB.port, servername: B.fqdn, ca: readFileSync(ca.cert), cert: readFileSync(certA.cert), key: readFileSync(certA.key) }, () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.destroy();
      });
      socket.once('error', reject);
    });
    assert.equal(serial.toUpperCase(), '0B02');
    const withoutCert = await partnerExchange(fedB, B.fqdn, null, options(`alice@${A.domain}`, B.domain));
    assert.equal(withoutCert.kind, 'refused', 'the new context still requires a partner certificate from the CA');
    const good = await partnerExchange(fedB, B.fqdn, certA, options(`alice@${A.domain}`, B.domain));
    assert.equal(good.kind === 'answered' && good.response.status, 200, JSON.stringify(good));
    writeFileSync(certB.cert, original.cert);
    writeFileSync(certB.key, original.key);
  });

  it('parley check-config reads the federation files and refuses a certificate not naming the FQDN', async () => {
    const file = path.join(dir, 'check.json');
    writeFileSync(file, JSON.stringify({ domain: A.domain, ...orgConfig(A, certA) }));
    const ok = await runCli(['check-config', '--config', file, '--data-dir', path.join(dir, 'check-data')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /federation: sip\.org-a\.test on 127\.0\.0\.11:0 \(mutual TLS; .*partners verified against 1 CA certificate/);
    writeFileSync(file, JSON.stringify({ domain: A.domain, ...orgConfig(A, certOther) }));
    const bad = await runCli(['check-config', '--config', file, '--data-dir', path.join(dir, 'check-data')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /federation\.cert: .* does not name federation\.fqdn sip\.org-a\.test/);
  });
});
