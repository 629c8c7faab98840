// The list server's back-end subscriptions to partners' users (issue 15): the state machine of one
// (remote-subscription.ts) and the watcher of all (remote.ts), driven by hand — a fake `send`
// that keeps each SUBSCRIBE until the test answers it, ManualTimers, no sockets.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ManualTimers } from '../../src/events/timers.ts';
import { buildListDocument } from '../../src/presence/lists.ts';
import { buildPidf, parsePidf } from '../../src/presence/pidf.ts';
import { RemoteWatcher } from '../../src/presence/remote.ts';
import { BACKOFF_BASE_MS, REJECTED_RETRY_MS, RemoteSubscription } from '../../src/presence/remote-subscription.ts';
import type { PartnerOutcome } from '../../src/router/partner.ts';
import { createRequest, createResponse, Headers, parseNameAddr } from '../../src/sip/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';

const logger = pino({ level: 'silent' });
const ALICE = 'alice@org-a.test';
const DAVE = 'dave@org-b.test';
const SENT_BY = 'sip.org-a.test:5061';

interface Sent {
  request: SipRequest;
  domain: string;
  answer(outcome: PartnerOutcome): void;
}

function link() {
  const sent: Sent[] = [];
  return {
    sent,
    send: (request: SipRequest, domain: string) => new Promise<PartnerOutcome>((resolve) => sent.push({ request, domain, answer: resolve })),
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The notifier's 2xx: its tag, Expires, Contact and the proxies' Record-Route. */
function accepted(request: SipRequest, opts: { status?: number; expires?: number; recordRoute?: string[] } = {}): PartnerOutcome {
  const response = createResponse(request, opts.status ?? 200);
  const to = request.headers.get('to') ?? '';
  response.headers.set('to', /;tag=/.test(to) ? to : `${to};tag=notifier1`);
  response.headers.append('expires', String(opts.expires ?? 600));
  response.headers.append('contact', '<sip:notifier@10.0.0.2:5061;transport=tls>');
  for (const rr of opts.recordRoute ?? []) response.headers.append('record-route', rr);
  return { kind: 'answered', response };
}

function refused(request: SipRequest, status: number): PartnerOutcome {
  return { kind: 'answered', response: createResponse(request, status) };
}

function tagOf(value: string | undefined): string {
  return parseNameAddr(value ?? '').params.get('tag') ?? '';
}

/** A NOTIFY of the dialog `subscribe` made, as the partner sends it. */
function notifyFor(subscribe: SipRequest, state: string, presence?: { state: 'Available' | 'Busy' | 'Away' | 'Offline'; note?: string }, fromTag = 'notifier1'): SipRequest {
  const headers = new Headers();
  headers.append('via', 'SIP/2.0/TLS sip.org-b.test:5061;branch=z9hG4bKn1');
  headers.append('from', `<sip:${DAVE}>;tag=${fromTag}`);
  headers.append('to', subscribe.headers.get('from') ?? '');
  headers.append('call-id', subscribe.headers.get('call-id') ?? '');
  headers.append('cseq', '1 NOTIFY');
  headers.append('event', 'presence');
  headers.append('subscription-state', state);
  headers.append('contact', '<sip:notifier@10.0.0.2:5061;transport=tls>');
  let body = Buffer.alloc(0);
  if (presence !== undefined) {
    headers.append('content-type', 'application/pidf+xml');
    body = Buffer.from(buildPidf(`sip:${DAVE}`, { state: presence.state, note: presence.note ?? '' }));
  }
  return createRequest('NOTIFY', `sip:${SENT_BY};transport=tls`, headers, body);
}

function machine(timers: ManualTimers, fake: ReturnType<typeof link>) {
  const events = { changes: 0, ended: 0 };
  const sub = new RemoteSubscription(ALICE, DAVE, {
    timers,
    logger,
    product: 'Parley/test',
    sentBy: () => SENT_BY,
    send: fake.send,
    onChange: () => void events.changes++,
    onEnded: () => void events.ended++,
  });
  return { sub, events };
}

describe('remote subscription (Parley subscribes to a partner\'s user for a contact list)', () => {
  it('subscribes as the owner, shows pending until the first NOTIFY, then the partner\'s state', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub, events } = machine(timers, fake);
    sub.start();
    assert.equal(sub.state, 'subscribing');
    const first = fake.sent[0];
    assert.ok(first);
    assert.equal(first.domain, 'org-b.test');
    assert.equal(first.request.method, 'SUBSCRIBE');
    assert.equal(first.request.uri, `sip:${DAVE}`);
    assert.match(first.request.headers.get('from') ?? '', new RegExp(`^<sip:${ALICE}>;tag=\\w+$`));
    assert.equal(first.request.headers.get('to'), `<sip:${DAVE}>`);
    assert.equal(first.request.headers.get('event'), 'presence');
    assert.equal(first.request.headers.get('accept'), 'application/pidf+xml');
    assert.equal(first.request.headers.get('expires'), '3600');
    assert.equal(first.request.headers.get('contact'), `<sip:${SENT_BY};transport=tls>`);
    assert.deepEqual(sub.view, { instance: 'pending' });

    first.answer(accepted(first.request));
    await settle();
    assert.equal(sub.state, 'active');
    assert.deepEqual(sub.view, { instance: 'pending' });

    assert.deepEqual(sub.notify(notifyFor(first.request, 'active;expires=600', { state: 'Busy', note: 'in a meeting' })), { status: 200 });
    assert.deepEqual(sub.view, { instance: 'active', presence: { state: 'Busy', note: 'in a meeting' } });
    assert.equal(events.changes, 1);
    // the same state again changes nothing the list shows
    sub.notify(notifyFor(first.request, 'active;expires=600', { state: 'Busy', note: 'in a meeting' }));
    assert.equal(events.changes, 1);
  });

  it('a NOTIFY may come before the 2xx; another notifier tag of the same Call-ID is not this dialog', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    const first = fake.sent[0]!;
    assert.deepEqual(sub.notify(notifyFor(first.request, 'active', { state: 'Away' })), { status: 200 });
    assert.equal(sub.view.presence?.state, 'Away');
    assert.equal(sub.notify(notifyFor(first.request, 'active', { state: 'Busy' }, 'other-fork')).status, 481);
    assert.equal(sub.view.presence?.state, 'Away');
    first.answer(accepted(first.request));
    await settle();
    assert.equal(sub.state, 'active');
  });

  it('refreshes within the dialog at 80% of the granted Expires, along the route set', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    const first = fake.sent[0]!;
    first.answer(accepted(first.request, { expires: 600, recordRoute: ['<sip:p1.org-b.test;lr>', '<sip:p2.org-b.test;lr>'] }));
    await settle();
    timers.advance(479_000);
    assert.equal(fake.sent.length, 1);
    timers.advance(1_000);
    const refresh = fake.sent[1];
    assert.ok(refresh, 'a refresh went out at 480 s');
    assert.equal(refresh.request.uri, 'sip:notifier@10.0.0.2:5061;transport=tls');
    assert.deepEqual(refresh.request.headers.getAll('route'), ['<sip:p2.org-b.test;lr>', '<sip:p1.org-b.test;lr>']);
    assert.equal(refresh.request.headers.get('call-id'), first.request.headers.get('call-id'));
    assert.equal(tagOf(refresh.request.headers.get('to')), 'notifier1');
    assert.equal(tagOf(refresh.request.headers.get('from')), tagOf(first.request.headers.get('from')));
    assert.equal(refresh.request.headers.get('cseq'), '2 SUBSCRIBE');
    refresh.answer(accepted(refresh.request, { expires: 600 }));
    await settle();
    assert.equal(sub.state, 'active');
    timers.advance(480_000);
    assert.equal(fake.sent.length, 3, 'and again 480 s later');
  });

  it('a refresh answered 481 (the partner lost the dialog): pending, then a new dialog after the backoff', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    const first = fake.sent[0]!;
    first.answer(accepted(first.request, { expires: 100 }));
    await settle();
    sub.notify(notifyFor(first.request, 'active', { state: 'Available' }));
    timers.advance(80_000);
    const refresh = fake.sent[1]!;
    refresh.answer(refused(refresh.request, 481));
    await settle();
    assert.equal(sub.state, 'waiting');
    assert.deepEqual(sub.view, { instance: 'pending' });
    timers.advance(BACKOFF_BASE_MS - 1);
    assert.equal(fake.sent.length, 2);
    timers.advance(1);
    const again = fake.sent[2];
    assert.ok(again, 'subscribed anew after the backoff');
    assert.notEqual(again.request.headers.get('call-id'), first.request.headers.get('call-id'));
    assert.equal(again.request.headers.get('to'), `<sip:${DAVE}>`);
    // an old dialog's NOTIFY is no longer taken
    assert.equal(sub.matches(first.request.headers.get('call-id')!, tagOf(first.request.headers.get('from'))), false);
  });

  it('the backoff doubles while the partner cannot be reached', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    fake.sent[0]!.answer({ kind: 'unreachable', status: 503, warning: 'no route' });
    await settle();
    assert.equal(sub.state, 'waiting');
    timers.advance(BACKOFF_BASE_MS);
    fake.sent[1]!.answer({ kind: 'unreachable', status: 408, warning: 'timeout' });
    await settle();
    timers.advance(BACKOFF_BASE_MS * 2 - 1);
    assert.equal(fake.sent.length, 2);
    timers.advance(1);
    assert.equal(fake.sent.length, 3);
  });

  it('NOTIFY terminated;reason=deactivated: subscribes again at once (RFC 6665 §4.1.3)', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    const first = fake.sent[0]!;
    first.answer(accepted(first.request));
    await settle();
    assert.deepEqual(sub.notify(notifyFor(first.request, 'terminated;reason=deactivated')), { status: 200 });
    assert.equal(sub.state, 'waiting');
    timers.advance(0);
    assert.equal(fake.sent.length, 2);
    assert.equal(sub.state, 'subscribing');
  });

  it('refused (403 or terminated;reason=rejected): shown terminated, not tried again for an hour', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub } = machine(timers, fake);
    sub.start();
    fake.sent[0]!.answer(refused(fake.sent[0]!.request, 403));
    await settle();
    assert.equal(sub.state, 'rejected');
    assert.deepEqual(sub.view, { instance: 'terminated', reason: 'rejected' });
    timers.advance(REJECTED_RETRY_MS - 1);
    assert.equal(fake.sent.length, 1);
    timers.advance(1);
    const second = fake.sent[1]!;
    second.answer(accepted(second.request));
    await settle();
    sub.notify(notifyFor(second.request, 'terminated;reason=noresource'));
    assert.deepEqual(sub.view, { instance: 'terminated', reason: 'noresource' });
  });

  it('end(): unsubscribes within the dialog (Expires: 0) and ends with the final NOTIFY', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub, events } = machine(timers, fake);
    sub.start();
    const first = fake.sent[0]!;
    first.answer(accepted(first.request));
    await settle();
    sub.end();
    assert.equal(sub.state, 'ending');
    const unsubscribe = fake.sent[1]!;
    assert.equal(unsubscribe.request.headers.get('expires'), '0');
    assert.equal(unsubscribe.request.headers.get('call-id'), first.request.headers.get('call-id'));
    unsubscribe.answer(accepted(unsubscribe.request, { expires: 0 }));
    await settle();
    assert.equal(events.ended, 0);
    assert.deepEqual(sub.notify(notifyFor(first.request, 'terminated;reason=timeout')), { status: 200 });
    assert.equal(sub.state, 'ended');
    assert.equal(events.ended, 1);
    timers.advance(REJECTED_RETRY_MS);
    assert.equal(fake.sent.length, 2, 'nothing more is sent');
  });

  it('end() while the SUBSCRIBE is out: an accepted one is undone at once; a refused one just ends', async () => {
    const timers = new ManualTimers();
    const fake = link();
    const { sub, events } = machine(timers, fake);
    sub.start();
    sub.end();
    assert.equal(sub.state, 'ending');
    fake.sent[0]!.answer(accepted(fake.sent[0]!.request));
    await settle();
    assert.equal(fake.sent[1]?.request.headers.get('expires'), '0');
    fake.sent[1]!.answer(refused(fake.sent[1]!.request, 481));
    await settle();
    assert.equal(events.ended, 1);

    const other = machine(timers, fake);
    other.sub.start();
    other.sub.end();
    fake.sent[2]!.answer(refused(fake.sent[2]!.request, 403));
    await settle();
    assert.equal(other.sub.state, 'ended');
    assert.equal(fake.sent.length, 3);
  });
});

describe('remote watcher (the back-end subscriptions of every contact list)', () => {
  function watcher(state: { watched: Set<string>; members: Map<string, string[]>; refused: Set<string> }) {
    const timers = new ManualTimers();
    const fake = link();
    const changed: string[] = [];
    const w = new RemoteWatcher({
      timers,
      logger,
      product: 'Parley/test',
      sentBy: () => SENT_BY,
      send: fake.send,
      refusal: (owner, domain) => (state.refused.has(`${owner} ${domain}`) ? { code: 'DOMAIN_BLOCKED', warning: `${domain} is blocked` } : null),
      watched: (owner) => state.watched.has(owner),
      remoteMembers: async (owner) => state.members.get(owner) ?? [],
      changed: (owner) => void changed.push(owner),
      sweepMs: 30_000,
    });
    return { w, timers, fake, changed };
  }

  it('subscribes only while the owner watches the list, for members the decision allows, and ends when a member leaves', async () => {
    const state = { watched: new Set<string>(), members: new Map([[ALICE, [DAVE, 'erin@org-c.test']]]), refused: new Set([`${ALICE} org-c.test`]) };
    const { w, fake } = watcher(state);
    await w.sync(ALICE);
    assert.equal(fake.sent.length, 0, 'no list subscription: no back-end subscription');
    state.watched.add(ALICE);
    await w.sync(ALICE);
    assert.deepEqual(fake.sent.map((s) => s.request.uri), [`sip:${DAVE}`]);
    assert.deepEqual(await w.view(ALICE, 'erin@org-c.test'), { instance: 'terminated', reason: 'rejected' });
    assert.deepEqual(await w.view(ALICE, DAVE), { instance: 'pending' });
    await w.sync(ALICE);
    assert.equal(fake.sent.length, 1, 'one per owner and member');
    fake.sent[0]!.answer(accepted(fake.sent[0]!.request));
    await settle();
    state.members.set(ALICE, ['erin@org-c.test']);
    await w.sync(ALICE);
    assert.equal(fake.sent[1]?.request.headers.get('expires'), '0', 'dave left the list: unsubscribed');
  });

  it('a NOTIFY finds only its own dialog: one owner\'s partner state never reaches another owner\'s list', async () => {
    const BOB = 'bob@org-a.test';
    const state = { watched: new Set([ALICE, BOB]), members: new Map([[ALICE, [DAVE]], [BOB, [DAVE]]]), refused: new Set<string>() };
    const { w, fake, changed } = watcher(state);
    await Promise.all([w.sync(ALICE), w.sync(BOB)]);
    const [forAlice, forBob] = fake.sent;
    assert.ok(forAlice && forBob);
    forAlice.answer(accepted(forAlice.request));
    forBob.answer(accepted(forBob.request));
    await settle();
    const notify = notifyFor(forAlice.request, 'active', { state: 'Busy' });
    const sub = w.find(notify);
    assert.equal(sub?.owner, ALICE);
    sub.notify(notify);
    assert.deepEqual(changed, [ALICE]);
    assert.equal((await w.view(ALICE, DAVE)).presence?.state, 'Busy');
    assert.deepEqual(await w.view(BOB, DAVE), { instance: 'pending' });
    // alice's Call-ID with another tag, or bob's tag with alice's Call-ID: nobody's
    const forged = notifyFor(forAlice.request, 'active', { state: 'Away' });
    forged.headers.set('to', forBob.request.headers.get('from') ?? '');
    assert.equal(w.find(forged), undefined);
  });

  it('the sweep ends the subscriptions of an owner who no longer watches the list, or whose decision changed', async () => {
    const state = { watched: new Set([ALICE]), members: new Map([[ALICE, [DAVE]]]), refused: new Set<string>() };
    const { w, fake, timers } = watcher(state);
    await w.sync(ALICE);
    fake.sent[0]!.answer(accepted(fake.sent[0]!.request));
    await settle();
    state.refused.add(`${ALICE} org-b.test`);
    timers.advance(30_000);
    await settle();
    assert.equal(fake.sent[1]?.request.headers.get('expires'), '0');
    assert.deepEqual(await w.view(ALICE, DAVE), { instance: 'terminated', reason: 'rejected' });
  });
});

describe('RLMI with partners\' users (RFC 4662 §5.2)', () => {
  it('a member without state yet is a pending instance without a part; a refused one terminated with its reason', () => {
    const doc = buildListDocument({
      listUri: 'sip:alice+contacts@org-a.test',
      domain: 'org-a.test',
      version: 0,
      seed: 's1',
      members: [
        { uri: 'sip:bob@org-a.test', name: 'Bob', pidf: buildPidf('sip:bob@org-a.test', { state: 'Available', note: '' }) },
        { uri: `sip:${DAVE}`, name: null, pidf: null, instance: 'pending' },
        { uri: 'sip:erin@org-c.test', name: null, pidf: null, instance: 'terminated', reason: 'rejected' },
      ],
    });
    assert.match(doc.body, /<resource uri="sip:dave@org-b.test">\r\n {4}<instance id="\w+" state="pending"\/>/);
    assert.match(doc.body, /<instance id="\w+" state="terminated" reason="rejected"\/>/);
    assert.equal(doc.body.match(/Content-Type: application\/pidf\+xml/g)?.length, 1, 'one PIDF part: bob\'s');
    assert.equal(parsePidf(buildPidf(`sip:${DAVE}`, { state: 'Busy', note: '' }), `sip:${DAVE}`).state, 'Busy');
  });
});
