import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Notifier } from '../../src/presence/notifier.ts';
import type { PresenceState } from '../../src/presence/pidf.ts';
import { PresenceService } from '../../src/presence/service.ts';
import { Subscription, SubscriptionStore } from '../../src/presence/subscriptions.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage } from '../../src/sip/index.ts';
import { ManualTimers } from '../../src/presence/timers.ts';

function fakeClock() {
  const clock = new ManualTimers();
  return { timers: clock, now: clock.now, advance: (ms: number) => clock.advance(ms) };
}

const logger = pino({ level: 'silent' });
const FLOW_REF = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };

function flow(closed = false): Flow {
  return { ...FLOW_REF, reliable: true, closed, send: () => true };
}

function subscription(expiresAt = 600_000 + 1_000_000): Subscription {
  return new Subscription({
    watcher: 'alice@parley.test',
    presentity: 'bob@parley.test',
    event: 'presence',
    flow: FLOW_REF,
    expiresAt,
    dialog: {
      callId: 'c1', localTag: 'srv', remoteTag: 'cli',
      localHeader: '<sip:bob@parley.test>;tag=srv', remoteHeader: '<sip:alice@parley.test>;tag=cli',
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
    assert.equal(sub.subscriptionState(1_000_000), 'active;expires=300');
    sub.refresh(1_000_000 + 600_000, 2, undefined, FLOW_REF);
    assert.equal(sub.subscriptionState(1_000_000), 'active;expires=600');
    sub.terminate('timeout');
    assert.equal(sub.state, 'terminating');
    assert.equal(sub.subscriptionState(1_000_000), 'terminated;reason=timeout');
    assert.throws(() => sub.refresh(0, 3, undefined, FLOW_REF), /cannot refresh when terminating/);
    assert.throws(() => sub.terminate('timeout'), /cannot terminate/);
    sub.end();
    assert.equal(sub.state, 'terminated');
    assert.throws(() => sub.end(), /cannot end when terminated/);
  });

  it('fires expiry once, at the (refreshed) expiry time', () => {
    const clock = fakeClock();
    const expired: Subscription[] = [];
    const store = new SubscriptionStore({ timers: clock.timers, now: clock.now, onExpire: (s) => expired.push(s) });
    const sub = subscription(clock.now() + 60_000);
    store.add(sub);
    clock.advance(50_000);
    sub.refresh(clock.now() + 60_000, 2, undefined, FLOW_REF);
    store.schedule(sub);
    clock.advance(59_000);
    assert.equal(expired.length, 0);
    clock.advance(1_000);
    assert.deepEqual(expired, [sub]);
    assert.deepEqual(store.watching('bob@parley.test'), [sub]);
    store.remove(sub);
    assert.equal(store.size, 0);
  });
});

describe('notifier (RFC 6665 §4.2.2)', () => {
  function setup(state: PresenceState = { state: 'Busy', note: 'n' }, closed = false) {
    const tx = fakeTransactions();
    const ended: Subscription[] = [];
    const notifier = new Notifier({
      product: 'Parley/test', logger, transactions: tx, resolveFlow: () => flow(closed), now: () => 1_000_000,
      stateFor: async () => state, onEnded: (s) => ended.push(s),
    });
    return { tx, ended, notifier };
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
    assert.match(first.headers.get('via') ?? '', /^SIP\/2\.0\/TCP 127\.0\.0\.1:5060;branch=z9hG4bK/);
    assert.match(first.body.toString(), /<rpid:busy\/>/);
    tx.answer(0, 200);
    await tick();
    assert.equal(tx.sent.length, 2, 'the changes that waited are folded into one NOTIFY');
    assert.equal(tx.sent[1]!.request.headers.get('cseq'), '2 NOTIFY');
    assert.notEqual(tx.sent[1]!.request.headers.get('via'), first.headers.get('via'));
    tx.answer(1, 200);
    await tick();
    assert.equal(tx.sent.length, 2);
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
});

describe('presence service', () => {
  it('notifies on registration changes and terminates at expiry', async () => {
    const clock = fakeClock();
    const tx = fakeTransactions();
    let bindings: Binding[] = [];
    const registrations = new EventEmitter<{ changed: [aor: string] }>();
    const ctx = {
      domain: 'parley.test', product: 'Parley/test', logger, registrations, transactions: tx, now: clock.now,
      resolveFlow: () => flow(),
      location: { lookup: async () => bindings },
    } as unknown as SipContext;
    const presence = new PresenceService({ timers: clock.timers, isBlocked: (w) => w === 'mallory@parley.test' });
    presence.start(ctx);
    const sub = subscription(clock.now() + 120_000);
    presence.subscriptions.add(sub);
    assert.equal((await presence.stateOf('bob@parley.test')).state, 'Offline');

    bindings = [{ aor: 'bob@parley.test' } as Binding];
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.match(tx.sent[0]!.request.body.toString(), /<basic>open<\/basic>/);
    tx.answer(0, 200);
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.equal(tx.sent.length, 1, 'a change that changes nothing the watcher sees sends nothing');
    assert.deepEqual(await presence.snapshot('bob@parley.test'), {
      aor: 'bob@parley.test', state: 'Available', note: '', registrations: 1, publications: 0, watchers: ['alice@parley.test'],
    });
    assert.equal((await presence.visibleTo('mallory@parley.test', 'bob@parley.test')).state, 'Offline', 'blocked watchers see Offline');

    clock.advance(120_000);
    await tick();
    assert.equal(tx.sent[1]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    tx.answer(1, 200);
    assert.equal(presence.subscriptions.size, 0);
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.equal(tx.sent.length, 2);
    presence.close();
    assert.equal(registrations.listenerCount('changed'), 0);
  });
});
