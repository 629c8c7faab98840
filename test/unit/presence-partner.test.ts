// Presence across organisations, inbound (issue 15): a partner's watcher (dave@org-b.test, on a
// connection of the federation link) subscribes to a local user. The gate instead of digest,
// presence only, blocks and the policy, NOTIFYs along the SUBSCRIBE's Record-Route, a new link
// connection when the old one closed. (presence-partner-harness.ts: fake gate, flows, transactions.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { branch, DOMAIN, FED, PARTNER, setup, tagOf, tick } from './presence-partner-harness.ts';
import type { FakeFlow } from './presence-partner-harness.ts';

/** org-b's proxy record-routes; dave's client is behind it */
const PARTNER_RR = '<sip:sip.org-b.test:5061;transport=tls;lr>';
const DAVE_CONTACT = 'sip:dave@192.0.2.7:5062;transport=tls';

function partnerSubscribe(o: { to?: string; from?: string; event?: string; expires?: number; callId?: string; toTag?: string; cseq?: number; uri?: string } = {}): string[] {
  const to = o.to ?? `alice@${DOMAIN}`;
  return [
    `SUBSCRIBE ${o.uri ?? `sip:${to}`} SIP/2.0`,
    `Via: SIP/2.0/TLS sip.org-b.test:5061;branch=${branch()}`,
    `Via: SIP/2.0/TLS 192.0.2.7:5062;branch=${branch()}`,
    'Max-Forwards: 69',
    `Record-Route: ${PARTNER_RR}`,
    `From: <sip:${o.from ?? `dave@${PARTNER}`}>;tag=dave1`,
    `To: <sip:${to}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId ?? 'sub-dave-1'}`,
    `CSeq: ${o.cseq ?? 1} SUBSCRIBE`,
    `Contact: <${DAVE_CONTACT}>`,
    `Event: ${o.event ?? 'presence'}`,
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
  ];
}

function partnerFlow(t: ReturnType<typeof setup>, id = 'tls#in1'): FakeFlow {
  return t.makeFlow(id, { names: ['sip.org-b.test'] });
}

describe('presence across organisations: a partner subscribes', () => {
  it('admits a partner watcher through the gate (no digest) and NOTIFYs along the Record-Route to its Contact', async () => {
    const t = setup();
    t.online.add(`alice@${DOMAIN}`);
    const flow = partnerFlow(t);
    await t.receive(flow, partnerSubscribe({ expires: 600 }));
    const ok = flow.responses.at(-1)!;
    assert.equal(ok.status, 200);
    assert.deepEqual(t.authenticated, [], 'partners are never asked for digest credentials');
    assert.deepEqual(t.gate.inboundAsked, [{ flow: 'tls#in1', domain: PARTNER, recipient: `alice@${DOMAIN}` }]);
    assert.equal(ok.headers.get('contact'), `<sip:${FED};transport=tls>`, 'the Contact names the federation side');
    assert.deepEqual(ok.headers.getAll('record-route'), [PARTNER_RR], 'RFC 3261 §12.1.1: Record-Route copied into the 2xx');
    assert.equal(ok.headers.get('expires'), '600');
    assert.ok(flow.keptOpenUntil !== undefined);

    assert.equal(t.sent.length, 1);
    const notify = t.sent[0]!;
    assert.equal(notify.flow, flow, 'the NOTIFY takes the partner connection');
    assert.equal(notify.request.method, 'NOTIFY');
    assert.equal(notify.request.uri, DAVE_CONTACT, 'Request-URI: the watcher\'s Contact');
    assert.deepEqual(notify.request.headers.getAll('route'), [PARTNER_RR], 'Route: the route set from Record-Route');
    assert.match(notify.request.headers.get('via') ?? '', new RegExp(`^SIP/2\\.0/TLS ${FED};branch=`));
    assert.equal(notify.request.headers.get('contact'), `<sip:${FED};transport=tls>`);
    assert.equal(notify.request.headers.get('to'), `<sip:dave@${PARTNER}>;tag=dave1`);
    assert.equal(tagOf(notify.request.headers.get('from')), tagOf(ok.headers.get('to')));
    assert.match(notify.request.body.toString(), /<basic>open<\/basic>/);
    assert.deepEqual(t.events.watching('presence', `alice@${DOMAIN}`).map((s) => [s.watcher, s.partner]), [[`dave@${PARTNER}`, PARTNER]]);
  });

  it('shows a blocked partner watcher Offline, as a blocked local watcher', async () => {
    const t = setup({ blocked: [[`dave@${PARTNER}`, `alice@${DOMAIN}`]] });
    t.online.add(`alice@${DOMAIN}`);
    await t.receive(partnerFlow(t), partnerSubscribe());
    assert.match(t.sent[0]!.request.body.toString(), /<basic>closed<\/basic>/);
    assert.equal((await t.presence.visibleTo(`dave@${PARTNER}`, `alice@${DOMAIN}`)).state, 'Offline');
    assert.equal((await t.presence.visibleTo(`erin@${PARTNER}`, `alice@${DOMAIN}`)).state, 'Available', 'a partner watcher not blocked sees what a local non-contact sees');
  });

  it('refuses with the gate\'s 403 and one text for a user who does not exist and one whose policy forbids it (never 404)', async () => {
    const t = setup();
    t.gate.notEnabled.add(`bob@${DOMAIN}`);
    const flow = partnerFlow(t);
    await t.receive(flow, partnerSubscribe({ to: `bob@${DOMAIN}` }));
    const notEnabled = flow.responses.at(-1)!;
    await t.receive(flow, partnerSubscribe({ to: `nobody@${DOMAIN}`, callId: 'sub-2' }));
    const unknown = flow.responses.at(-1)!;
    assert.equal(notEnabled.status, 403);
    assert.equal(unknown.status, 403);
    assert.match(notEnabled.headers.get('warning') ?? '', /bob@org-a\.test cannot be reached from org-b\.test/);
    assert.match(unknown.headers.get('warning') ?? '', /nobody@org-a\.test cannot be reached from org-b\.test/);
    assert.equal(t.sent.length, 0);
  });

  it('refuses a From in the own domain, a certificate not verified for the From domain, and a third domain in the Request-URI', async () => {
    const t = setup();
    const flow = partnerFlow(t);
    await t.receive(flow, partnerSubscribe({ from: `bob@${DOMAIN}` }));
    assert.equal(flow.responses.at(-1)!.status, 403);
    assert.match(flow.responses.at(-1)!.headers.get('warning') ?? '', /may not send as a user of org-a\.test/);
    await t.receive(flow, partnerSubscribe({ from: 'mallory@org-c.test', callId: 'c2' }));
    assert.equal(flow.responses.at(-1)!.status, 403);
    assert.match(flow.responses.at(-1)!.headers.get('warning') ?? '', /not sip\.org-c\.test/);
    await t.receive(flow, partnerSubscribe({ to: 'frank@org-c.test', callId: 'c3' }));
    assert.equal(flow.responses.at(-1)!.status, 403);
    assert.match(flow.responses.at(-1)!.headers.get('warning') ?? '', /relays nothing to org-c\.test/);
    assert.equal(t.gate.connects.length, 0, 'nothing went on to another organisation');
    assert.equal(t.sent.length, 0);
  });

  it('offers partners presence only: 489 with Allow-Events: presence for the local packages', async () => {
    const t = setup();
    const flow = partnerFlow(t);
    await t.receive(flow, partnerSubscribe({ event: 'message-summary' }));
    const res = flow.responses.at(-1)!;
    assert.equal(res.status, 489);
    assert.equal(res.headers.get('allow-events'), 'presence');
    assert.match(res.headers.get('warning') ?? '', /message-summary is served to org-a\.test's own users only; partners may subscribe to: presence/);
    assert.deepEqual(t.gate.inboundAsked, [], 'refused before anything else');
    await t.receive(flow, partnerSubscribe({ event: 'dialog', callId: 'c2' }));
    assert.equal(flow.responses.at(-1)!.status, 489);
    assert.equal(flow.responses.at(-1)!.headers.get('allow-events'), 'presence');
  });

  it('keeps the subscription when the link connection closes, and NOTIFYs over a new one from connect()', async () => {
    const t = setup();
    const flow = partnerFlow(t);
    await t.receive(flow, partnerSubscribe());
    t.answer(0);
    t.closeFlow('tls#in1');
    assert.equal(t.events.subscriptions.size, 1, 'the link closes idle connections: the subscription stays');
    t.online.add(`alice@${DOMAIN}`);
    t.presence.changed(`alice@${DOMAIN}`);
    await tick();
    await tick();
    assert.deepEqual(t.gate.connects, [PARTNER]);
    assert.equal(t.sent.length, 2);
    const notify = t.sent[1]!;
    assert.equal(notify.flow.id, 'tls#out1');
    assert.equal(notify.request.uri, DAVE_CONTACT);
    assert.deepEqual(notify.request.headers.getAll('route'), [PARTNER_RR]);
    assert.match(notify.request.body.toString(), /<basic>open<\/basic>/);
    assert.equal(t.events.subscriptions.all()[0]!.flow.id, 'tls#out1', 'later NOTIFYs take the new connection');
    t.answer(1);
    t.online.delete(`alice@${DOMAIN}`);
    t.presence.changed(`alice@${DOMAIN}`);
    await tick();
    assert.equal(t.sent[2]!.flow.id, 'tls#out1');
    assert.deepEqual(t.gate.connects, [PARTNER], 'no new connection while that one lives');
  });

  it('ends the subscription when the partner cannot be reached any more', async () => {
    const t = setup();
    await t.receive(partnerFlow(t), partnerSubscribe());
    t.answer(0);
    t.closeFlow('tls#in1');
    t.gate.connectFails = { ok: false, status: 503, warning: 'no server for org-b.test' };
    t.online.add(`alice@${DOMAIN}`);
    t.presence.changed(`alice@${DOMAIN}`);
    await tick();
    await tick();
    assert.equal(t.sent.length, 1, 'nothing could be sent');
    assert.equal(t.events.subscriptions.size, 0);
  });

  it('refreshes over another link connection, and unsubscribes with a final NOTIFY', async () => {
    const t = setup();
    const first = partnerFlow(t);
    await t.receive(first, partnerSubscribe({ expires: 600 }));
    const toTag = tagOf(first.responses.at(-1)!.headers.get('to'))!;
    t.answer(0);
    const second = partnerFlow(t, 'tls#in2');
    await t.receive(second, partnerSubscribe({ toTag, cseq: 2, expires: 600, uri: `sip:${FED};transport=tls` }));
    assert.equal(second.responses.at(-1)!.status, 200);
    assert.equal(t.gate.inboundAsked.at(-1)!.recipient, `alice@${DOMAIN}`, 'the refresh is checked against the watched user too');
    assert.equal(t.sent[1]!.flow, second, 'NOTIFYs now take the connection of the refresh');
    t.answer(1);
    await t.receive(second, partnerSubscribe({ toTag, cseq: 3, expires: 0, uri: `sip:${FED};transport=tls` }));
    assert.equal(second.responses.at(-1)!.status, 200);
    assert.equal(t.sent[2]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    t.answer(2);
    assert.equal(t.events.subscriptions.size, 0);
    // another partner may not refresh dave's subscription (a new one to test with)
    await t.receive(first, partnerSubscribe({ callId: 'sub-dave-2' }));
    const tag2 = tagOf(first.responses.at(-1)!.headers.get('to'))!;
    await t.receive(first, partnerSubscribe({ callId: 'sub-dave-2', toTag: tag2, cseq: 2, from: `erin@${PARTNER}` }));
    assert.equal(first.responses.at(-1)!.status, 403);
  });

  it('ends partners\' subscriptions when the decision changes, and never sweeps them as removed users', async () => {
    const t = setup();
    await t.receive(partnerFlow(t), partnerSubscribe());
    t.answer(0);
    await t.events.sweepRemovedUsers();
    assert.equal(t.sent.length, 1, 'dave is no user here, and still a welcome watcher');
    t.gate.notEnabled.add(`alice@${DOMAIN}`);
    await t.events.sweepRemovedUsers();
    await tick();
    assert.equal(t.sent[1]!.request.headers.get('subscription-state'), 'terminated;reason=rejected');
    t.answer(1);
    assert.equal(t.events.subscriptions.size, 0);
  });

  it('ends local subscriptions with their connection, as before', async () => {
    const t = setup();
    const client = t.makeFlow('tcp#alice');
    await t.receive(client, [
      `SUBSCRIBE sip:bob@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=${branch()}`, 'Max-Forwards: 70',
      `From: <sip:alice@${DOMAIN}>;tag=a1`, `To: <sip:bob@${DOMAIN}>`, 'Call-ID: local-1', 'CSeq: 1 SUBSCRIBE',
      'Contact: <sip:alice@127.0.0.1:40000;transport=tcp>', 'Event: presence',
    ]);
    assert.equal(client.responses.at(-1)!.status, 200);
    assert.equal(client.responses.at(-1)!.headers.get('contact'), '<sip:127.0.0.1:5060;transport=tcp>');
    assert.deepEqual(t.authenticated, [`alice@${DOMAIN}`]);
    t.closeFlow('tcp#alice');
    assert.equal(t.events.subscriptions.size, 0);
    assert.deepEqual(t.gate.connects, []);
  });
});
