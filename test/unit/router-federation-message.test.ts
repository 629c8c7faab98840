// MESSAGE across organisations in-process (no sockets, issue 15): a local user's message to a
// partner's user over the federation link (the gate's refusal, the partner's answers, the offline
// rule by e-mail, the bounded retries), and a partner's user's message to a local user (the gate's
// admission, no challenge, no relay to a third domain, identity at the trust boundary, offline to
// the Inbox), with what Conversation History is told. The gate, the transaction layer and the
// offline hand-off are small fakes (router-federation-harness.ts).
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { messageHandler } from '../../src/router/message.ts';
import { PARTNER_ATTEMPTS, PARTNER_BUDGET_MS } from '../../src/router/message-partner.ts';
import { ALICE, BOB, CAROL, DAVE, NOT_ENABLED, SENT_BY, answer, flowOf, fromAlice, fromPartnerUser, handle, setup } from './router-federation-harness.ts';

const client = () => flowOf('tcp#alice');
const orgB = () => flowOf('tls#from-org-b', { names: ['sip.org-b.test'] });

describe('MESSAGE from a local user to a partner organisation\'s user', () => {
  it('goes over the link as a copy for the partner, and its answer comes back without identity headers', async () => {
    const t = setup(({ request }) => answer(request, 200, [['P-Asserted-Identity', '<sip:ceo@org-b.test>'], ['Identity', 'sig']]));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE, ['P-Preferred-Identity: <sip:alice@parley.test>']), client());
    assert.equal(res?.status, 200);
    assert.equal(res?.headers.has('p-asserted-identity'), false, "the partner's assertion is not passed on, nor one of Parley's");
    assert.equal(res?.headers.has('identity'), false);
    assert.equal(res?.headers.getAll('via').length, 1, "our Via is gone, the client's stays");
    assert.deepEqual(t.connected, ['org-b.test']);
    const [out] = t.sent;
    assert.equal(out?.flow, t.partnerOut);
    assert.equal(out?.request.uri, `sip:${DAVE}`);
    assert.match(out?.request.headers.get('via') ?? '', new RegExp(`^SIP/2.0/TLS ${SENT_BY};branch=z9hG4bK`));
    assert.equal(out?.request.headers.get('max-forwards'), '69');
    for (const name of ['proxy-authorization', 'p-asserted-identity', 'p-preferred-identity']) assert.equal(out?.request.headers.has(name), false, name);
    assert.deepEqual(t.recorded.map((m) => [m.sender, m.recipient, m.outcome]), [[ALICE, DAVE, 'relayed']], 'history for the local sender');
  });

  it("relays the partner's other final answers as they are, and records nothing", async () => {
    const t = setup(({ request }) => answer(request, 404, [['Warning', '399 org-b.test "no user dave"']]));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 404);
    assert.match(res?.headers.get('warning') ?? '', /org-b\.test "no user dave"/);
    assert.equal(t.recorded.length, 0);
    assert.equal(t.offered.length, 0);
  });

  it('is challenged like any local request first, and refused 403 with the gate\'s Warning when the administration says no', async () => {
    const refusal = { code: 'DOMAIN_BLOCKED', warning: 'org-b.test is blocked (Remove-CsBlockedDomain -Identity org-b.test)' };
    const t = setup(() => 'never', { outboundRefusals: { 'org-b.test': refusal } });
    const unsigned = fromAlice(DAVE);
    unsigned.headers.delete('proxy-authorization');
    assert.equal((await handle(messageHandler, t.ctx, unsigned, client()))?.status, 407, 'the digest challenge comes first');
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /^399 parley\.test "org-b\.test is blocked \(Remove-CsBlockedDomain/);
    assert.equal(t.sent.length, 0);
    assert.deepEqual(t.connected, []);
  });

  it('is refused 403 as before when no federation link is configured', async () => {
    const t = setup(() => 'never', { noFederation: true });
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /org-b\.test is not served here; parley\.test relays only to its own users \(no federation link is configured\)/);
    assert.equal(t.sent.length, 0);
  });

  it("answers the gate's 503/480 with its Warning when the partner cannot be reached, and keeps nothing", async () => {
    const t = setup(() => 'never', { unreachable: { 'org-b.test': { status: 503, warning: 'no DNS SRV record _sipfederationtls._tcp.org-b.test and no address for org-b.test' } } });
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 503);
    assert.match(res?.headers.get('warning') ?? '', /no DNS SRV record _sipfederationtls\._tcp\.org-b\.test/);
    assert.equal(t.offered.length, 0);
    assert.equal(t.recorded.length, 0);
  });

  it('answers 503 when the connection dies before the answer, without retrying (the partner may have it) nor an e-mail', async () => {
    const t = setup(() => 'transport-error');
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 503);
    assert.match(res?.headers.get('warning') ?? '', /connection to org-b\.test closed before it answered/);
    assert.equal(t.sent.length, 1);
    assert.equal(t.offered.length, 0);
  });

  it("a partner's 480 (the user is offline): kept for e-mail from the sender, 202 with a Warning saying so", async () => {
    const t = setup(({ request }) => answer(request, 480));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 202);
    assert.match(res?.headers.get('warning') ?? '', /dave@org-b\.test is offline; the message goes by e-mail to dave@org-b\.test \(spool entry sp-1\)/);
    assert.deepEqual(t.offered.map((m) => [m.sender, m.recipient, m.delivery, Buffer.from(m.body).toString()]), [[ALICE, DAVE, 'email', 'hi']]);
    assert.match(t.offered[0]?.why ?? '', /org-b\.test answered 480/);
    assert.deepEqual(t.recorded.map((m) => [m.sender, m.recipient, m.outcome, m.entryId]), [[ALICE, DAVE, 'spooled', 'sp-1']]);
    assert.equal(t.sent.length, 1, 'a 480 is not retried');
  });

  it('when the sender may not leave offline messages: 480 with what the partner said and why it is not kept', async () => {
    const t = setup(({ request }) => answer(request, 480), { offline: () => ({ kind: 'refused', warning: "alice@parley.test's EnableOfflineIm is False" }) });
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 480);
    assert.match(res?.headers.get('warning') ?? '', /org-b\.test answered 480 Temporarily Unavailable; alice@parley\.test's EnableOfflineIm is False/);
    assert.deepEqual(t.recorded.map((m) => m.outcome), ['undelivered']);
  });

  it("retries a partner's 503 (after its Retry-After), each try a new transaction, and relays the answer that came", async () => {
    let tries = 0;
    const t = setup(({ request }) => (++tries < 3 ? answer(request, 503, [['Retry-After', '0']]) : answer(request, 200)));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 200);
    assert.equal(t.sent.length, 3);
    assert.equal(new Set(t.sent.map((s) => s.request.headers.get('via'))).size, 3, 'a branch of its own each time');
    assert.equal(t.offered.length, 0);
  });

  it(`after ${PARTNER_ATTEMPTS} tries answered 408/503, the partner's user counts as offline: e-mail, 202`, async () => {
    let tries = 0;
    const t = setup(({ request }) => answer(request, ++tries % 2 === 1 ? 503 : 408, [['Retry-After', '0']]));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(t.sent.length, PARTNER_ATTEMPTS, 'bounded');
    assert.equal(res?.status, 202);
    assert.deepEqual(t.offered.map((m) => m.delivery), ['email']);
  });

  it('does not retry when the partner asks for more time than the sender has', async () => {
    const t = setup(({ request }) => answer(request, 503, [['Retry-After', '3600']]));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(t.sent.length, 1);
    assert.equal(res?.status, 202);
  });

  it('waits for a partner within the budget: backs off between tries, then answers 408 in time for the sender (no e-mail)', async (tc) => {
    // the clock is the test's: the retry's backoff and the budget pass without waiting
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    tc.after(() => mock.timers.reset());
    const t = setup(({ request }) => (t.sent.length === 1 ? answer(request, 503) : 'never'));
    const flow = client();
    const done = handle(messageHandler, t.ctx, fromAlice(DAVE), flow);
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    await settle();
    assert.equal(t.sent.length, 1);
    mock.timers.tick(999);
    await settle();
    assert.equal(t.sent.length, 1, 'a 503 without Retry-After waits a second');
    mock.timers.tick(1);
    await settle();
    assert.equal(t.sent.length, 2);
    mock.timers.tick(PARTNER_BUDGET_MS);
    const res = await done;
    assert.equal(res?.status, 408);
    assert.match(res?.headers.get('warning') ?? '', /org-b\.test did not answer the MESSAGE within 25 s/);
    assert.equal(t.offered.length, 0, 'the partner may still deliver it: no e-mail copy');
  });

  it("turns a partner's challenge into 403: the sender's credentials never leave the organisation", async () => {
    const t = setup(({ request }) => answer(request, 407, [['Proxy-Authenticate', 'Digest realm="org-b.test", nonce="x"']]));
    const res = await handle(messageHandler, t.ctx, fromAlice(DAVE), client());
    assert.equal(res?.status, 403);
    assert.equal(res?.headers.has('proxy-authenticate'), false);
    assert.match(res?.headers.get('warning') ?? '', /org-b\.test asked for credentials \(407\)/);
  });

  it('goes to a user of the partner, not to its domain (404)', async () => {
    const t = setup(() => 'never');
    const res = await handle(messageHandler, t.ctx, fromAlice('org-b.test'), client());
    assert.equal(res?.status, 404);
    assert.deepEqual(t.connected, []);
  });

  it('a local client still cannot send as another domain', async () => {
    const t = setup(() => 'never');
    const forged = fromAlice(DAVE);
    forged.headers.set('from', `<sip:${DAVE}>;tag=x`);
    const res = await handle(messageHandler, t.ctx, forged, client());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /senders from org-b\.test are not accepted here/);
    assert.equal(t.sent.length, 0);
  });

  it('the CPIM sender must be the signed-in user towards partners too', async () => {
    const t = setup(() => 'never');
    const cpim = fromAlice(DAVE, [], `From: <sip:ceo@${'parley.test'}>\r\n\r\nContent-Type: text/plain\r\n\r\nhi`);
    cpim.headers.set('content-type', 'message/cpim');
    const res = await handle(messageHandler, t.ctx, cpim, client());
    assert.equal(res?.status, 403);
    assert.equal(t.sent.length, 0);
  });
});

describe("MESSAGE from a partner organisation's user to a local user", () => {
  it('is admitted by the gate without a challenge, forked to the devices with Parley\'s assertion of the From, and answered', async () => {
    const t = setup(({ request }) => answer(request, 200, [['P-Asserted-Identity', `"Alice" <sip:${ALICE}>`]]), { online: [ALICE] });
    const res = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, ALICE, [`P-Asserted-Identity: "The CEO" <sip:ceo@parley.test>`, 'Identity: forged.sig', `P-Preferred-Identity: <sip:${DAVE}>`]), orgB());
    assert.equal(res?.status, 200);
    assert.equal(t.authCalls, 0, 'no digest for partners');
    assert.deepEqual(t.inbound, [{ fromDomain: 'org-b.test', recipient: ALICE }]);
    const [out] = t.sent;
    assert.equal(out?.request.uri, 'sip:alice@127.0.0.3:41000;transport=tcp', "to alice's device, nowhere else");
    assert.deepEqual(out?.request.headers.getAll('p-asserted-identity'), [`<sip:${DAVE}>`], "what the partner's certificate vouches for, not what it wrote");
    assert.equal(out?.request.headers.has('identity'), false);
    assert.equal(out?.request.headers.has('p-preferred-identity'), false);
    assert.equal(res?.headers.has('p-asserted-identity'), false, 'the answer leaves the trust domain without identity headers');
    assert.deepEqual(res?.headers.getAll('via'), ['SIP/2.0/TLS sip.org-b.test:5061;branch=z9hG4bKorgb1', 'SIP/2.0/TCP 10.0.0.9:50000;branch=z9hG4bKdave1']);
    assert.deepEqual(t.recorded.map((m) => [m.sender, m.recipient, m.outcome]), [[DAVE, ALICE, 'relayed']], 'history for the local recipient');
  });

  it('refuses (403) a From naming this organisation, whatever the certificate', async () => {
    const t = setup(() => 'never', { online: [ALICE] });
    const res = await handle(messageHandler, t.ctx, fromPartnerUser(BOB, ALICE), orgB());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /may not send as a user of parley\.test/);
    assert.equal(t.sent.length, 0);
    assert.equal(t.authCalls, 0);
  });

  it("refuses (403, the gate's Warning) a From whose domain the connection's certificate was not verified for", async () => {
    const t = setup(() => 'never', { online: [ALICE] });
    const res = await handle(messageHandler, t.ctx, fromPartnerUser('erin@org-c.test', ALICE), orgB());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /certificate \(sip\.org-b\.test\) is not org-c\.test's federation proxy/);
    assert.equal(t.sent.length, 0);
  });

  it('answers an unknown local user exactly as one whose policy forbids federation: 403, never 404', async () => {
    const t = setup(() => 'never');
    const unknown = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, 'nobody@parley.test'), orgB());
    const closed = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, CAROL), orgB());
    assert.equal(unknown?.status, 403);
    assert.equal(closed?.status, 403);
    assert.equal(unknown?.headers.get('warning'), closed?.headers.get('warning'));
    assert.match(unknown?.headers.get('warning') ?? '', new RegExp(NOT_ENABLED.slice(0, 40).replace(/[()]/g, '\\$&')));
  });

  it('is never relayed to a third domain (403), nor to the partner back', async () => {
    for (const to of ['erin@org-c.test', 'dave2@org-b.test', 'alice@sip.parley.test']) {
      const t = setup(() => 'never', { online: [ALICE] });
      const res = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, to), orgB());
      assert.equal(res?.status, 403, to);
      assert.match(res?.headers.get('warning') ?? '', /Parley relays nothing to another domain/, to);
      assert.equal(t.sent.length, 0, to);
      assert.deepEqual(t.connected, [], to);
    }
  });

  it('to an offline local user: kept for their Inbox (inbox-note), 202; history told for the local recipient', async () => {
    const t = setup(() => 'never');
    const res = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, ALICE), orgB());
    assert.equal(res?.status, 202);
    assert.match(res?.headers.get('warning') ?? '', /alice@parley\.test is offline; the message goes to their Inbox as an e-mail/);
    assert.deepEqual(t.offered.map((m) => [m.sender, m.recipient, m.delivery]), [[DAVE, ALICE, 'inbox-note']]);
    assert.deepEqual(t.recorded.map((m) => [m.sender, m.recipient, m.outcome]), [[DAVE, ALICE, 'spooled']]);
  });

  it('devices that do not take it count as offline too: inbox-note', async () => {
    const t = setup(({ request }) => answer(request, 480), { online: [ALICE] });
    const res = await handle(messageHandler, t.ctx, fromPartnerUser(DAVE, ALICE), orgB());
    assert.equal(res?.status, 202);
    assert.deepEqual(t.offered.map((m) => m.delivery), ['inbox-note']);
  });

  it('checks the CPIM sender against the From, and Max-Forwards', async () => {
    const t = setup(() => 'never', { online: [ALICE] });
    const cpim = fromPartnerUser(DAVE, ALICE, [], 'From: <sip:ceo@org-b.test>\r\n\r\nContent-Type: text/plain\r\n\r\nhi');
    cpim.headers.set('content-type', 'message/cpim');
    const res = await handle(messageHandler, t.ctx, cpim, orgB());
    assert.equal(res?.status, 403);
    assert.match(res?.headers.get('warning') ?? '', /the CPIM From <sip:ceo@org-b\.test> is not dave@org-b\.test/);
    const spent = fromPartnerUser(DAVE, ALICE);
    spent.headers.set('max-forwards', '0');
    assert.equal((await handle(messageHandler, t.ctx, spent, orgB()))?.status, 483);
    assert.equal(t.sent.length, 0);
  });
});
