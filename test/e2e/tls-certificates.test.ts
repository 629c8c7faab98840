// HTTPS and SIP over secure WebSocket on httpsPort with the certificate of SIP over TLS, and that
// certificate reloaded from its PEM files: on a change (files replaced by rename, as certbot and
// editors do), on SIGHUP, and a bad new pair kept out — established connections are never dropped.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { SipClient, type IncomingMessage } from '../../src/client/index.ts';
import { startServer, type HostPort, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const dir = mkdtempSync(path.join(tmpdir(), 'parley-certs-'));
const clients: SipClient[] = [];

/** A test CA, and leaf certificates it signs with chosen serial numbers (hex). */
function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}
function makeCa(): { cert: string; key: string } {
  const cert = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'ca-key.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Parley test CA', '-keyout', key, '-out', cert]);
  return { cert, key };
}
function makeLeaf(ca: { cert: string; key: string }, serial: string): { cert: Buffer; key: Buffer } {
  const base = path.join(dir, `leaf-${serial}`);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${DOMAIN}`, '-keyout', `${base}.key`, '-out', `${base}.csr`]);
  writeFileSync(`${base}.ext`, `subjectAltName=DNS:${DOMAIN},IP:127.0.0.1\n`);
  openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serial}`, '-days', '1', '-extfile', `${base}.ext`, '-out', `${base}.crt`]);
  return { cert: readFileSync(`${base}.crt`), key: readFileSync(`${base}.key`) };
}
/** Replaces a file as certbot and editors do: a new file renamed over the old one. */
function replaceByRename(file: string, content: Buffer): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

/** The serial number of the certificate a new TLS handshake gets. */
function servedSerial(at: HostPort, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: at.host, port: at.port, ca, servername: DOMAIN }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

let ca: { cert: string; key: string };
let caPem: Buffer;
let server: RunningServer;
/** the files the server reads: live/ holds symlinks into archive/ (as certbot lays them out) */
const live = { cert: path.join(dir, 'live', 'cert.pem'), key: path.join(dir, 'live', 'key.pem') };
const archive = { cert: path.join(dir, 'archive', 'cert.pem'), key: path.join(dir, 'archive', 'key.pem') };

before(async () => {
  ca = makeCa();
  caPem = readFileSync(ca.cert);
  // this process's TLS clients (fetch, the global WebSocket of the SDK) trust the test CA
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), caPem.toString()]);
  mkdirSync(path.join(dir, 'live'));
  mkdirSync(path.join(dir, 'archive'));
  const first = makeLeaf(ca, '1001');
  writeFileSync(live.cert, first.cert);
  writeFileSync(live.key, first.key);
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw' },
    ],
    config: { tls: { cert: live.cert, key: live.key }, sipsPort: 0, httpsPort: 0 },
  });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function metricsText(): Promise<string> {
  const res = await fetch(`http://${server.http.host}:${server.http.port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

describe('HTTPS and WSS on httpsPort', () => {
  it('serves HTTPS with the certificate of SIP over TLS', async () => {
    assert.ok(server.https && server.tls, `the ready line names https and tls: ${server.readyLine}`);
    const res = await fetch(`https://127.0.0.1:${server.https.port}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    assert.equal(await servedSerial(server.https, caPem), '1001');
    assert.equal(await servedSerial(server.tls, caPem), '1001');
  });

  it('carries SIP over secure WebSocket to a TCP user and back', async () => {
    assert.ok(server.wssUrl, `the ready line names wss: ${server.readyLine}`);
    assert.match(server.wssUrl, /^wss:\/\/127\.0\.0\.1:\d+\/sip$/);
    const alice = new SipClient({ server: server.wssUrl, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', keepAliveIntervalMs: 0 });
    const bob = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:bob@${DOMAIN}`, password: 'bob-pw', keepAliveIntervalMs: 0 });
    clients.push(alice, bob);
    await alice.connect();
    await bob.connect();
    await alice.register({ expires: 300 });
    await bob.register({ expires: 300 });
    const toAlice = new Promise<IncomingMessage>((resolve) => alice.once('message', resolve));
    assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, 'over WSS')).status, 200);
    assert.equal((await toAlice).body, 'over WSS');
    const toBob = new Promise<IncomingMessage>((resolve) => bob.once('message', resolve));
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, 'back from WSS')).status, 200);
    assert.equal((await toBob).body, 'back from WSS');
  });

  it('gives the session cookie the Secure attribute over HTTPS', async () => {
    assert.ok(server.https);
    const origin = `https://127.0.0.1:${server.https.port}`;
    const res = await fetch(`${origin}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ user: `alice@${DOMAIN}`, password: 'alice-pw' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    assert.match(res.headers.get('set-cookie') ?? '', /;\s*Secure/i);
    // the page served over HTTPS is told to use SIP over secure WebSocket on the same port
    assert.equal(((await res.json()) as { webSocketUrl: string }).webSocketUrl, `wss://127.0.0.1:${server.https.port}/sip`);
  });
});

describe('certificate reload', () => {
  let established: SipClient;
  let bob: SipClient;

  before(async () => {
    assert.ok(server.tls);
    // a TLS connection made with the first certificate, kept open through every reload
    established = new SipClient({ server: `tls://${server.tls.host}:${server.tls.port}`, tls: { ca: caPem, servername: DOMAIN }, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', keepAliveIntervalMs: 0 });
    bob = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:bob@${DOMAIN}`, password: 'bob-pw', keepAliveIntervalMs: 0 });
    clients.push(established, bob);
    await established.connect();
    await bob.connect();
    await established.register({ expires: 300 });
    await bob.register({ expires: 300 });
  });

  /** the connection made before the reloads still carries messages both ways */
  async function establishedStillWorks(text: string): Promise<void> {
    const toAlice = new Promise<IncomingMessage>((resolve) => established.once('message', resolve));
    assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, text)).status, 200);
    assert.equal((await toAlice).body, text);
    assert.equal((await established.sendMessage(`sip:bob@${DOMAIN}`, `${text} (reply)`)).status, 200);
  }

  it('takes a new pair when the files are replaced, without dropping established connections', async () => {
    assert.ok(server.tls && server.https);
    const second = makeLeaf(ca, '1002');
    const reloaded = server.waitForLog(/certificate reloaded \(file changed\).*serial 1002/);
    replaceByRename(live.key, second.key);
    replaceByRename(live.cert, second.cert);
    await reloaded;
    assert.equal(await servedSerial(server.tls, caPem), '1002');
    assert.equal(await servedSerial(server.https, caPem), '1002');
    await establishedStillWorks('after the file change');
    const metrics = await metricsText();
    assert.match(metrics, /^parley_tls_certificate_reloads_total\{outcome="ok"\} [1-9]/m);
    const expiry = Number(/^parley_tls_certificate_expiry_timestamp_seconds (\d+)/m.exec(metrics)?.[1]);
    assert.equal(expiry, Math.floor(new Date(new X509Certificate(second.cert).validTo).getTime() / 1000));
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8', timeout: 30_000 });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  });

  it('keeps the pair in use when the new key is not the certificate\'s', async () => {
    assert.ok(server.tls && server.https);
    const third = makeLeaf(ca, '1003');
    const other = makeLeaf(ca, '1004');
    const refused = server.waitForLog(/certificate reload \(file changed\) refused, the certificate in use stays \(serial 1002\).*tls\.key: .* is not the private key/);
    // a certificate whose key is another's (a renewal half-copied, a wrong file)
    writeFileSync(live.cert, third.cert);
    writeFileSync(live.key, other.key);
    await refused;
    assert.equal(await servedSerial(server.tls, caPem), '1002');
    assert.equal(await servedSerial(server.https, caPem), '1002');
    assert.match(await metricsText(), /^parley_tls_certificate_reloads_total\{outcome="refused"\} [1-9]/m);
    await establishedStillWorks('after a refused pair');
    assert.equal(server.exitStatus(), null, 'the server still runs');
  });

  it('reloads on SIGHUP files the watch cannot see change (symlinks into another folder)', async () => {
    assert.ok(server.tls && server.https);
    // live/ now links into archive/: writes in archive/ are not seen by the watch on live/
    const fourth = makeLeaf(ca, '1005');
    writeFileSync(archive.cert, fourth.cert);
    writeFileSync(archive.key, fourth.key);
    const linked = server.waitForLog(/certificate reloaded \(file changed\).*serial 1005/);
    const tmpCert = `${live.cert}.link`;
    const tmpKey = `${live.key}.link`;
    symlinkSync(archive.key, tmpKey);
    renameSync(tmpKey, live.key);
    symlinkSync(archive.cert, tmpCert);
    renameSync(tmpCert, live.cert);
    await linked;
    const fifth = makeLeaf(ca, '1006');
    replaceByRename(archive.key, fifth.key);
    replaceByRename(archive.cert, fifth.cert);
    const reloaded = server.waitForLog(/certificate reloaded \(SIGHUP\).*serial 1006/);
    process.kill(server.pid, 'SIGHUP');
    await reloaded;
    assert.equal(await servedSerial(server.tls, caPem), '1006');
    assert.equal(await servedSerial(server.https, caPem), '1006');
    await establishedStillWorks('after SIGHUP');
    assert.equal(server.exitStatus(), null, 'SIGHUP does not stop the server');
  });
});

