// SIP over TLS with a certificate from the config file, and the command line's refusals.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SipClient, type IncomingMessage } from '../../src/client/index.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const dir = mkdtempSync(path.join(tmpdir(), 'parley-tls-'));
let server: RunningServer;
const clients: SipClient[] = [];

before(async () => {
  // A throwaway self-signed certificate for the test's own server.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${DOMAIN}`, '-addext', `subjectAltName=DNS:${DOMAIN},IP:127.0.0.1`, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const config = path.join(dir, 'parley.json');
  writeFileSync(config, JSON.stringify({ tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }, sipsPort: 0 }));
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw' },
    ],
    extraArgs: ['--config', config],
  });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('SIP over TLS', () => {
  it('registers over TLS and exchanges messages with a TCP user', async () => {
    assert.ok(server.tls, `the ready line names a TLS port: ${server.readyLine}`);
    const ca = readFileSync(path.join(dir, 'cert.pem'));
    const alice = new SipClient({ server: `tls://${server.tls.host}:${server.tls.port}`, tls: { ca, servername: DOMAIN }, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', keepAliveIntervalMs: 0 });
    const bob = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:bob@${DOMAIN}`, password: 'bob-pw', keepAliveIntervalMs: 0 });
    clients.push(alice, bob);
    await alice.connect();
    await bob.connect();
    await alice.register({ expires: 300 });
    await bob.register({ expires: 300 });
    const toAlice = new Promise<IncomingMessage>((resolve) => alice.once('message', resolve));
    assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, 'over TLS')).status, 200);
    assert.equal((await toAlice).body, 'over TLS');
  });
});

describe('parley serve refuses a bad configuration with a clear message', () => {
  it('names the bad flag or setting and exits non-zero', async () => {
    const badPort = await runCli(['serve', '--sip-port', 'seventy', '--data-dir', dir]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--sip-port must be a port number/);
    const badFile = path.join(dir, 'bad.json');
    writeFileSync(badFile, JSON.stringify({ registrar: { minExpires: 'soon' } }));
    const badSetting = await runCli(['serve', '--config', badFile, '--data-dir', dir]);
    assert.equal(badSetting.code, 2);
    assert.match(badSetting.stderr, /config\.registrar\.minExpires must be a whole number/);
    const unknownFlag = await runCli(['serve', '--colour', 'blue']);
    assert.equal(unknownFlag.code, 2);
    assert.match(unknownFlag.stderr, /Unknown option '--colour'/);
  });

  it('says so when the port is taken', async () => {
    const taken = await runCli(['serve', '--data-dir', path.join(dir, 'second'), '--sip-port', String(server.tcp.port), '--http-port', '0']);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /could not start: .*EADDRINUSE.*another server/);
  });
});
