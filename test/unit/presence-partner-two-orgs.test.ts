// Two organisations in one process (issue 15): alice@org-a.test watches dave@org-b.test. Org-a's
// dialog proxy and org-b's notifier are the real code on each side; the test carries each request
// and response between them by hand (through the wire format and back), as the federation link
// would. Checks that what one half writes (Record-Route, Route, Contact, the flow token) is what
// the other half needs. No sockets (presence-partner-harness.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { branch, setup, tick } from './presence-partner-harness.ts';
import type { FakeFlow } from './presence-partner-harness.ts';
import type { SipResponse } from '../../src/sip/index.ts';

const ALICE_CONTACT = 'sip:alice@127.0.0.1:40000;transport=tcp';

function twoOrgs(opts: { blocked?: Array<[string, string]> } = {}) {
  const a = setup({ domain: 'org-a.test', address: '127.0.0.1' });
  const b = setup({ domain: 'org-b.test', users: ['dave', 'erin'], address: '127.0.0.2', ...(opts.blocked ? { blocked: opts.blocked } : {}) });
  b.online.add('dave@org-b.test');
  const client = a.makeFlow('tcp#alice');
  // org-b's end of the connection org-a opens: its certificate names sip.org-a.test
  const bLink = b.makeFlow('tls#from-a', { names: ['sip.org-a.test'] });
  return { a, b, client, bLink };
}

/** The last response `flow` carried back. */
const last = (flow: FakeFlow): SipResponse => {
  const response = flow.responses.at(-1);
  if (response === undefined) throw new Error(`nothing answered on ${flow.id}`);
  return response;
};

function subscribeLines(o: { uri: string; toTag?: string; cseq: number; routes?: string[]; expires?: number }): string[] {
  return [
    `SUBSCRIBE ${o.uri} SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=${branch()}`,
    'Max-Forwards: 70',
    ...(o.routes ?? []).map((r) => `Route: ${r}`),
    'From: <sip:alice@org-a.test>;tag=al1',
    `To: <sip:dave@org-b.test>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    'Call-ID: alice-dave',
    `CSeq: ${o.cseq} SUBSCRIBE`,
    `Contact: <${ALICE_CONTACT}>`,
    'Event: presence',
    'Accept: application/pidf+xml',
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
  ];
}

describe('presence across two organisations in one process', () => {
  it('alice@org-a watches dave@org-b: SUBSCRIBE, NOTIFYs, refresh and unsubscribe through both servers', async () => {
    const { a, b, client, bLink } = twoOrgs();

    // alice → org-a → (link) → org-b
    await a.receive(client, subscribeLines({ uri: 'sip:dave@org-b.test', cseq: 1, expires: 600 }));
    const aLink = a.sent[0]!.flow as FakeFlow;
    assert.equal(aLink.partner?.openedFor, 'org-b.test');
    await b.receiveRequest(bLink, a.sent[0]!.request);
    const ok = last(bLink);
    assert.equal(ok.status, 200, ok.headers.get('warning'));
    assert.deepEqual(b.authenticated, [], 'org-b asked no digest of org-a\'s user');
    a.deliver(0, ok);
    await tick();
    const answer = last(client);
    assert.equal(answer.status, 200);
    const recordRoutes = answer.headers.getAll('record-route');
    assert.equal(recordRoutes.length, 2);
    assert.equal(answer.headers.get('contact'), '<sip:sip.org-b.test:5061;transport=tls>');
    assert.equal(answer.headers.get('expires'), '600');

    // org-b's first NOTIFY, along alice's Record-Route, → org-a → alice's connection
    const notify = b.sent[0]!;
    assert.equal(notify.flow, bLink);
    assert.equal(notify.request.uri, ALICE_CONTACT);
    assert.deepEqual(notify.request.headers.getAll('route'), recordRoutes);
    await a.receiveRequest(aLink, notify.request);
    const toClient = a.sent[1]!;
    assert.equal(toClient.flow, client);
    assert.equal(toClient.request.uri, ALICE_CONTACT);
    assert.deepEqual(toClient.request.headers.getAll('route'), []);
    assert.equal(toClient.request.headers.getAll('via').length, 2, 'org-a\'s Via on org-b\'s');
    assert.match(toClient.request.body.toString(), /entity="sip:dave@org-b\.test"[\s\S]*<basic>open<\/basic>/);
    a.answer(1);
    const relayed = last(aLink);
    assert.equal(relayed.status, 200);
    b.deliver(0, relayed);

    // dave goes offline: the next NOTIFY takes the same way
    b.online.delete('dave@org-b.test');
    b.presence.changed('dave@org-b.test');
    await tick();
    await a.receiveRequest(aLink, b.sent[1]!.request);
    assert.match(a.sent[2]!.request.body.toString(), /<basic>closed<\/basic>/);
    a.answer(2);
    b.deliver(1, last(aLink));

    // alice refreshes along her route set (the Record-Route reversed), to org-b's Contact
    const routeSet = [...recordRoutes].reverse();
    const toTag = /tag=([^;>]+)/.exec(answer.headers.get('to') ?? '')![1]!;
    await a.receive(client, subscribeLines({ uri: 'sip:sip.org-b.test:5061;transport=tls', toTag, cseq: 2, routes: routeSet, expires: 600 }));
    assert.equal(a.sent[3]!.flow.partner?.openedFor, 'org-b.test');
    await b.receiveRequest(bLink, a.sent[3]!.request);
    assert.equal(last(bLink).status, 200, last(bLink).headers.get('warning'));
    a.deliver(3, last(bLink));
    await tick();
    assert.equal(last(client).status, 200);
    // the refresh's NOTIFY
    await a.receiveRequest(aLink, b.sent[2]!.request);
    a.answer(4);
    b.deliver(2, last(aLink));

    // and unsubscribes: org-b's final NOTIFY reaches her too
    await a.receive(client, subscribeLines({ uri: 'sip:sip.org-b.test:5061;transport=tls', toTag, cseq: 3, routes: routeSet, expires: 0 }));
    await b.receiveRequest(bLink, a.sent[5]!.request);
    a.deliver(5, last(bLink));
    await tick();
    assert.equal(last(client).status, 200);
    await a.receiveRequest(aLink, b.sent[3]!.request);
    assert.equal(a.sent[6]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    a.answer(6);
    b.deliver(3, last(aLink));
    assert.equal(b.events.subscriptions.size, 0);
    assert.equal(a.events.subscriptions.size, 0, 'org-a only routed');
  });

  it('alice, blocked by dave, sees him Offline', async () => {
    const { a, b, client, bLink } = twoOrgs({ blocked: [['alice@org-a.test', 'dave@org-b.test']] });
    await a.receive(client, subscribeLines({ uri: 'sip:dave@org-b.test', cseq: 1 }));
    await b.receiveRequest(bLink, a.sent[0]!.request);
    a.deliver(0, last(bLink));
    await a.receiveRequest(a.sent[0]!.flow as FakeFlow, b.sent[0]!.request);
    assert.match(a.sent[1]!.request.body.toString(), /<basic>closed<\/basic>/);
  });
});
