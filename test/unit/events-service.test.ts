// The event service in-process: SUBSCRIBE through the handler with a fake context (no sockets),
// a test package, and a fake transaction layer that records the NOTIFYs (event-service-harness.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventService } from '../../src/events/index.ts';
import { DOMAIN, setup, testPackage, tick } from './event-service-harness.ts';

describe('event service: package lookup', () => {
  it('answers 489 Bad Event with Allow-Events listing every package', async () => {
    const t = setup([testPackage('presence'), testPackage('message-summary'), testPackage('x-test')]);
    assert.equal(t.events.allowEvents, 'presence, message-summary, x-test');
    const res = await t.subscribe({ event: 'dialog' });
    assert.equal(res.status, 489);
    assert.equal(res.headers.getAll('allow-events').join(', '), 'presence, message-summary, x-test');
    assert.match(res.headers.get('warning') ?? '', /event package dialog is not served/);
    assert.equal((await t.subscribe({ event: null })).status, 489, 'no Event header');
    assert.equal((await t.subscribe({ event: 'X-Test;id=7' })).status, 200, 'names are case-insensitive, parameters ignored');
    assert.equal(t.notifies[0]!.request.headers.get('event'), 'X-Test;id=7', 'the NOTIFY repeats the Event header');
    assert.equal(t.events.packageOf('MESSAGE-SUMMARY')?.name, 'message-summary');
  });

  it('refuses two packages of one name, and changed() for an unknown package', () => {
    assert.throws(() => new EventService({ packages: [testPackage(), testPackage()] }), /given twice/);
    assert.throws(() => new EventService({ packages: [testPackage('Upper')] }), /lower-case/);
    const t = setup();
    assert.throws(() => t.events.changed('nope', 'bob@parley.test'), /no event package nope/);
  });
});

describe('event service: subscriptions', () => {
  it('creates a subscription, NOTIFYs at once, then only when the document changed', async () => {
    const pkg = testPackage();
    pkg.state.set(`bob@${DOMAIN}`, 'one');
    const t = setup([pkg]);
    const res = await t.subscribe({ expires: 100 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('expires'), '100');
    assert.equal(res.headers.get('contact'), '<sip:127.0.0.1:5060;transport=tcp>');
    assert.equal(t.notifies.length, 1);
    const first = t.notifies[0]!.request;
    assert.equal(first.body.toString(), 'one');
    assert.equal(first.headers.get('content-type'), 'text/plain');
    assert.equal(first.headers.get('subscription-state'), 'active;expires=100');
    assert.equal(t.tagOf(first.headers.get('from')), t.tagOf(res.headers.get('to')));
    t.answer(0);

    t.events.changed('x-test', `sip:Bob@${DOMAIN}`);
    await tick();
    assert.equal(t.notifies.length, 1, 'same document: no NOTIFY');
    pkg.state.set(`bob@${DOMAIN}`, 'two');
    t.events.changed('x-test', `sip:Bob@${DOMAIN}`);
    await tick();
    assert.equal(t.notifies.length, 2);
    assert.equal(t.notifies[1]!.request.body.toString(), 'two');
    t.answer(1);
    t.events.changed('x-test', `alice@${DOMAIN}`);
    await tick();
    assert.equal(t.notifies.length, 2, 'another resource: nobody to notify');
    pkg.state.set(`bob@${DOMAIN}`, 'three');
    t.events.changedAll('x-test');
    await tick();
    assert.equal(t.notifies.length, 3);
    assert.deepEqual(t.events.watching('x-test', `bob@${DOMAIN}`).map((s) => s.watcher), [`alice@${DOMAIN}`]);
  });

  it('shortens long durations, answers 423 with Min-Expires for short ones, and uses the default', async () => {
    const t = setup();
    assert.equal((await t.subscribe({ expires: 86400 })).headers.get('expires'), '600');
    const brief = await t.subscribe({ expires: 5 });
    assert.equal(brief.status, 423);
    assert.equal(brief.headers.get('min-expires'), '60');
    assert.equal((await t.subscribe({})).headers.get('expires'), '300');
    assert.equal((await t.subscribe({ expires: -1 as number })).status, 400);
  });

  it("refuses what the package does not authorize (403), unknown users (404), other domains (403), other types (406)", async () => {
    const t = setup();
    const refused = await t.subscribe({ from: 'mallory' });
    assert.equal(refused.status, 403);
    assert.match(refused.headers.get('warning') ?? '', /mallory@parley\.test may not watch bob@parley\.test/);
    assert.equal((await t.subscribe({ to: `nobody@${DOMAIN}` })).status, 404);
    assert.equal((await t.subscribe({ to: 'bob@elsewhere.example' })).status, 403);
    const notAcceptable = await t.subscribe({ accept: 'application/pidf+xml' });
    assert.equal(notAcceptable.status, 406);
    assert.equal(notAcceptable.headers.get('accept'), 'text/plain');
    assert.equal((await t.subscribe({ accept: 'text/*' })).status, 200);
    assert.equal(t.notifies.length, 1, 'only the accepted subscription got a NOTIFY');
  });

  it('answers a fetch (Expires: 0) with one final NOTIFY', async () => {
    const t = setup();
    const res = await t.subscribe({ expires: 0 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('expires'), '0');
    assert.equal(t.notifies[0]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    t.answer(0);
    assert.equal(t.events.subscriptions.size, 0);
  });

  it('refreshes in the dialog, unsubscribes with a final NOTIFY, then answers 481', async () => {
    const t = setup();
    const res = await t.subscribe({ expires: 100, callId: 'dlg', fromTag: 'ft' });
    const toTag = t.tagOf(res.headers.get('to'))!;
    t.answer(0);
    t.clock.advance(90_000);
    const refresh = await t.subscribe({ expires: 100, callId: 'dlg', fromTag: 'ft', toTag });
    assert.equal(refresh.status, 200);
    assert.equal(t.notifies[1]!.request.headers.get('subscription-state'), 'active;expires=100', 'a refresh always NOTIFYs');
    t.answer(1);
    t.clock.advance(90_000);
    assert.equal(t.notifies.length, 2, 'the refresh moved the expiry');
    const other = await t.subscribe({ event: 'x-test', expires: 100, callId: 'dlg', fromTag: 'other', toTag });
    assert.equal(other.status, 481, 'no such dialog');
    const bye = await t.subscribe({ expires: 0, callId: 'dlg', fromTag: 'ft', toTag });
    assert.equal(bye.status, 200);
    assert.equal(t.notifies[2]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    t.answer(2);
    assert.equal((await t.subscribe({ expires: 100, callId: 'dlg', fromTag: 'ft', toTag })).status, 481);
  });

  it('ends a subscription at expiry with terminated;reason=timeout', async () => {
    const t = setup();
    await t.subscribe({ expires: 60 });
    t.answer(0);
    t.clock.advance(60_000);
    await tick();
    assert.equal(t.notifies[1]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    t.answer(1);
    assert.equal(t.events.subscriptions.size, 0);
    t.events.close();
    t.events.changed('x-test', `bob@${DOMAIN}`);
  });
});
