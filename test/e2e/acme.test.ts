// Certificates from an ACME CA: Let's Encrypt's test server pebble (Debian `pebble`), started here,
// validates Parley's HTTP-01 answers on its HTTP port; pebble-challtestsrv (same package) is the DNS
// server that makes parley.test resolve to 127.0.0.1 for pebble. Parley serves SIP over TLS and
// HTTPS with the issued certificate, and a renewal (forced: renewBeforeDays longer than pebble's
// validity, asked for with SIGHUP) swaps it without dropping an established TLS connection.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { SipClient, type IncomingMessage } from '../../src/client/index.ts';
import { eventually } from '../harness/eventually.ts';
import { startServer, type HostPort, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const dir = mkdtempSync(path.join(tmpdir(), 'parley-acme-'));
const children: ChildProcess[] = [];
const clients: SipClient[] = [];
let server: RunningServer;
let pebbleRoot: Buffer;
let pebbleLog = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer): void => {
    pebbleLog = (pebbleLog + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  children.push(child);
  return child;
}

/** The certificate a new TLS handshake gets, checked against pebble's root. */
function served(at: HostPort): Promise<tls.PeerCertificate & { authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: at.host, port: at.port, ca: pebbleRoot, servername: DOMAIN }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(Object.assign(cert, { authorized: socket.authorized }));
    });
    socket.once('error', reject);
  });
}

before(async () => {
  // pebble's own HTTPS certificate, from a CA of the test's that Parley trusts through acme.caBundle
  const ca = { cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca-key.pem') };
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pebble test CA', '-keyout', ca.key, '-out', ca.cert]);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'pebble.key'), '-out', path.join(dir, 'pebble.csr')]);
  writeFileSync(path.join(dir, 'pebble.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', path.join(dir, 'pebble.csr'), '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', '0x77', '-days', '1', '-extfile', path.join(dir, 'pebble.ext'), '-out', path.join(dir, 'pebble.crt')]);
  // this process asks pebble's management API for its root
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), readFileSync(ca.cert, 'utf8')]);

  const [acmePort, managementPort, tlsAlpnPort, dnsPort, challtestManagement, parleyHttp] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  // a DNS server answering 127.0.0.1 for every name (and no IPv6 address: Parley listens on 127.0.0.1)
  run('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']);
  const config = path.join(dir, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: path.join(dir, 'pebble.crt'),
        privateKey: path.join(dir, 'pebble.key'),
        // HTTP-01 is validated on this port (port 80 in production, mapped to Parley's HTTP port)
        httpPort: parleyHttp,
        tlsPort: tlsAlpnPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  run('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' });
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  await eventually('pebble answering', async () => {
    const res = await fetch(directoryUrl).catch(() => undefined);
    return res?.ok === true ? true : undefined;
  }, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${pebbleLog}`);
  });

  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw' },
    ],
    config: {
      sipsPort: 0,
      httpsPort: 0,
      // longer than pebble's certificates are valid: every renewal check renews
      acme: { directoryUrl, email: 'admin@parley.test', domains: [DOMAIN], termsOfServiceAgreed: true, renewBeforeDays: 3650, caBundle: ca.cert },
    },
    extraArgs: ['--http-port', String(parleyHttp)],
    readyTimeoutMs: 60_000,
  });
  const roots = await fetch(`https://127.0.0.1:${managementPort}/roots/0`);
  assert.equal(roots.status, 200);
  pebbleRoot = Buffer.from(await roots.text());
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await server?.stop();
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('certificates from ACME (pebble)', () => {
  let firstSerial: string;

  it('gets a certificate at start through HTTP-01 and serves it on SIP over TLS and HTTPS', async () => {
    assert.ok(server.tls && server.https, `the ready line names tls and https: ${server.readyLine}`);
    const sip = await served(server.tls);
    assert.ok(sip.authorized, 'the certificate chains to pebble\'s root');
    assert.match(sip.subjectaltname ?? '', /DNS:parley\.test/);
    assert.match(String(sip.issuer.CN), /^Pebble Intermediate CA/);
    const web = await served(server.https);
    assert.equal(web.serialNumber, sip.serialNumber);
    firstSerial = sip.serialNumber;
    assert.match(await server.waitForLog(/ACME certificate issued for parley\.test/), new RegExp(`serial ${firstSerial}`));
  });

  it('keeps the account key, certificate and key owner-only in the data directory', () => {
    const secrets = path.join(server.dataDir, 'secrets');
    assert.equal(statSync(secrets).mode & 0o777, 0o700);
    for (const name of ['acme-account.pem', 'acme-cert.pem', 'acme-key.pem']) assert.equal(statSync(path.join(secrets, name)).mode & 0o777, 0o600, name);
  });

  it('answers only the challenges it set', async () => {
    const res = await fetch(`http://${server.http.host}:${server.http.port}/.well-known/acme-challenge/not-a-token`);
    assert.equal(res.status, 404);
  });

  it('renews when due (SIGHUP), swapping the certificate without dropping an established TLS connection', async () => {
    assert.ok(server.tls && server.https);
    const alice = new SipClient({ server: `tls://${server.tls.host}:${server.tls.port}`, tls: { ca: pebbleRoot, servername: DOMAIN }, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', keepAliveIntervalMs: 0 });
    const bob = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:bob@${DOMAIN}`, password: 'bob-pw', keepAliveIntervalMs: 0 });
    clients.push(alice, bob);
    await alice.connect();
    await bob.connect();
    await alice.register({ expires: 300 });
    await bob.register({ expires: 300 });

    const reloaded = server.waitForLog(/certificate reloaded \(ACME certificate issued\)/, 60_000);
    process.kill(server.pid, 'SIGHUP');
    await reloaded;
    const sip = await served(server.tls);
    assert.ok(sip.authorized);
    assert.notEqual(sip.serialNumber, firstSerial, 'a new certificate');
    assert.equal((await served(server.https)).serialNumber, sip.serialNumber);

    // alice's connection, made with the first certificate, still carries messages both ways
    const toAlice = new Promise<IncomingMessage>((resolve) => alice.once('message', resolve));
    assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, 'after the renewal')).status, 200);
    assert.equal((await toAlice).body, 'after the renewal');
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, 'still here')).status, 200);
    const metrics = await (await fetch(`http://${server.http.host}:${server.http.port}/metrics`)).text();
    assert.match(metrics, /^parley_tls_certificate_reloads_total\{outcome="ok"\} [1-9]/m);
  });
});
