// The subscriber side of RFC 6665 in the SDK (src/client/subscription.ts and its wiring in the user
// agent) over an in-memory transport: the test plays the notifier, reading what the UA writes and
// scripting SUBSCRIBE answers and NOTIFYs, as a raw-wire transcript.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import type { MessageSummary, ProvisioningSettings, SubscriptionNotify, SubscriptionTermination } from '../../src/client/index.ts';
import { ClientError } from '../../src/client/errors.ts';
import { parseCSeq, parseNameAddr } from '../../src/sip/index.ts';
import type { SipMessage, SipRequest } from '../../src/sip/message.ts';
import { AOR, fakeServerClients, NOTIFIER_CONTACT, PROVISIONING, verify, type FakeSipServer } from './fake-sip-server.ts';

const { start, closeAll } = fakeServerClients({ requestTimeoutMs: 2000 }, { toTag: 'srv1' });

/** Answers the next SUBSCRIBE (through a challenge when it has no credentials) with 200 and Expires. */
async function serveSubscribe(peer: FakeSipServer, expires: number, headers: Record<string, string> = {}, toTag = 'srv1'): Promise<SipRequest> {
  const request = await peer.nextAuthenticated('SUBSCRIBE');
  peer.reply(request, 200, { expires: String(expires), contact: NOTIFIER_CONTACT, ...headers }, toTag);
  return request;
}

const cseqOf = (m: SipMessage) => parseCSeq(m.headers.get('cseq') ?? '').seq;
const tagOf = (value: string | undefined) => parseNameAddr(value ?? '').params.get('tag');

function collect<T>(): { items: T[]; push: (item: T) => void } {
  const items: T[] = [];
  return { items, push: (item) => items.push(item) };
}

afterEach(closeAll);

describe('ClientSubscription: establishing (RFC 6665 §4.1.2.1)', () => {
  it('subscribes to the own AOR through a digest challenge, with Event, Expires, Accept and Contact', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 600, accept: 'application/simple-message-summary' });
    const active = collect<number>();
    sub.on('active', (r) => active.push(r.expires));
    const first = await peer.nextRequest('SUBSCRIBE');
    assert.equal(first.uri, AOR);
    assert.equal(first.headers.get('event'), 'message-summary');
    assert.equal(first.headers.get('expires'), '600');
    assert.equal(first.headers.get('accept'), 'application/simple-message-summary');
    assert.equal(first.headers.get('contact'), '<sip:alice@192.0.2.7:50123;transport=tcp>');
    assert.equal(first.headers.get('to'), `<${AOR}>`);
    peer.challenge(first);
    const second = await peer.nextRequest('SUBSCRIBE');
    assert.equal(second.headers.get('call-id'), first.headers.get('call-id'));
    assert.equal(tagOf(second.headers.get('from')), tagOf(first.headers.get('from')));
    assert.equal(cseqOf(second), cseqOf(first) + 1);
    assert.equal(verify(second).ok, true);
    peer.reply(second, 200, { expires: '300', contact: NOTIFIER_CONTACT });
    const result = await sub.ready;
    assert.equal(result.status, 200);
    assert.equal(result.expires, 300, 'the notifier may shorten the duration');
    assert.equal(sub.state, 'active');
    assert.deepEqual(active.items, [300]);
  });

  it('retries a 423 with Min-Expires', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 10 });
    const first = await peer.nextRequest('SUBSCRIBE');
    peer.reply(first, 423, { 'min-expires': '120' });
    const second = await peer.nextRequest('SUBSCRIBE');
    assert.equal(second.headers.get('expires'), '120');
    peer.reply(second, 200, { expires: '120' });
    assert.equal((await sub.ready).expires, 120);
  });

  it('rejects ready with SUBSCRIBE_FAILED and the status, and ends without a retry', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('vnd-parley-provisioning');
    const ends = collect<SubscriptionTermination>();
    sub.on('terminated', ends.push);
    peer.reply(await peer.nextRequest('SUBSCRIBE'), 489, { 'allow-events': 'presence' });
    await assert.rejects(sub.ready, (e: unknown) => e instanceof ClientError && e.code === 'SUBSCRIBE_FAILED' && e.status === 489);
    assert.equal(sub.state, 'terminated');
    assert.equal(ends.items.length, 1);
    assert.equal(ends.items[0]?.reason, 'failed');
    assert.equal(ends.items[0]?.retrying, false);
    await peer.silent(50);
  });

  it('subscribes to another target when asked', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('presence', { target: 'sip:bob@parley.local', accept: ['application/pidf+xml', 'application/xpidf+xml'] });
    const request = await peer.nextRequest('SUBSCRIBE');
    assert.equal(request.uri, 'sip:bob@parley.local');
    assert.equal(request.headers.get('to'), '<sip:bob@parley.local>');
    assert.deepEqual(request.headers.getAll('accept'), ['application/pidf+xml', 'application/xpidf+xml']);
    peer.reply(request, 200, { expires: '60' });
    await sub.ready;
  });
});

describe('ClientSubscription: NOTIFY (RFC 6665 §4.1.3)', () => {
  it('answers NOTIFYs of the dialog with 200 and emits them', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary');
    const notes = collect<SubscriptionNotify>();
    sub.on('notify', notes.push);
    const request = await serveSubscribe(peer, 600);
    await sub.ready;
    peer.notify(request, 'active;expires=599', { body: 'Messages-Waiting: no\r\n', contentType: 'application/simple-message-summary' });
    const answer = await peer.nextResponse();
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('cseq'), `1 NOTIFY`);
    assert.equal(notes.items.length, 1);
    assert.deepEqual(notes.items[0]?.subscriptionState, { state: 'active', expires: 599 });
    assert.equal(notes.items[0]?.contentType, 'application/simple-message-summary');
    assert.equal(notes.items[0]?.body, 'Messages-Waiting: no\r\n');
    assert.equal(sub.lastNotify, notes.items[0]);
  });

  it('takes a NOTIFY that overtakes the 2xx (§4.1.2.4) and then uses its dialog', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 2 });
    const notes = collect<SubscriptionNotify>();
    sub.on('notify', notes.push);
    let request = await peer.nextRequest('SUBSCRIBE');
    peer.challenge(request);
    request = await peer.nextRequest('SUBSCRIBE');
    peer.notify(request, 'pending', { toTag: 'early' });
    assert.equal((await peer.nextResponse()).status, 200);
    assert.equal(notes.items[0]?.subscriptionState.state, 'pending');
    peer.reply(request, 200, { expires: '2' }, 'early');
    await sub.ready;
    const refresh = await peer.nextRequest('SUBSCRIBE', 3000);
    assert.equal(tagOf(refresh.headers.get('to')), 'early');
    assert.equal(refresh.uri, 'sip:10.0.0.1:5060;transport=tcp', 'the NOTIFY Contact is the remote target');
    peer.reply(refresh, 200, { expires: '600' }, 'early');
  });

  it('answers 481 to a NOTIFY of no dialog, and 489 to one with another Event', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary');
    const request = await serveSubscribe(peer, 600);
    await sub.ready;
    peer.notify(request, 'active', { callId: 'someone-else' });
    assert.equal((await peer.nextResponse()).status, 481);
    peer.notify(request, 'active', { toTag: 'other-dialog' });
    assert.equal((await peer.nextResponse()).status, 481);
    peer.notify(request, 'active', { event: 'presence' });
    assert.equal((await peer.nextResponse()).status, 489);
  });

  it('leaves a NOTIFY of no subscription to request listeners when there are any', async () => {
    const { ua, peer } = await start();
    const seen: string[] = [];
    ua.on('request', (request) => {
      seen.push(request.method);
      ua.respond(request, 200);
    });
    const sub = ua.subscribe('message-summary');
    const request = await serveSubscribe(peer, 600);
    await sub.ready;
    peer.notify(request, 'active', { callId: 'app-owned' });
    assert.equal((await peer.nextResponse()).status, 200);
    peer.notify(request, 'active');
    assert.equal((await peer.nextResponse()).status, 200);
    assert.deepEqual(seen, ['NOTIFY'], 'only the unmatched NOTIFY reached the listener');
  });
});

describe('ClientSubscription: refresh and end', () => {
  it('refreshes in the dialog before expiry: same Call-ID and tags, next CSeq, Route from Record-Route', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 2 });
    const active = collect<number>();
    sub.on('active', (r) => active.push(r.expires));
    const request = await serveSubscribe(peer, 2, { 'record-route': '<sip:p1.example;lr>, <sip:p2.example;lr>' });
    await sub.ready;
    const refresh = await peer.nextRequest('SUBSCRIBE', 3000);
    assert.equal(refresh.uri, 'sip:10.0.0.1:5060;transport=tcp');
    assert.equal(refresh.headers.get('call-id'), request.headers.get('call-id'));
    assert.equal(tagOf(refresh.headers.get('from')), tagOf(request.headers.get('from')));
    assert.equal(tagOf(refresh.headers.get('to')), 'srv1');
    assert.equal(cseqOf(refresh), cseqOf(request) + 1);
    assert.deepEqual(refresh.headers.getAll('route'), ['<sip:p2.example;lr>', '<sip:p1.example;lr>']);
    assert.ok(refresh.headers.has('authorization'), 'credentials sent up front after the first challenge');
    peer.reply(refresh, 200, { expires: '600' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(active.items, [2, 600]);
  });

  it('refreshes earlier when a NOTIFY shortens the subscription', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 600 });
    const request = await serveSubscribe(peer, 600);
    await sub.ready;
    peer.notify(request, 'active;expires=2');
    await peer.nextResponse();
    const refresh = await peer.nextRequest('SUBSCRIBE', 3000);
    assert.equal(refresh.headers.get('expires'), '600');
    peer.reply(refresh, 200, { expires: '600' });
  });

  it('after terminated;reason=deactivated subscribes again once, in a new dialog', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { retryDelayMs: 10 });
    const ends = collect<SubscriptionTermination>();
    sub.on('terminated', ends.push);
    const first = await serveSubscribe(peer, 600);
    await sub.ready;
    peer.notify(first, 'terminated;reason=deactivated');
    assert.equal((await peer.nextResponse()).status, 200);
    assert.deepEqual(ends.items, [{ reason: 'deactivated', retrying: true }]);
    assert.equal(sub.state, 'subscribing');
    const again = await peer.nextRequest('SUBSCRIBE');
    assert.notEqual(again.headers.get('call-id'), first.headers.get('call-id'));
    assert.equal(tagOf(again.headers.get('to')), undefined, 'out of dialog');
    peer.reply(again, 200, { expires: '600' }, 'srv2');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sub.state, 'active');
    // the old dialog is gone
    peer.notify(first, 'active');
    assert.equal((await peer.nextResponse()).status, 481);
    // a second deactivation soon after: no more retries
    peer.notify(again, 'terminated;reason=timeout', { toTag: 'srv2' });
    assert.equal((await peer.nextResponse()).status, 200);
    assert.deepEqual(ends.items[1], { reason: 'timeout', retrying: false });
    assert.equal(sub.state, 'terminated');
    await peer.silent(50);
  });

  it('does not subscribe again after rejected or noresource', async () => {
    for (const reason of ['rejected', 'noresource']) {
      const { ua, peer } = await start();
      const sub = ua.subscribe('message-summary', { retryDelayMs: 10 });
      const ends = collect<SubscriptionTermination>();
      sub.on('terminated', ends.push);
      const request = await serveSubscribe(peer, 600);
      await sub.ready;
      peer.notify(request, `terminated;reason=${reason};retry-after=1`);
      await peer.nextResponse();
      assert.deepEqual(ends.items, [{ reason, retryAfter: 1, retrying: false }]);
      await peer.silent(50);
      peer.notify(request, 'active');
      assert.equal((await peer.nextResponse()).status, 481, 'the dialog is forgotten');
    }
  });

  it('close() unsubscribes with Expires: 0 in the dialog and answers the final NOTIFY with 200', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary');
    const ends = collect<SubscriptionTermination>();
    sub.on('terminated', ends.push);
    const request = await serveSubscribe(peer, 600);
    await sub.ready;
    const closing = sub.close();
    const bye = await peer.nextRequest('SUBSCRIBE');
    assert.equal(bye.headers.get('expires'), '0');
    assert.equal(bye.headers.get('call-id'), request.headers.get('call-id'));
    assert.equal(tagOf(bye.headers.get('to')), 'srv1');
    peer.reply(bye, 200, { expires: '0' });
    await closing;
    assert.deepEqual(ends.items, [{ reason: 'closed', retrying: false }]);
    peer.notify(request, 'terminated;reason=timeout');
    assert.equal((await peer.nextResponse()).status, 200);
    peer.notify(request, 'active');
    assert.equal((await peer.nextResponse()).status, 481, 'forgotten after the final NOTIFY');
    await sub.close(); // idempotent
    await peer.silent(30);
  });

  it('a refresh answered 481 ends the dialog and subscribes again once', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary', { expires: 2, retryDelayMs: 10 });
    const ends = collect<SubscriptionTermination>();
    sub.on('terminated', ends.push);
    await serveSubscribe(peer, 2);
    await sub.ready;
    const refresh = await peer.nextRequest('SUBSCRIBE', 3000);
    peer.reply(refresh, 481);
    const again = await peer.nextRequest('SUBSCRIBE');
    assert.notEqual(again.headers.get('call-id'), refresh.headers.get('call-id'));
    assert.equal(ends.items[0]?.reason, 'failed');
    assert.equal(ends.items[0]?.error?.status, 481);
    assert.equal(ends.items[0]?.retrying, true);
    peer.reply(again, 200, { expires: '600' });
  });

  it('ends every subscription when the connection closes', async () => {
    const { ua, peer } = await start();
    const sub = ua.subscribe('message-summary');
    const ends = collect<SubscriptionTermination>();
    sub.on('terminated', ends.push);
    await serveSubscribe(peer, 600);
    await sub.ready;
    peer.drop();
    assert.equal(sub.state, 'terminated');
    assert.equal(ends.items.length, 1);
    assert.equal(ends.items[0]?.reason, 'disconnected');
    assert.equal(ends.items[0]?.error?.code, 'DISCONNECTED');
  });

  it('needs a connection and a token for an event', async () => {
    const ua = new SipClient({ server: 'tcp://127.0.0.1:5060', aor: AOR, password: 'pw' });
    assert.throws(() => ua.subscribe('message-summary'), (e: unknown) => e instanceof ClientError && e.code === 'NOT_CONNECTED');
    const { ua: connected } = await start();
    assert.throws(() => connected.subscribe('bad event'), (e: unknown) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT');
  });
});

const SUMMARY = 'Messages-Waiting: yes\r\nMessage-Account: sip:alice@parley.local\r\nText-Message: 2/3\r\n';

describe('watchMessageSummary and watchProvisioning', () => {
  it('emits message-summary with the parsed body of each NOTIFY', async () => {
    const { ua, peer } = await start();
    const summaries = collect<MessageSummary>();
    ua.on('message-summary', summaries.push);
    const watching = ua.watchMessageSummary();
    const request = await serveSubscribe(peer, 3600);
    assert.equal(request.headers.get('event'), 'message-summary');
    assert.equal(request.headers.get('accept'), 'application/simple-message-summary');
    const sub = await watching;
    assert.equal(sub.state, 'active');
    peer.notify(request, 'active;expires=3600', { body: SUMMARY, contentType: 'application/simple-message-summary' });
    assert.equal((await peer.nextResponse()).status, 200);
    assert.equal(summaries.items.length, 1);
    assert.equal(summaries.items[0]?.waiting, true);
    assert.equal(summaries.items[0]?.account, 'sip:alice@parley.local');
    assert.deepEqual(summaries.items[0]?.textMessages, { new: 2, old: 3 });
  });

  it('emits provisioning, keeps it for missedConversations, and turns a bad body into an error event', async () => {
    const { ua, peer } = await start();
    const settings = collect<ProvisioningSettings>();
    const errors = collect<Error>();
    ua.on('provisioning', settings.push);
    ua.on('error', errors.push);
    const watching = ua.watchProvisioning();
    const request = await serveSubscribe(peer, 3600);
    assert.equal(request.headers.get('event'), 'vnd-parley-provisioning');
    assert.equal(request.headers.get('accept'), 'application/vnd.parley.provisioning+json');
    await watching;
    const type = 'application/vnd.parley.provisioning+json';
    peer.notify(request, 'active', { body: JSON.stringify(PROVISIONING), contentType: type });
    assert.equal((await peer.nextResponse()).status, 200);
    assert.deepEqual(settings.items, [PROVISIONING]);
    assert.deepEqual(ua.provisioning, PROVISIONING);
    assert.equal(ua.mailbox().ewsUrl, PROVISIONING.ewsUrl);

    peer.notify(request, 'active', { body: '{"EnableOfflineIm":"yes"}', contentType: type });
    assert.equal((await peer.nextResponse()).status, 200, 'a bad body is still answered 200');
    peer.notify(request, 'active', { body: JSON.stringify(PROVISIONING), contentType: 'text/plain' });
    assert.equal((await peer.nextResponse()).status, 200);
    assert.equal(settings.items.length, 1);
    assert.equal(errors.items.length, 2);
    assert.ok(errors.items.every((e) => e instanceof ClientError && e.code === 'INVALID_BODY'));
  });

  it('rejects when the notifier refuses, and without an EWS URL missedConversations says so', async () => {
    const { ua, peer } = await start();
    const watching = ua.watchMessageSummary();
    peer.reply(await peer.nextRequest('SUBSCRIBE'), 403);
    await assert.rejects(watching, (e: unknown) => e instanceof ClientError && e.code === 'SUBSCRIBE_FAILED' && e.status === 403);
    await assert.rejects(ua.missedConversations(), (e: unknown) => e instanceof ClientError && e.code === 'NO_EWS_URL');
  });
});
