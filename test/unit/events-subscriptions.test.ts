// The RFC 6665 machinery without a server: the subscription state machine, the store and its
// expiry timers, and the notifier (one NOTIFY in flight per dialog, body-change suppression).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Notifier } from '../../src/events/notifier.ts';
import type { EventDocument } from '../../src/events/notifier.ts';
import { Subscription, SubscriptionStore } from '../../src/events/subscriptions.ts';
import { ManualTimers, repeat } from '../../src/events/timers.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage } from '../../src/sip/index.ts';

const logger = pino({ level: 'silent' });
const FLOW_REF = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };

function flow(closed = false): Flow {
  return { ...FLOW_REF, reliable: true, closed, send: () => true };
}

function subscription(expiresAt = 600_000 + 1_000_000, pkg = 'presence', resource = 'bob@parley.test', callId = 'c1'): Subscription {
  return new Subscription({
    watcher: 'alice@parley.test',
    package: pkg,
    resource,
    event: pkg,
    flow: FLOW_REF,
    expiresAt,
    dialog: {
      callId, localTag: 'srv', remoteTag: 'cli',
      localHeader: `<sip:${resource}>;tag=srv`, remoteHeader: '<sip:alice@parley.test>;tag=cli',
      remoteTarget: 'sip:alice@127.0.0.1:40000;transport=tcp', routeSet: [], remoteCSeq: 1,
    },
  });
}

/** A transaction layer that records what it was asked to send; the test answers. */
function fakeTransactions() {
  const sent: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
  return {
    sent,
    sendRequest(request: SipRequest, _flow: Flow, user: ClientTransactionUser) {
      sent.push({ request, user });
      return undefined as never;
    },
    answer(i: number, status: number) {
      sent[i]!.user.onFinal(createResponseMessage(status, 'x') as SipResponse);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('subscription state machine (RFC 6665)', () => {
  it('goes active → terminating → terminated and refuses other transitions', () => {
    const sub = subscription(1_000_000 + 300_000);
    assert.equal(sub.state, 'active');
    assert.equal(sub.subscriptionState(1_000_000), 'active;expires=300');
    sub.refresh(1_000_000 + 600_000, 2, undefined, FLOW_REF);
    assert.equal(sub.subscriptionState(1_000_000), 'active;expires=600');
    sub.terminate('timeout');
    assert.equal(sub.state, 'terminating');
    assert.equal(sub.subscriptionState(1_000_000), 'terminated;reason=timeout');
    assert.throws(() => sub.refresh(0, 3, undefined, FLOW_REF), /presence subscription .* cannot refresh when terminating/);
    assert.throws(() => sub.terminate('timeout'), /cannot terminate/);
    sub.end();
    assert.equal(sub.state, 'terminated');
    assert.equal(sub.reason, 'timeout');
    assert.throws(() => sub.end(), /cannot end when terminated/);
    assert.throws(() => sub.refresh(0, 4, undefined, FLOW_REF), /cannot refresh when terminated/);
  });

  it('ends straight from active (a failed NOTIFY), deactivated by default', () => {
    const sub = subscription();
    sub.end();
    assert.equal(sub.subscriptionState(0), 'terminated;reason=deactivated');
  });

  it('fires expiry once, at the (refreshed) expiry time', () => {
    const clock = new ManualTimers();
    const expired: Subscription[] = [];
    const store = new SubscriptionStore({ timers: clock, now: clock.now, onExpire: (s) => expired.push(s) });
    const sub = subscription(clock.now() + 60_000);
    store.add(sub);
    clock.advance(50_000);
    sub.refresh(clock.now() + 60_000, 2, undefined, FLOW_REF);
    store.schedule(sub);
    clock.advance(59_000);
    assert.equal(expired.length, 0);
    clock.advance(1_000);
    assert.deepEqual(expired, [sub]);
    assert.deepEqual(store.watching('presence', 'bob@parley.test'), [sub]);
    store.remove(sub);
    assert.equal(store.size, 0);
  });

  it('keeps packages apart: the same resource in two packages has two sets of watchers', () => {
    const clock = new ManualTimers();
    const store = new SubscriptionStore({ timers: clock, now: clock.now, onExpire: () => {} });
    const presence = subscription(clock.now() + 60_000, 'presence', 'bob@parley.test', 'c1');
    const mwi = subscription(clock.now() + 60_000, 'message-summary', 'bob@parley.test', 'c2');
    store.add(presence);
    store.add(mwi);
    assert.deepEqual(store.watching('presence', 'bob@parley.test'), [presence]);
    assert.deepEqual(store.watching('message-summary', 'bob@parley.test'), [mwi]);
    assert.deepEqual(store.ofPackage('message-summary'), [mwi]);
    mwi.terminate('timeout');
    assert.deepEqual(store.watching('message-summary', 'bob@parley.test'), [], 'only active subscriptions are watching');
    store.close();
    assert.equal(store.size, 0);
  });
});

describe('repeating timer', () => {
  it('runs every interval, goes on after a throw, and stops when cancelled', () => {
    const clock = new ManualTimers();
    const runs: number[] = [];
    const errors: unknown[] = [];
    const cancel = repeat(clock, 1000, () => {
      runs.push(clock.now());
      if (runs.length === 2) throw new Error('second run fails');
    }, (err) => errors.push(err));
    clock.advance(3500);
    assert.deepEqual(runs.map((t) => t - runs[0]!), [0, 1000, 2000]);
    assert.equal(errors.length, 1);
    cancel();
    clock.advance(5000);
    assert.equal(runs.length, 3);
  });

  it('skips the runs that come while an asynchronous run is pending; its rejection goes to onError', async () => {
    const clock = new ManualTimers();
    const runs: Array<{ finish(error?: Error): void }> = [];
    const errors: unknown[] = [];
    repeat(clock, 1000, () => new Promise<void>((resolve, reject) => runs.push({ finish: (error) => (error === undefined ? resolve() : reject(error)) })), (err) => errors.push(err));
    clock.advance(3000);
    assert.equal(runs.length, 1, 'the first run is still pending (a slow database): no second one beside it');
    runs[0]!.finish(new Error('the database went away'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(errors.map((e) => (e as Error).message), ['the database went away']);
    clock.advance(1000);
    assert.equal(runs.length, 2, 'the next run comes all the same');
  });
});

describe('notifier (RFC 6665 §4.2.2)', () => {
  function setup(document: EventDocument = { contentType: 'application/pidf+xml', body: '<busy/>' }, closed = false) {
    const tx = fakeTransactions();
    const ended: Subscription[] = [];
    const current = { ...document };
    const notifier = new Notifier({
      product: 'Parley/test', logger, transactions: tx, resolveFlow: () => flow(closed), now: () => 1_000_000,
      documentFor: async () => ({ ...current }), onEnded: (s) => ended.push(s),
    });
    return { tx, ended, notifier, current };
  }

  it('sends in-dialog NOTIFYs one at a time, with growing CSeq and fresh branches', async () => {
    const { tx, notifier } = setup();
    const sub = subscription();
    notifier.notify(sub);
    notifier.notify(sub);
    notifier.notify(sub);
    await tick();
    assert.equal(tx.sent.length, 1, 'the second waits for the first to be answered');
    const first = tx.sent[0]!.request;
    assert.equal(first.method, 'NOTIFY');
    assert.equal(first.uri, 'sip:alice@127.0.0.1:40000;transport=tcp');
    assert.equal(first.headers.get('from'), '<sip:bob@parley.test>;tag=srv');
    assert.equal(first.headers.get('to'), '<sip:alice@parley.test>;tag=cli');
    assert.equal(first.headers.get('call-id'), 'c1');
    assert.equal(first.headers.get('cseq'), '1 NOTIFY');
    assert.equal(first.headers.get('event'), 'presence');
    assert.equal(first.headers.get('subscription-state'), 'active;expires=600');
    assert.equal(first.headers.get('content-type'), 'application/pidf+xml');
    assert.equal(first.headers.get('contact'), '<sip:127.0.0.1:5060;transport=tcp>');
    assert.match(first.headers.get('via') ?? '', /^SIP\/2\.0\/TCP 127\.0\.0\.1:5060;branch=z9hG4bK/);
    assert.equal(first.body.toString(), '<busy/>');
    tx.answer(0, 200);
    await tick();
    assert.equal(tx.sent.length, 2, 'the changes that waited are folded into one NOTIFY');
    assert.equal(tx.sent[1]!.request.headers.get('cseq'), '2 NOTIFY');
    assert.notEqual(tx.sent[1]!.request.headers.get('via'), first.headers.get('via'));
    tx.answer(1, 200);
    await tick();
    assert.equal(tx.sent.length, 2);
  });

  it('suppresses a change that leaves the body as the subscriber last saw it', async () => {
    const { tx, notifier, current } = setup({ contentType: 'application/simple-message-summary', body: 'Messages-Waiting: no\r\n' });
    const sub = subscription(undefined, 'message-summary');
    notifier.notify(sub);
    await tick();
    tx.answer(0, 200);
    notifier.notify(sub, true);
    await tick();
    assert.equal(tx.sent.length, 1, 'same body: nothing sent');
    current.body = 'Messages-Waiting: yes\r\n';
    notifier.notify(sub, true);
    await tick();
    assert.equal(tx.sent.length, 2);
    assert.equal(tx.sent[1]!.request.body.toString(), 'Messages-Waiting: yes\r\n');
    assert.equal(tx.sent[1]!.request.headers.get('content-type'), 'application/simple-message-summary');
    tx.answer(1, 200);
    notifier.notify(sub);
    await tick();
    assert.equal(tx.sent.length, 3, 'a refresh NOTIFY goes even when nothing changed');
  });

  it('ends the subscription on 481, on a timeout and on a transport error', async () => {
    for (const fail of ['481', 'timeout', 'transport'] as const) {
      const { tx, ended, notifier } = setup();
      const sub = subscription();
      notifier.notify(sub);
      await tick();
      if (fail === '481') tx.answer(0, 481);
      else if (fail === 'timeout') tx.sent[0]!.user.onTimeout();
      else tx.sent[0]!.user.onTransportError();
      assert.equal(sub.state, 'terminated', fail);
      assert.deepEqual(ended, [sub]);
      notifier.notify(sub);
      await tick();
      assert.equal(tx.sent.length, 1, 'nothing after the end');
    }
  });

  it('ends the subscription after the final NOTIFY, and when the flow is gone', async () => {
    const { tx, ended, notifier } = setup();
    const sub = subscription();
    sub.terminate('timeout');
    notifier.notify(sub);
    await tick();
    assert.equal(tx.sent[0]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    assert.equal(sub.state, 'terminating');
    tx.answer(0, 200);
    assert.equal(sub.state, 'terminated');
    assert.deepEqual(ended, [sub]);

    const gone = setup(undefined, true);
    const other = subscription();
    gone.notifier.notify(other);
    await tick();
    assert.equal(gone.tx.sent.length, 0);
    assert.equal(other.state, 'terminated');
  });

  it('counts a NOTIFY in flight once: an answer that comes after its subscription ended changes nothing', async () => {
    const { tx, ended, notifier } = setup();
    const sub = subscription();
    const other = subscription(undefined, 'presence', 'carol@parley.test', 'c2');
    notifier.notify(sub);
    notifier.notify(other);
    notifier.notify(sub, false);
    await tick();
    assert.equal(notifier.pending, 2);
    notifier.abandon(sub);
    assert.equal(notifier.pending, 1, 'the abandoned one is no longer in flight');
    tx.answer(0, 200);
    await tick();
    assert.equal(notifier.pending, 1, 'its late answer does not count it out a second time');
    assert.equal(tx.sent.length, 2, 'nor sends the change that was waiting behind it');
    assert.deepEqual(ended, [sub]);
    tx.answer(1, 200);
    assert.equal(notifier.pending, 0);
  });

  it('ends the subscription when the package cannot build its document', async () => {
    const tx = fakeTransactions();
    const ended: Subscription[] = [];
    const notifier = new Notifier({
      product: 'Parley/test', logger, transactions: tx, resolveFlow: () => flow(), now: () => 1_000_000,
      documentFor: async () => {
        throw new Error('user removed');
      },
      onEnded: (s) => ended.push(s),
    });
    const sub = subscription();
    notifier.notify(sub);
    await tick();
    await tick();
    assert.equal(tx.sent.length, 0);
    assert.equal(sub.state, 'terminated');
    assert.deepEqual(ended, [sub]);
  });
});
