// The federation test environment checked part by part (test/e2e/federation-env.ts), without Parley:
// the test PKI verifies with openssl, dnsmasq answers the SRV and A records through node's resolver,
// Kamailio takes a mutual-TLS handshake with a test-CA certificate and refuses one from another CA,
// and the SMTP stand-in keeps what it is sent.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { describeSippRun, runSipp, startSippUas } from '../harness/sipp.ts';
import { rawRequest, udpExchange } from './raw-sip.ts';
import { SIPP_UAC, SIPP_UAS, SIPP_UAS_OOC, kamailioPorts, makeTestPki, opensslVerify, PKI_NAMES, startDns, startKamailio, startSmtpStandIn, tlsHandshake, type KamailioOrg, type TestDns, type TestPki } from './federation-env.ts';

const NET = 9;
let dir: string;
let pki: TestPki;
let dns: TestDns | undefined;
let kamailio: KamailioOrg | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'parley-federation-env-'));
  pki = makeTestPki(dir);
});
after(async () => {
  await kamailio?.stop();
  await dns?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the federation test environment', () => {
  it('makes certificates that chain to the test CA, and one that does not', () => {
    for (const name of PKI_NAMES) {
      const v = opensslVerify(pki.ca, pki.leaf(name).cert);
      assert.ok(v.ok, v.output);
      assert.match(v.output, /: OK/);
    }
    assert.equal(opensslVerify(pki.ca, pki.rogue.cert).ok, false, 'the rogue CA is not the test CA');
    assert.ok(opensslVerify(pki.rogueCa, pki.rogue.cert).ok);
  });

  it('serves SRV and A records through dnsmasq, rewritten after a restart, and nothing else under .test', async () => {
    dns = await startDns(dir, `127.${NET}.53.1`);
    await dns.publish({ srv: [{ name: '_sipfederationtls._tcp.org-a.test', target: 'sip.org-a.test', port: 40123 }], a: { 'sip.org-a.test': `127.${NET}.1.2` } });
    const r = dns.resolver();
    assert.deepEqual(await r.resolveSrv('_sipfederationtls._tcp.org-a.test'), [{ name: 'sip.org-a.test', port: 40123, priority: 0, weight: 0, type: 'SRV' }]);
    assert.deepEqual(await r.resolve4('sip.org-a.test'), [`127.${NET}.1.2`]);
    await assert.rejects(r.resolveSrv('_sipfederationtls._tcp.org-z.test'), { code: 'ENOTFOUND' });
    await dns.publish({ srv: [{ name: '_sipfederationtls._tcp.org-a.test', target: 'sip.org-a.test', port: 40124, priority: 10, weight: 5 }], a: { 'sip.org-a.test': `127.${NET}.1.2` } });
    assert.deepEqual(await dns.resolver().resolveSrv('_sipfederationtls._tcp.org-a.test'), [{ name: 'sip.org-a.test', port: 40124, priority: 10, weight: 5, type: 'SRV' }]);
  });

  it('runs Kamailio with mutual TLS: a test-CA client certificate is taken, another CA\'s or none is refused', async () => {
    const ports = await kamailioPorts(NET);
    kamailio = await startKamailio(dir, ports, pki, { 'org-a.test': { host: `127.${NET}.1.2`, port: 5061 } });
    const ok = await tlsHandshake(kamailio.federation, pki.leaf('sip.org-b.test'), pki.ca, 'sip.org-c.test');
    assert.ok(ok.ok, ok.error);
    assert.equal(ok.peerNames, 'DNS:sip.org-c.test');
    const rogue = await tlsHandshake(kamailio.federation, pki.rogue, pki.ca, 'sip.org-c.test');
    assert.equal(rogue.ok, false, 'a certificate from an untrusted CA');
    const none = await tlsHandshake(kamailio.federation, null, pki.ca, 'sip.org-c.test');
    assert.equal(none.ok, false, 'no client certificate');
  });

  it('registers org-c\'s users at Kamailio and delivers between them; a user not registered gets 480', async () => {
    assert.ok(kamailio);
    const target = `${kamailio.users.host}:${kamailio.users.port}`;
    const erin = await startSippUas({ scenario: SIPP_UAS, oocScenario: SIPP_UAS_OOC, target, domain: 'org-c.test', injection: [['erin']], timeoutSec: 30 });
    const frank = await runSipp({ scenario: SIPP_UAC, target, domain: 'org-c.test', injection: [['frank', 'erin', 'org-c.test', 'local-1']] });
    assert.equal(frank.code, 0, describeSippRun(frank));
    await erin.waitForLog('parley-message-received body=Hello from frank local-1');
    const done = await erin.done;
    assert.equal(done.code, 0, describeSippRun(done));
    const offline = await udpExchange(kamailio.users, rawRequest('MESSAGE', 'sip:erin@org-c.test', { from: 'sip:frank@org-c.test', to: 'sip:erin@org-c.test', transport: 'UDP', body: 'hi' }));
    assert.equal(offline?.status, 480, kamailio.logs().slice(-3000));
  });

  it('keeps the mail the SMTP stand-in receives', async () => {
    const smtp = await startSmtpStandIn(`127.${NET}.3.25`);
    try {
      const t = nodemailer.createTransport({ host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true });
      await t.sendMail({ from: 'alice@org-a.test', to: 'erin@org-c.test', subject: 'hi', text: 'hello' });
      assert.equal(smtp.received.length, 1);
      assert.deepEqual(smtp.received[0]?.to, ['erin@org-c.test']);
      assert.match(smtp.received[0]?.raw ?? '', /Subject: hi/);
    } finally {
      await smtp.stop();
    }
  });
});
