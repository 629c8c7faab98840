// Federation with another SIP server end to end (issue 15): Kamailio (Debian, with its TLS module) as
// the organisation org-c.test (test/e2e/federation/kamailio-org-c.cfg), its users erin and frank played by
// sipp, and Parley as org-a.test; mutual TLS with certificates from a test CA, dnsmasq answering the
// SRV records. IM both ways; erin offline (Kamailio answers 480): alice's messages go, once, as one
// plain e-mail with a text and an HTML part to the SMTP server standing for org-c's mail server,
// found through org-c.test's MX record (no smtpRoutes: RFC 5321 §5.1 MX routing, port 25, STARTTLS
// with a certificate that cannot be verified — opportunistic, as to any MX host).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import { simpleParser } from 'mailparser';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli } from '../harness/server.ts';
import { describeSippRun, runSipp, startSippUas } from '../harness/sipp.ts';
import { enableFederation, messageReceiver, outcome, SIPP_UAC, SIPP_UAS, SIPP_UAS_OOC, startFederationEnv, type FederationEnv, type KamailioOrg, type ParleyOrg } from './federation-env.ts';

const { ExchangeService, ExchangeVersion, ItemView, Uri, WebCredentials, WellKnownFolderName } = ews;

const A = 'org-a.test';
const C = 'org-c.test';
let env: FederationEnv;
let orgA: ParleyOrg;
let orgC: KamailioOrg;
const atA = sdkClients(() => orgA.server, A, { requestTimeoutMs: 30_000 });

before(async () => {
  env = await startFederationEnv({ net: 12, orgs: [{ domain: A, users: ['alice'] }], kamailio: true });
  orgA = env.org(A);
  orgC = env.kamailio!;
  await enableFederation(orgA, [C]);
});

after(async () => {
  await atA.closeAll();
  await env?.stop();
});

const logs = () => `--- org-a ---\n${orgA.server.logs().slice(-5000)}\n--- kamailio org-c ---\n${orgC.logs().slice(-4000)}`;
const kamailioTarget = () => `${orgC.users.host}:${orgC.users.port}`;
const describe_ = (r: { status: number; headers: { get(name: string): string | undefined } }) => outcome(r, logs);

describe('federation with Kamailio as org-c.test', () => {
  it('alice@org-a writes to erin@org-c, registered at Kamailio: 200, and erin gets the text', async () => {
    const erin = await startSippUas({ scenario: SIPP_UAS, oocScenario: SIPP_UAS_OOC, target: kamailioTarget(), domain: C, injection: [['erin']], timeoutSec: 40 });
    const alice = await atA.connect('alice');
    const res = await alice.sendMessage(`sip:erin@${C}`, 'Hello from alice at org-a (1)');
    assert.equal(res.status, 200, describe_(res));
    await erin.waitForLog('parley-message-received body=Hello from alice at org-a (1)', 10_000);
    const done = await erin.done;
    assert.equal(done.code, 0, describeSippRun(done));
    assert.match(done.messages, /From: .*sip:alice@org-a\.test/, 'the From of alice reaches erin');
  });

  it('frank@org-c writes to alice@org-a through Kamailio: alice gets it, frank gets 200', async () => {
    const { inbox } = await messageReceiver(atA, 'alice', logs);
    const frank = await runSipp({ scenario: SIPP_UAC, target: kamailioTarget(), domain: C, injection: [['frank', 'alice', A, 'token-7']] });
    assert.equal(frank.code, 0, `${describeSippRun(frank)}\n${logs()}`);
    const m = await inbox.next();
    assert.equal(m.text.trim(), 'Hello from frank token-7');
    assert.match(m.from, /^sip:frank@org-c\.test\b/);
  });

  it('erin is offline (Kamailio answers 480): 202 with a Warning, then ONE plain e-mail with all of alice\'s messages at org-c\'s mail server, found by MX', async () => {
    const alice = await atA.connect('alice');
    const texts = ['Erin, are you there?', 'The numbers are <below> & above', 'Call me back'];
    const warnings: string[] = [];
    for (const text of texts) {
      const res = await alice.sendMessage(`sip:erin@${C}`, text);
      assert.equal(res.status, 202, describe_(res));
      const warning = res.headers.get('warning') ?? '';
      assert.match(warning, /^399 org-a\.test ".*e-?mail.*erin@org-c\.test/i, warning);
      warnings.push(warning);
    }
    const entry = /sp-[a-z2-7]{16}/.exec(warnings[0] ?? '')?.[0];
    assert.ok(entry, `the Warning names the spool entry: ${warnings[0]}`);
    assert.ok(warnings.every((w) => w.includes(entry)), `one conversation, one entry: ${warnings.join(' | ')}`);

    const mail = await eventually('the e-mail at org-c\'s mail server', async () => (env.smtp.received.length > 0 ? env.smtp.received[0] : undefined), 30_000);
    assert.deepEqual(mail.to, [`erin@${C}`]);
    assert.equal(mail.secure, true, 'STARTTLS, though the certificate names another host and comes from a CA nobody trusts');
    assert.equal(env.smtp.port, 25);
    const parsed = await simpleParser(mail.raw);
    assert.equal(parsed.from?.value[0]?.address, `alice@${A}`);
    assert.deepEqual(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value.map((t) => t.address) : [], [`erin@${C}`]);
    assert.match(parsed.subject ?? '', /^Conversation with /);
    assert.match(String(parsed.headers.get('content-type') && (parsed.headers.get('content-type') as { value: string }).value), /^multipart\/alternative$/);
    assert.equal(parsed.headers.get('content-class') ?? undefined, undefined, 'a plain e-mail, no IM class');
    assert.match(parsed.messageId ?? '', new RegExp(entry));
    const text = parsed.text ?? '';
    const at = texts.map((t) => text.indexOf(t));
    assert.ok(at.every((i) => i >= 0) && at[0]! < at[1]! && at[1]! < at[2]!, `all three, in order, in the text part:\n${text}`);
    assert.match(String(parsed.html), /The numbers are &lt;below&gt; &amp; above/);

    // exactly once: nothing more comes; the spooler shows the entry delivered
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(env.smtp.received.length, 1, 'one e-mail');
    const show = await runCli(['spooler', 'show', entry, '--json', ...orgA.server.storageArgs]);
    assert.equal(show.code, 0, show.stderr);
    const detail = JSON.parse(show.stdout) as { state: string; kind: string; messages: number };
    assert.equal(detail.state, 'delivered', show.stdout);
    assert.equal(detail.kind, 'email', show.stdout);
    assert.equal(detail.messages, 3, show.stdout);
    // the entry's trace says where the e-mail went: org-c.test's MX host, not a configured route
    const trace = await runCli(['trace', entry, '--json', ...orgA.server.storageArgs]);
    assert.equal(trace.code, 0, trace.stderr);
    const sent = (JSON.parse(trace.stdout) as Array<{ step: string; detail: Record<string, unknown> }>).find((s) => s.step === 'mail-sent');
    assert.ok(sent, trace.stdout);
    assert.equal(sent.detail.host, 'mail.org-c.test');
    assert.equal(sent.detail.address, env.smtp.host);
    assert.equal(sent.detail.port, 25);
    assert.match(String(sent.detail.via), /\(MX 10\)$/);

    // alice keeps the usual Conversation History copy
    const service = new ExchangeService(ExchangeVersion.Exchange2013);
    service.Credentials = new WebCredentials(`alice@${A}`, 'alice-pw');
    service.Url = new Uri(`http://${orgA.server.http.host}:${orgA.server.http.port}/EWS/Exchange.asmx`);
    await eventually('alice\'s Conversation History copy', async () => {
      const found = await service.FindItems(WellKnownFolderName.ConversationHistory, new ItemView(20));
      return found.Items.length > 0 ? found.Items : undefined;
    }, 20_000);
  });
});
