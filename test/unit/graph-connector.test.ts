// The Microsoft Graph MailboxConnector against the Graph stand-in (test/harness/graph-standin.ts):
// a local HTTPS server with a test CA that serves Graph and the identity platform's token endpoint
// as Microsoft documents them and rejects any request that deviates. No live tenant is reached:
// this verifies Parley against the documented contract, not against Exchange Online itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GraphMailboxConnector, MailboxError } from '../../src/mailbox/index.ts';
import type { DeliveryItem, GraphConnectorOptions } from '../../src/mailbox/index.ts';
import { makeAppCertificate, startGraphStandIn } from '../harness/graph-standin.ts';
import type { GraphStandIn } from '../harness/graph-standin.ts';

const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
const SECRET = 'sEcr3t~value';
const BOB = 'bob@parley.test';
let standIn: GraphStandIn;
let dir = '';
let cert: ReturnType<typeof makeAppCertificate>;
let n = 0;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parley-graph-unit-'));
  cert = makeAppCertificate(dir);
  standIn = await startGraphStandIn({ app: { clientId: CLIENT_ID, secret: SECRET, certificate: cert.certificate }, mailboxes: [BOB, 'carol@parley.test'] });
  // the stand-in's test CA, trusted by this process as NODE_EXTRA_CA_CERTS makes a server trust it
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), standIn.caPem]);
});
after(async () => {
  await standIn.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  // every request this file's connectors make is as documented
  assert.deepEqual(standIn.rejected().map((r) => r.rejected), []);
});

const connector = (over: Partial<GraphConnectorOptions> = {}) =>
  new GraphMailboxConnector({ tenantId: standIn.tenantId, clientId: CLIENT_ID, credential: { clientSecret: SECRET }, graphUrl: standIn.graphUrl, authorityHost: standIn.authorityHost, timeoutMs: 5_000, ...over });

const item = (over: Partial<DeliveryItem> = {}): DeliveryItem => ({
  mailbox: BOB,
  folder: 'conversationhistory',
  itemClass: 'IPM.Note.Microsoft.Missed',
  internetMessageId: `<sp-unit${++n}@parley.test>`,
  subject: 'Missed conversation with Alice',
  from: { address: 'alice@parley.test', name: 'Alice' },
  to: [{ address: BOB, name: 'Bob' }],
  bodyHtml: '<p>alice: hi</p>',
  bodyText: 'alice: hi',
  sentAt: new Date('2026-01-02T03:04:05Z'),
  isRead: false,
  ...over,
});
const graphRequests = (since: number) => standIn.requests.slice(since).filter((r) => r.path.startsWith('/v1.0/'));
const code = (c: string, pattern?: RegExp) => (e: unknown) => e instanceof MailboxError && e.code === c && (pattern === undefined || pattern.test(e.message));

describe('GraphMailboxConnector against the Graph stand-in', () => {
  it('delivers a Missed Conversation as a received, unread message of its class in conversationhistory, looked up first', async () => {
    const c = connector();
    const since = standIn.requests.length;
    const one = item();
    const result = await c.deliver(one);
    assert.equal(result.created, true);
    const [lookup, create] = graphRequests(since);
    assert.equal(lookup?.method, 'GET');
    assert.equal(lookup?.path, `/v1.0/users/${BOB}/mailFolders/conversationhistory/messages`);
    assert.equal(lookup?.query.$filter, `internetMessageId eq '${one.internetMessageId}'`);
    assert.equal(create?.method, 'POST');
    assert.equal(create?.status, 201);
    assert.match(String(create?.headers.authorization), /^Bearer /);
    const body = create?.body as Record<string, unknown>;
    assert.equal(body.internetMessageId, one.internetMessageId);
    assert.equal(body.isRead, false);
    assert.deepEqual(body.body, { contentType: 'html', content: '<p>alice: hi</p>' });
    assert.deepEqual(body.singleValueExtendedProperties, [
      { id: 'Integer 0x0E07', value: '0' },
      { id: 'String 0x001A', value: 'IPM.Note.Microsoft.Missed' },
      { id: 'SystemTime 0x0039', value: '2026-01-02T03:04:05.000Z' },
      (body.singleValueExtendedProperties as Array<{ id: string }>)[3],
    ]);
    const stored = standIn.messages(BOB, 'conversationhistory').find((m) => m.id === result.itemId);
    assert.equal(stored?.isDraft, false, 'PR_MESSAGE_FLAGS without MSGFLAG_UNSENT: not a draft');
    assert.equal(stored?.isRead, false);
  });

  it('a repeat finds the item and creates nothing; the token is asked for once and cached', async () => {
    const c = connector();
    const tokensBefore = standIn.tokensIssued();
    const one = item();
    const first = await c.deliver(one);
    const since = standIn.requests.length;
    const again = await c.deliver(one);
    assert.deepEqual(again, { itemId: first.itemId, created: false });
    assert.deepEqual(graphRequests(since).map((r) => r.method), ['GET']);
    assert.equal(standIn.messages(BOB).filter((m) => m.json.internetMessageId === one.internetMessageId).length, 1);
    assert.equal(standIn.tokensIssued(), tokensBefore + 1);
  });

  it('an expired token: a new one is asked for and the request sent again', async () => {
    const c = connector();
    await c.deliver(item());
    const tokens = standIn.tokensIssued();
    standIn.expireTokens();
    const result = await c.deliver(item());
    assert.equal(result.created, true);
    assert.equal(standIn.tokensIssued(), tokens + 1);
  });

  it('the certificate credential (private key and certificate): a PS256 client assertion the stand-in verifies', async () => {
    const c = connector({ credential: { certificate: cert.certificate, privateKey: cert.privateKey } });
    const since = standIn.requests.length;
    assert.equal((await c.deliver(item())).created, true);
    const token = standIn.requests.slice(since).find((r) => r.path.endsWith('/oauth2/v2.0/token'));
    assert.equal((token?.body as Record<string, string>).client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(token?.status, 200);
  });

  it('503 without Retry-After: REMOTE_UNAVAILABLE (the spool retries); the next attempt creates the item once', async () => {
    const c = connector();
    const one = item();
    standIn.fault({ match: 'create', status: 503 });
    await assert.rejects(c.deliver(one), code('REMOTE_UNAVAILABLE', /503 ServiceUnavailable/));
    assert.equal((await c.deliver(one)).created, true);
    assert.equal(standIn.messages(BOB).filter((m) => m.json.internetMessageId === one.internetMessageId).length, 1);
  });

  it('a create whose answer is lost (the connection drops): the retry finds the item, exactly once', async () => {
    const c = connector();
    const one = item();
    standIn.fault({ match: 'create', loseAnswer: 'drop' });
    await assert.rejects(c.deliver(one), code('REMOTE_UNAVAILABLE', /cannot reach Graph/));
    const again = await c.deliver(one);
    assert.equal(again.created, false);
    assert.equal(standIn.messages(BOB).filter((m) => m.json.internetMessageId === one.internetMessageId).length, 1);
  });

  it('a create that times out: REMOTE_UNAVAILABLE; the retry finds the item, exactly once', async () => {
    const c = connector({ timeoutMs: 500 });
    const one = item();
    standIn.fault({ match: 'create', loseAnswer: 'hold' });
    await assert.rejects(c.deliver(one), code('REMOTE_UNAVAILABLE', /cannot reach Graph.*(timeout|aborted)/i));
    assert.equal((await c.deliver(one)).created, false);
    assert.equal(standIn.messages(BOB).filter((m) => m.json.internetMessageId === one.internetMessageId).length, 1);
  });

  it('429 with a short Retry-After: waited out within the delivery, which looks up again and creates once', async () => {
    const c = connector();
    const one = item();
    const since = standIn.requests.length;
    standIn.fault({ match: 'create', status: 429, retryAfter: '1' });
    assert.equal((await c.deliver(one)).created, true);
    assert.deepEqual(graphRequests(since).map((r) => `${r.method} ${r.status}`), ['GET 200', 'POST 429', 'GET 200', 'POST 201']);
  });

  it('429 with a long Retry-After: REMOTE_UNAVAILABLE naming it, and nothing more is sent to Graph until it has passed', async () => {
    const c = connector({ maxRetryWaitMs: 2_000 });
    standIn.fault({ match: 'list', status: 429, retryAfter: '120' });
    await assert.rejects(c.deliver(item()), code('REMOTE_UNAVAILABLE', /429 TooManyRequests.*Retry-After 120 s/));
    const since = standIn.requests.length;
    await assert.rejects(c.deliver(item()), code('REMOTE_UNAVAILABLE', /throttles this app until/));
    assert.equal(graphRequests(since).length, 0);
  });

  it('403 (an application access policy leaves the mailbox out): REMOTE_REFUSED with what to grant', async () => {
    standIn.deny('carol@parley.test');
    try {
      await assert.rejects(connector().deliver(item({ mailbox: 'carol@parley.test' })), code('REMOTE_REFUSED', /403 ErrorAccessDenied.*Mail\.ReadWrite application permission.*application access policy/));
    } finally {
      standIn.deny('carol@parley.test', false);
    }
  });

  it('404 (no such mailbox): REMOTE_REFUSED saying the address must be a mailbox', async () => {
    await assert.rejects(connector().deliver(item({ mailbox: 'nobody@parley.test' })), code('REMOTE_REFUSED', /404 ErrorInvalidUser.*userPrincipalName or primary SMTP address/));
  });

  it('a wrong client secret: REMOTE_REFUSED from the sign-in, saying what to check', async () => {
    await assert.rejects(connector({ credential: { clientSecret: 'wrong' } }).deliver(item()), code('REMOTE_REFUSED', /refused the sign-in.*invalid_client.*AADSTS7000215/));
  });

  it('no identity platform to reach: REMOTE_UNAVAILABLE', async () => {
    await assert.rejects(connector({ authorityHost: 'https://127.0.0.1:1' }).deliver(item()), code('REMOTE_UNAVAILABLE', /cannot sign in/));
  });

  it('missedSummary counts the Missed items of conversationhistory, and the unread ones, through $count', async () => {
    const c = connector();
    const dave = 'dave@parley.test';
    standIn.addMailbox(dave);
    await c.deliver(item({ mailbox: dave }));
    await c.deliver(item({ mailbox: dave, isRead: true }));
    await c.deliver(item({ mailbox: dave, itemClass: 'IPM.Note.Microsoft.Conversation', isRead: true }));
    assert.deepEqual(await c.missedSummary(dave), { total: 2, unread: 1 });
    // a new connector's two counts start together: they share one sign-in
    const tokens = standIn.tokensIssued();
    assert.deepEqual(await connector().missedSummary(dave), { total: 2, unread: 1 });
    assert.equal(standIn.tokensIssued(), tokens + 1);
  });

  it('check: sign-in, mailbox, folder and write pass, and the write leaves nothing behind', async () => {
    const erin = 'erin@parley.test';
    standIn.addMailbox(erin);
    const steps = await connector().check(erin);
    assert.deepEqual(steps.map((s) => `${s.step} ${s.ok}`), ['sign-in true', 'mailbox true', 'folder true', 'write true']);
    assert.equal(standIn.messages(erin).length, 0);
    assert.ok(standIn.requests.some((r) => r.path.endsWith('/permanentDelete') && r.status === 204));
  });

  it('check: a mailbox the app may not open fails at "mailbox" with what to grant, and stops there', async () => {
    standIn.deny('carol@parley.test');
    try {
      const steps = await connector().check('carol@parley.test');
      assert.deepEqual(steps.map((s) => `${s.step} ${s.ok}`), ['sign-in true', 'mailbox false']);
      assert.match(steps[1]?.detail ?? '', /Mail\.ReadWrite/);
    } finally {
      standIn.deny('carol@parley.test', false);
    }
  });

  it('check: a wrong secret fails at "sign-in"', async () => {
    const steps = await connector({ credential: { clientSecret: 'wrong' } }).check(BOB);
    assert.deepEqual(steps.map((s) => `${s.step} ${s.ok}`), ['sign-in false']);
    assert.match(steps[0]?.detail ?? '', /invalid_client/);
  });

  it('no request of this file deviated from the documented contract', () => {
    assert.deepEqual(standIn.rejected().map((r) => `${r.method} ${r.path}: ${r.rejected}`), []);
  });
});
