// Security review, issue 18: finding 6 (identity headers from the sender reached the recipient
// unchanged) and 8c (autodiscover built the EWS URL from the request's Host header), against a real
// `parley serve`. Each attack is sent as the review described it, over the SDK and raw UDP/TCP.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { MailboxReader, type IncomingMessage, type SipClient } from '../../src/client/index.ts';
import { parseAuthField, formatAuthField } from '../../src/sip/auth-field.ts';
import { answerChallenge, pickChallenge } from '../../src/sip/index.ts';
import type { SipResponse } from '../../src/sip/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest, tcpExchange, udpExchange } from './raw-sip.ts';

const DOMAIN = 'parley.test';
const ALICE = `alice@${DOMAIN}`;
const ASSERTED_ALICE = `"Alice Liddell" <sip:${ALICE}>`;
const CEO_PAI = `"The CEO" <sip:ceo@${DOMAIN}>`;
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: ALICE, password: 'alice-pw', displayName: 'Alice Liddell' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
      { address: `ceo@${DOMAIN}`, password: 'ceo-pw', displayName: 'The CEO' },
    ],
  });
});
after(async () => {
  await people.closeAll();
  await server?.stop();
});

function nextMessage(c: SipClient): Promise<IncomingMessage> {
  return new Promise((resolve) => c.once('message', resolve));
}

type Exchange = (data: string) => Promise<SipResponse | null>;
const overUdp: Exchange = (data) => udpExchange(server.udp, data, 5000);
const overTcp: Exchange = (data) => tcpExchange(server.tcp, data);

/**
 * A raw MESSAGE from alice's credentials, answered through its 407 (RFC 3261 §22.3): `from` and
 * `headers` are what the attacker writes; the digest is alice's own.
 */
async function rawMessage(exchange: Exchange, transport: 'UDP' | 'TCP', opts: { from?: string; to?: string; headers?: string[]; body?: string }): Promise<SipResponse> {
  const to = opts.to ?? `sip:bob@${DOMAIN}`;
  const build = (auth: string[]) =>
    rawRequest('MESSAGE', to, { from: opts.from ?? `sip:${ALICE}`, to, transport, headers: ['Content-Type: text/plain', ...(opts.headers ?? []), ...auth], body: opts.body ?? 'hello' });
  const challenge = await exchange(build([]));
  assert.equal(challenge?.status, 407);
  const picked = pickChallenge(challenge.headers.getAll('proxy-authenticate').map(parseAuthField));
  assert.ok(picked);
  const credentials = formatAuthField(answerChallenge(picked, { username: 'alice', password: 'alice-pw', method: 'MESSAGE', uri: to }), 'credentials');
  const answer = await exchange(build([`Proxy-Authorization: ${credentials}`]));
  assert.ok(answer, 'answered');
  return answer;
}

describe('finding 6: identity headers the sender wrote never reach the recipient', () => {
  it("SDK over TCP: P-Asserted-Identity, Identity and Identity-Info are removed; bob sees Parley's assertion of alice", async () => {
    const alice = await people.connect('alice');
    const bob = await people.connect('bob', { register: true });
    const got = nextMessage(bob);
    const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'wire the money', {
      headers: {
        'P-Asserted-Identity': CEO_PAI,
        'P-Preferred-Identity': `<sip:${ALICE}>`,
        Identity: 'eyJhbGciOiJFUzI1NiJ9.eyJvcmlnIjoiY2VvIn0.c2lnbmF0dXJl;info=<https://cert.evil.example/ceo.pem>',
        'Identity-Info': '<https://cert.evil.example/ceo.cer>;alg=rsa-sha1',
        Privacy: 'id',
      },
    });
    assert.equal(res.status, 200, res.headers.get('warning') ?? '');
    const m = await got;
    assert.deepEqual(m.request.headers.getAll('p-asserted-identity'), [ASSERTED_ALICE]);
    for (const name of ['p-preferred-identity', 'identity', 'identity-info']) assert.equal(m.request.headers.has(name), false, `${name} removed`);
    assert.deepEqual(m.assertedIdentity, { uri: `sip:${ALICE}`, displayName: 'Alice Liddell' }, 'the SDK shows who really sent it');
    assert.equal(m.body, 'wire the money');
  });

  it('raw UDP and TCP: the compact Identity form (y) and a forged P-Asserted-Identity are replaced as well', async () => {
    const bob = await people.connect('bob', { register: true });
    for (const [exchange, transport] of [[overUdp, 'UDP'], [overTcp, 'TCP']] as const) {
      const got = nextMessage(bob);
      const res = await rawMessage(exchange, transport, { headers: [`P-Asserted-Identity: ${CEO_PAI}`, 'p-asserted-identity: <tel:+15550100>', 'y: forged.compact.identity'] });
      assert.equal(res.status, 200, `${transport}: ${res.headers.get('warning') ?? ''}`);
      const m = await got;
      assert.deepEqual(m.request.headers.getAll('p-asserted-identity'), [ASSERTED_ALICE], transport);
      assert.equal(m.request.headers.has('identity'), false, transport);
    }
  });

  it('the From display name is the sender\'s own to choose, and the assertion still names alice', async () => {
    const alice = await people.connect('alice');
    const bob = await people.connect('bob', { register: true });
    const got = nextMessage(bob);
    const res = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: 'hi', contentType: 'text/plain', headers: { From: `"The CEO" <sip:${ALICE}>;tag=dn` } });
    assert.equal(res.status, 200);
    const m = await got;
    assert.equal(m.fromDisplayName, 'The CEO');
    assert.equal(m.from, `sip:${ALICE}`);
    assert.equal(m.assertedIdentity?.displayName, 'Alice Liddell');
  });

  it('a P-Preferred-Identity naming another user is refused with 403 and a Warning (RFC 3325 §6), over UDP and TCP', async () => {
    const bob = await people.connect('bob', { register: true });
    let relayed = 0;
    bob.on('message', () => relayed++);
    for (const [exchange, transport] of [[overUdp, 'UDP'], [overTcp, 'TCP']] as const) {
      const res = await rawMessage(exchange, transport, { headers: [`P-Preferred-Identity: ${CEO_PAI}`] });
      assert.equal(res.status, 403, transport);
      assert.match(res.headers.get('warning') ?? '', /P-Preferred-Identity ceo@parley\.test is not an identity of alice@parley\.test/, transport);
    }
    const alice = await people.connect('alice');
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, 'x', { headers: { 'P-Preferred-Identity': '<tel:+15550100>' } })).status, 403, 'a telephone number is no identity of a Parley user');
    assert.equal(relayed, 0, 'nothing reached bob');
  });

  it('a From naming another user is refused with 403 and a Warning, over UDP and TCP', async () => {
    for (const [exchange, transport] of [[overUdp, 'UDP'], [overTcp, 'TCP']] as const) {
      const res = await rawMessage(exchange, transport, { from: `sip:ceo@${DOMAIN}` });
      assert.equal(res.status, 403, transport);
      assert.match(res.headers.get('warning') ?? '', /alice@parley\.test may not send as ceo@parley\.test: the From address must be the signed-in user's/, transport);
    }
  });

  it("offline: the Missed Conversation names the authenticated sender, whatever the headers and the CPIM body claimed", async () => {
    const admin = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
    assert.equal(admin.code, 0, admin.stderr);
    const alice = await people.connect('alice');
    // a CPIM From naming someone else is refused outright (403)
    const forged = `From: "The CEO" <im:ceo@${DOMAIN}>\r\nTo: <sip:carol@${DOMAIN}>\r\n\r\nContent-Type: text/plain\r\n\r\nplease wire the money`;
    const refused = await alice.request('MESSAGE', `sip:carol@${DOMAIN}`, { body: forged, contentType: 'message/cpim' });
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('warning') ?? '', /the CPIM From \\"The CEO\\" <im:ceo@parley\.test> is not alice@parley\.test/);
    // alice's own address with a display name of her choosing passes, and the mailbox still names alice
    const cpim = `From: "The CEO" <sip:${ALICE}>\r\nTo: <sip:carol@${DOMAIN}>\r\nDateTime: 2026-11-25T10:00:00Z\r\n\r\nContent-Type: text/plain\r\n\r\nplease wire the money`;
    const res = await alice.request('MESSAGE', `sip:carol@${DOMAIN}`, {
      body: cpim,
      contentType: 'message/cpim',
      headers: { From: `"The CEO" <sip:${ALICE}>;tag=off`, 'P-Asserted-Identity': CEO_PAI, Identity: 'forged.identity.sig' },
    });
    assert.equal(res.status, 202, res.headers.get('warning') ?? '');
    const ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
    const carol = new MailboxReader({ ewsUrl, username: `carol@${DOMAIN}`, password: 'carol-pw' });
    const [missed] = await eventually('the Missed Conversation in carol\'s mailbox', async () => {
      const list = await carol.listMissedConversations();
      return list.length > 0 ? list : undefined;
    });
    assert.ok(missed);
    assert.deepEqual(missed.from, { name: 'Alice Liddell', address: ALICE });
    assert.equal(missed.subject, 'Missed conversation with Alice Liddell');
    const item = await carol.getItem(missed.itemId);
    assert.match(item.bodyText, /Alice Liddell\s*please wire the money/, 'the transcript line names alice');
    assert.doesNotMatch(item.bodyText, /CEO/);
  });
});

/** POST to autodiscover with a Host header of our choosing (fetch cannot set Host); resolves with the answer's text. */
function autodiscover(path: string, host: string, body: string, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: server.http.host, port: server.http.port, path, method: 'POST', headers: { host, 'content-type': contentType, authorization: `Basic ${Buffer.from(`${ALICE}:alice-pw`).toString('base64')}` } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('finding 8c: autodiscover never names a Host that is not the server', () => {
  const pox = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${ALICE}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
  const soap =
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">` +
    `<soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></soap:Header>` +
    `<soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>${ALICE}</a:Mailbox></a:User></a:Users>` +
    `<a:RequestedSettings><a:Setting>InternalEwsUrl</a:Setting><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>`;

  it('Host: evil.example gets the server\'s own EWS URL (POX and SOAP), and the log says so', async () => {
    const own = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
    const answers = [await autodiscover('/autodiscover/autodiscover.xml', 'evil.example', pox, 'text/xml'), await autodiscover('/autodiscover/autodiscover.svc', 'evil.example', soap, 'text/xml; charset=utf-8')];
    for (const { status, text } of answers) {
      assert.equal(status, 200, text);
      assert.doesNotMatch(text, /evil\.example/);
      assert.ok(text.includes(own), `the server's own URL in ${text}`);
    }
    assert.match(server.logs(), /autodiscover: Host evil\.example is not a name of this server/);
  });

  it("a Host that names the server (localhost, a subdomain of the SIP domain) is kept, the client's way of reaching it", async () => {
    const { text } = await autodiscover('/autodiscover/autodiscover.xml', `localhost:${server.http.port}`, pox, 'text/xml');
    assert.match(text, new RegExp(`<EwsUrl>http://localhost:${server.http.port}/EWS/Exchange\\.asmx</EwsUrl>`));
    const sub = await autodiscover('/autodiscover/autodiscover.xml', `autodiscover.${DOMAIN}`, pox, 'text/xml');
    assert.match(sub.text, /<EwsUrl>http:\/\/autodiscover\.parley\.test\/EWS\/Exchange\.asmx<\/EwsUrl>/);
  });
});
