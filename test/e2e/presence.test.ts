// Presence end to end against a real `parley serve`: SDK clients publish (RFC 3903), subscribe
// and receive NOTIFYs (RFC 6665, RFC 3856) with PIDF documents (RFC 3863, RFC 4480).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN, { register: true });

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: ['alice', 'bob', 'carol', 'dave'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

function pidf(user: string, activities: string, note: string, basic = 'open'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">
  <tuple id="dev"><status><basic>${basic}</basic></status></tuple>
  <dm:person id="p">${activities === '' ? '' : `<rpid:activities>${activities}</rpid:activities>`}${note === '' ? '' : `<dm:note>${note}</dm:note>`}</dm:person>
</presence>`;
}

function publish(c: SipClient, user: string, body: string | undefined, headers: Record<string, string> = {}) {
  return c.request('PUBLISH', `sip:${user}@${DOMAIN}`, {
    headers: { Event: 'presence', Expires: '600', ...headers },
    ...(body === undefined ? {} : { body, contentType: PIDF }),
  });
}

function subscribe(c: SipClient, user: string, expires: number, event = 'presence') {
  return c.request('SUBSCRIBE', `sip:${user}@${DOMAIN}`, { contact: true, headers: { Event: event, Expires: String(expires), Accept: PIDF } });
}

/** The state shown by a NOTIFY's PIDF: basic, the RPID activities and the note. */
function shown(notify: SipRequest): { basic: string; activities: string; note: string; subscriptionState: string } {
  const body = notify.body.toString('utf8');
  assert.equal(notify.headers.get('content-type'), PIDF);
  assert.equal(notify.headers.get('event'), 'presence');
  return {
    basic: /<basic>(\w+)<\/basic>/.exec(body)?.[1] ?? '',
    activities: /<rpid:activities>(.*?)<\/rpid:activities>/.exec(body)?.[1] ?? '',
    note: /<note>(.*?)<\/note>/.exec(body)?.[1] ?? '',
    subscriptionState: notify.headers.get('subscription-state') ?? '',
  };
}

function cseqOf(r: SipRequest): number {
  return Number.parseInt(r.headers.get('cseq') ?? '', 10);
}

describe('presence between users of the organisation', () => {
  it('alice watches bob: Busy with a note, Away, then Offline when he unregisters', async () => {
    const alice = await people.connect('alice');
    const bob = await people.connect('bob', { over: 'ws' });
    const inbox = notifications(alice);

    const sub = await subscribe(alice, 'bob', 600);
    assert.equal(sub.status, 200);
    assert.equal(sub.headers.get('expires'), '600');
    const first = await inbox.next();
    assert.deepEqual(shown(first), { basic: 'open', activities: '', note: '', subscriptionState: shown(first).subscriptionState });
    assert.match(shown(first).subscriptionState, /^active;expires=(600|599)$/);
    // NOTIFY is in the SUBSCRIBE's dialog: same Call-ID, tags swapped.
    assert.equal(first.headers.get('call-id'), sub.headers.get('call-id'));
    assert.equal(/tag=([^;>]+)/.exec(first.headers.get('from') ?? '')?.[1], /tag=([^;>]+)/.exec(sub.headers.get('to') ?? '')?.[1]);
    assert.equal(/tag=([^;>]+)/.exec(first.headers.get('to') ?? '')?.[1], /tag=([^;>]+)/.exec(sub.headers.get('from') ?? '')?.[1]);
    assert.match(first.uri, /^sip:alice@/);

    const busy = await publish(bob, 'bob', pidf('bob', '<rpid:busy/>', 'In a meeting until 3'));
    assert.equal(busy.status, 200);
    const etag = busy.headers.get('sip-etag');
    assert.ok(etag);
    assert.equal(busy.headers.get('expires'), '600');
    const second = await inbox.next();
    assert.equal(shown(second).activities, '<rpid:busy/>');
    assert.equal(shown(second).note, 'In a meeting until 3');

    const away = await publish(bob, 'bob', pidf('bob', '<rpid:away/>', ''), { 'SIP-If-Match': etag });
    assert.equal(away.status, 200);
    assert.notEqual(away.headers.get('sip-etag'), etag);
    const third = await inbox.next();
    assert.deepEqual([shown(third).basic, shown(third).activities, shown(third).note], ['open', '<rpid:away/>', '']);

    await bob.unregister();
    const fourth = await inbox.next();
    assert.equal(shown(fourth).basic, 'closed');
    assert.match(shown(fourth).subscriptionState, /^active;/);
    assert.deepEqual([first, second, third, fourth].map(cseqOf), [1, 2, 3, 4].map((n) => n + cseqOf(first) - 1));

    // Unsubscribe (RFC 6665 §4.1.2.3): Expires: 0 in the dialog ends it with a final NOTIFY.
    const bye = await alice.request('SUBSCRIBE', `sip:bob@${DOMAIN}`, {
      contact: true, callId: sub.headers.get('call-id'), to: sub.headers.get('to'), fromTag: /tag=([^;>]+)/.exec(sub.headers.get('from') ?? '')?.[1], cseq: 10,
      headers: { Event: 'presence', Expires: '0' },
    });
    assert.equal(bye.status, 200);
    assert.equal(shown(await inbox.next()).subscriptionState, 'terminated;reason=timeout');
    // Nothing more arrives after the subscription ended.
    await bob.register({ expires: 300 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inbox.queued, 0);
    await bob.unregister();
  });

  it("aggregates a user's two devices to the most available state", async () => {
    const carol = await people.connect('carol');
    const phone = await people.connect('dave', { over: 'tcp' });
    const laptop = await people.connect('dave', { over: 'ws' });
    const inbox = notifications(carol);
    assert.equal((await subscribe(carol, 'dave', 300)).status, 200);
    assert.equal(shown(await inbox.next()).basic, 'open');

    const p1 = await publish(phone, 'dave', pidf('dave', '<rpid:away/>', 'phone in pocket'));
    assert.equal(p1.status, 200);
    assert.equal(shown(await inbox.next()).activities, '<rpid:away/>');
    const p2 = await publish(laptop, 'dave', pidf('dave', '<rpid:busy/>', 'typing'));
    assert.equal(p2.status, 200);
    const both = shown(await inbox.next());
    assert.deepEqual([both.activities, both.note], ['<rpid:busy/>', 'typing']);
    // The laptop's publication is removed: the phone's Away remains.
    const removed = await publish(laptop, 'dave', undefined, { 'SIP-If-Match': p2.headers.get('sip-etag') ?? '', Expires: '0' });
    assert.equal(removed.status, 200);
    const after = shown(await inbox.next());
    assert.deepEqual([after.activities, after.note], ['<rpid:away/>', 'phone in pocket']);
  });

  it('answers a fetch (Expires: 0) with one NOTIFY that ends the subscription', async () => {
    const carol = await people.connect('carol', { over: 'ws' });
    const inbox = notifications(carol);
    const res = await subscribe(carol, 'alice', 0);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('expires'), '0');
    const only = shown(await inbox.next());
    assert.equal(only.subscriptionState, 'terminated;reason=timeout');
    assert.equal(only.basic, 'open', 'alice is still registered from the first test');
  });
  it('ends a subscription whose NOTIFY is answered 481: no more NOTIFYs, a refresh gets 481', async () => {
    const carol = await people.connect('carol');
    const alice = await people.connect('alice', { over: 'ws' });
    const received: SipRequest[] = [];
    carol.on('request', (request) => {
      received.push(request);
      carol.respond(request, 481);
    });
    const sub = await subscribe(carol, 'alice', 600);
    assert.equal(sub.status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(received.length, 1);
    assert.equal((await publish(alice, 'alice', pidf('alice', '<rpid:busy/>', ''))).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(received.length, 1, 'the subscription ended with the 481');
    const refresh = await carol.request('SUBSCRIBE', `sip:alice@${DOMAIN}`, {
      contact: true, callId: sub.headers.get('call-id'), to: sub.headers.get('to'), fromTag: /tag=([^;>]+)/.exec(sub.headers.get('from') ?? '')?.[1], cseq: 5,
      headers: { Event: 'presence', Expires: '600' },
    });
    assert.equal(refresh.status, 481);
  });
});

describe('presence requests Parley refuses', () => {
  it('answers 489 Bad Event with Allow-Events for an unknown package', async () => {
    const alice = await people.connect('alice');
    const res = await subscribe(alice, 'bob', 600, 'dialog');
    assert.equal(res.status, 489);
    assert.equal(res.headers.getAll('allow-events').join(', '), 'presence, message-summary, vnd-parley-provisioning');
    const pub = await alice.request('PUBLISH', `sip:alice@${DOMAIN}`, { headers: { Event: 'message-summary' }, body: 'x', contentType: 'text/plain' });
    assert.equal(pub.status, 489);
  });

  it('answers 412 for a PUBLISH with an unknown entity-tag', async () => {
    const bob = await people.connect('bob');
    const res = await publish(bob, 'bob', undefined, { 'SIP-If-Match': 'no-such-etag' });
    assert.equal(res.status, 412);
  });

  it('answers 400 with a Warning for a bad PIDF, 415 with Accept for another type', async () => {
    const bob = await people.connect('bob');
    const broken = await publish(bob, 'bob', '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@parley.test"><tuple id="t"><status><basic>maybe</basic></status></tuple></presence>');
    assert.equal(broken.status, 400);
    assert.match(broken.headers.get('warning') ?? '', /not open or closed/);
    const malformed = await publish(bob, 'bob', '<presence');
    assert.equal(malformed.status, 400);
    const other = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: { Event: 'presence' }, body: 'busy', contentType: 'text/plain' });
    assert.equal(other.status, 415);
    assert.equal(other.headers.get('accept'), PIDF);
  });

  it("refuses to publish someone else's presence, a foreign domain, and too brief an interval", async () => {
    const bob = await people.connect('bob');
    assert.equal((await publish(bob, 'alice', pidf('alice', '', ''))).status, 403);
    const foreign = await bob.request('SUBSCRIBE', 'sip:someone@elsewhere.example', { contact: true, headers: { Event: 'presence' } });
    assert.equal(foreign.status, 403);
    const brief = await subscribe(bob, 'alice', 5);
    assert.equal(brief.status, 423);
    assert.equal(brief.headers.get('min-expires'), '60');
    assert.equal((await subscribe(bob, 'nobody', 600)).status, 404);
  });
});
