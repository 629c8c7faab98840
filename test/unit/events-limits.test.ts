// Limits on live subscriptions (issue 18, finding 7): the counting indices alone, then through
// the SUBSCRIBE handler — replacement past the per-watcher-and-resource limit, refusals past the
// per-watcher and per-resource limits — and a subscription that stops counting whichever way it ends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LiveSubscriptions, REPLACED_RETRY_AFTER, Subscription } from '../../src/events/index.ts';
import type { SubscriptionLimits } from '../../src/events/index.ts';
import { DOMAIN, setup, tick } from './event-service-harness.ts';

const FLOW_REF = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const CAROL = `carol@${DOMAIN}`;

function limits(perPair: number, perWatcher: number, perResource: number): SubscriptionLimits {
  return { maxSubscriptionsPerWatcherResource: perPair, maxSubscriptionsPerWatcher: perWatcher, maxSubscriptionsPerResource: perResource };
}

let dialogs = 0;
function sub(watcher: string, resource: string, pkg = 'presence'): Subscription {
  const callId = `c${++dialogs}`;
  return new Subscription({
    watcher, package: pkg, resource, event: pkg, flow: FLOW_REF, expiresAt: 0,
    dialog: { callId, localTag: 's', remoteTag: 'c', localHeader: '', remoteHeader: '', remoteTarget: 'sip:x@127.0.0.1', routeSet: [], remoteCSeq: 1 },
  });
}

describe('live subscription counts', () => {
  it('admits up to each limit: replaces the least recently refreshed of a pair, refuses past the totals', () => {
    const live = new LiveSubscriptions(limits(2, 3, 3));
    const [a1, a2, a3] = [sub(ALICE, BOB), sub(ALICE, BOB), sub(ALICE, BOB)];
    assert.deepEqual(live.admit(ALICE, 'presence', BOB), { kind: 'ok' });
    live.enter(a1!);
    live.enter(a2!);
    assert.deepEqual(live.admit(ALICE, 'presence', BOB), { kind: 'replace', oldest: a1, limit: 2 });
    live.touch(a1!);
    assert.deepEqual(live.admit(ALICE, 'presence', BOB), { kind: 'replace', oldest: a2, limit: 2 }, 'a refresh makes it the most recent');
    assert.deepEqual(live.admit(ALICE, 'message-summary', BOB), { kind: 'ok' }, 'another package is another pair');
    live.leave(a2!);
    live.leave(a2!);
    assert.equal(live.ofPair(ALICE, 'presence', BOB).size, 1, 'leaving twice counts once');
    live.enter(a3!);
    live.enter(sub(ALICE, CAROL));
    const full = live.admit(ALICE, 'presence', `dave@${DOMAIN}`);
    assert.equal(full.kind, 'refused');
    assert.match(full.kind === 'refused' ? full.warning : '', /alice@parley\.test holds 3 subscriptions.*events\.maxSubscriptionsPerWatcher/);
    assert.equal(live.admit(ALICE, 'presence', BOB).kind, 'replace', 'a replacement needs no room in the totals');

    live.enter(sub(CAROL, BOB));
    const crowded = live.admit(`dave@${DOMAIN}`, 'presence', BOB);
    assert.match(crowded.kind === 'refused' ? crowded.warning : '', /bob@parley\.test has 3 presence subscribers.*events\.maxSubscriptionsPerResource/);
    assert.deepEqual(live.watchers().sort(), [ALICE, CAROL]);
    assert.deepEqual(live.resources(), [{ packageName: 'presence', resource: BOB }, { packageName: 'presence', resource: CAROL }]);
    assert.equal(live.size, 4);
    // what /metrics reads: the admissions above, and the live ones per package
    assert.deepEqual(live.admissions, { refusedPerWatcher: 1, refusedPerResource: 1, replaced: 3 });
    assert.deepEqual([...live.countByPackage()], [['presence', 4]]);
    live.clear();
    assert.equal(live.size, 0);
    assert.deepEqual(live.admit(ALICE, 'presence', BOB), { kind: 'ok' });
  });
});

describe('SUBSCRIBE within the limits', () => {
  it('replaces the least recently refreshed subscription of a watcher and resource with probation;retry-after', async () => {
    const t = setup(undefined, { limits: limits(3, 100, 100) });
    const toTags = new Map<string, string>();
    for (const callId of ['c1', 'c2', 'c3']) toTags.set(callId, t.tagOf((await t.subscribe({ callId, expires: 300 })).headers.get('to'))!);
    t.answerAll();
    assert.equal((await t.subscribe({ callId: 'c1', toTag: toTags.get('c1'), expires: 300 })).status, 200, 'c1 refreshed: now the most recent');
    t.answerAll();
    const before = t.notifies.length;
    const fourth = await t.subscribe({ callId: 'c4', expires: 300 });
    assert.equal(fourth.status, 200);
    const sent = t.notifies.slice(before).map((n) => `${n.request.headers.get('call-id')} ${n.request.headers.get('subscription-state')}`);
    assert.deepEqual(sent.sort(), ['c2 terminated;reason=probation;retry-after=600', 'c4 active;expires=300']);
    assert.equal(REPLACED_RETRY_AFTER, 600);
    t.answerAll();
    assert.deepEqual(t.events.watching('x-test', BOB).map((s) => s.dialog.callId).sort(), ['c1', 'c3', 'c4']);
    assert.equal(t.events.subscriptions.size, 3, 'the replaced one is gone once its final NOTIFY was answered');
    assert.equal((await t.subscribe({ callId: 'c2', toTag: toTags.get('c2'), expires: 300 })).status, 481);

    // One change of bob: as many NOTIFYs as the limit, not one per SUBSCRIBE ever sent.
    // (A final NOTIFY waits for the answer to the dialog's NOTIFY before it: answer until none is left.)
    for (let i = 5; i < 12; i++) await t.subscribe({ callId: `c${i}`, expires: 300 });
    for (let sent = -1; sent !== t.notifies.length; await tick()) {
      sent = t.notifies.length;
      t.answerAll();
    }
    assert.equal(t.events.subscriptions.size, 3);
    const mark = t.notifies.length;
    t.events.changed('x-test', BOB);
    await tick();
    assert.equal(t.notifies.length - mark, 0, 'same document: nothing');
    (t.events.packageOf('x-test') as unknown as { state: Map<string, string> }).state.set(BOB, 'changed');
    t.events.changed('x-test', BOB);
    await tick();
    assert.deepEqual(t.notifies.slice(mark).map((n) => n.request.headers.get('call-id')).sort(), ['c10', 'c11', 'c9']);
  });

  it('refuses past the per-watcher limit with 403 naming it; other watchers and fetches go on', async () => {
    const t = setup(undefined, { limits: limits(2, 3, 100), users: ['alice', 'bob', 'carol', 'dave'] });
    for (const to of [BOB, BOB, CAROL]) assert.equal((await t.subscribe({ to, expires: 300 })).status, 200);
    const refused = await t.subscribe({ to: `dave@${DOMAIN}`, expires: 300 });
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('warning') ?? '', /^399 parley\.test "alice@parley\.test holds 3 subscriptions, the most one user may \(events\.maxSubscriptionsPerWatcher\)/);
    assert.equal((await t.subscribe({ from: 'carol', to: `dave@${DOMAIN}`, expires: 300 })).status, 200, 'another watcher');
    const fetch = await t.subscribe({ to: `dave@${DOMAIN}`, expires: 0 });
    assert.equal(fetch.status, 200, 'a fetch holds nothing');
    assert.equal(t.notifies.at(-1)!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    assert.equal((await t.subscribe({ to: BOB, expires: 300 })).status, 200, 'a third to bob replaces one: the total stays');
    assert.equal(t.events.subscriptions.live.ofWatcher(ALICE).size, 3);
  });

  it('refuses past the per-resource limit with 403 naming it', async () => {
    const t = setup(undefined, { limits: limits(2, 100, 3), users: ['alice', 'bob', 'carol', 'dave'] });
    await t.subscribe({ expires: 300 });
    await t.subscribe({ expires: 300 });
    await t.subscribe({ from: 'carol', expires: 300 });
    const refused = await t.subscribe({ from: 'dave', expires: 300 });
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('warning') ?? '', /bob@parley\.test has 3 x-test subscribers, the most one resource may \(events\.maxSubscriptionsPerResource\)/);
    assert.equal((await t.subscribe({ from: 'dave', to: CAROL, expires: 300 })).status, 200);
  });
});

describe('a subscription stops counting however it ends', () => {
  type Setup = ReturnType<typeof setup>;
  /** Each way a subscription of alice to bob can end, after its first NOTIFY (index 0) was answered. */
  const ways: Array<{ way: string; end: (t: Setup, toTag: string) => Promise<void> | void; finalState?: string }> = [
    { way: 'expiry', end: (t) => t.clock.advance(300_000), finalState: 'terminated;reason=timeout' },
    { way: 'unsubscribe (Expires: 0)', end: async (t, toTag) => void (await t.subscribe({ callId: 'dlg', toTag, expires: 0 })), finalState: 'terminated;reason=timeout' },
    { way: 'server termination', end: (t) => t.events.terminate(t.events.watching('x-test', BOB)[0]!, 'deactivated'), finalState: 'terminated;reason=deactivated' },
    { way: 'a NOTIFY answered 481', end: async (t) => notifyThen(t, (n) => t.answer(n, 481)) },
    { way: 'a NOTIFY timed out', end: async (t) => notifyThen(t, (n) => t.notifies[n]!.user.onTimeout()) },
    { way: 'a NOTIFY could not be sent', end: async (t) => notifyThen(t, (n) => t.notifies[n]!.user.onTransportError()) },
    { way: 'the connection closed', end: (t) => t.closeFlow('tcp#1') },
    { way: 'the watcher was removed', end: (t) => removeUser(t, ALICE), finalState: 'terminated;reason=rejected' },
    { way: 'the resource was removed', end: (t) => removeUser(t, BOB), finalState: 'terminated;reason=noresource' },
    { way: 'a replacement', end: async (t) => void (await t.subscribe({ callId: 'newer', expires: 300, flow: 'tcp#2' })), finalState: 'terminated;reason=probation;retry-after=600' },
  ];

  /** a change of bob's document, whose NOTIFY (the next one) `fail` answers */
  async function notifyThen(t: Setup, fail: (n: number) => void): Promise<void> {
    (t.events.packageOf('x-test') as unknown as { state: Map<string, string> }).state.set(BOB, 'new');
    t.events.changed('x-test', BOB);
    await tick();
    fail(t.notifies.length - 1);
  }

  function removeUser(t: Setup, address: string): void {
    t.users.delete(address);
    t.clock.advance(60_000); // the sweep
  }

  for (const { way, end, finalState } of ways) {
    it(`after ${way}`, async () => {
      const t = setup(undefined, { limits: limits(1, 1, 100), users: ['alice', 'bob', 'carol'] });
      const first = await t.subscribe({ callId: 'dlg', expires: 300 });
      t.answer(0);
      assert.equal((await t.subscribe({ to: CAROL, expires: 300 })).status, 403, 'alice holds her one subscription');
      const sent = t.notifies.length;
      await end(t, t.tagOf(first.headers.get('to'))!);
      await tick();
      const live = t.events.subscriptions.live;
      assert.ok(![...live.ofWatcher(ALICE)].some((s) => s.dialog.callId === 'dlg'), 'it counts no more from the moment it ends, final NOTIFY answered or not');
      if (finalState !== undefined) {
        const final = t.notifies.slice(sent).find((n) => n.request.headers.get('call-id') === 'dlg');
        assert.equal(final?.request.headers.get('subscription-state'), finalState);
      }
      t.answerAll();
      const held = way === 'a replacement' ? ['newer'] : [];
      assert.deepEqual([...live.ofWatcher(ALICE)].map((s) => s.dialog.callId), held);
      assert.equal(t.events.subscriptions.size, held.length, 'and the store forgot it');
      assert.equal(t.events.notifier.pending, 0);
      if (way === 'the watcher was removed') return;
      if (held.length === 0) assert.equal((await t.subscribe({ to: CAROL, expires: 300 })).status, 200, 'alice may subscribe again');
    });
  }

  it('after close()', async () => {
    const t = setup(undefined, { limits: limits(1, 1, 100) });
    await t.subscribe({ expires: 300 });
    const store = t.events.subscriptions;
    assert.equal(store.live.size, 1);
    t.events.close();
    assert.equal(store.live.size, 0);
    assert.equal(store.size, 0);
  });
});
