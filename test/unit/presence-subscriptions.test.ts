// Presence as an event package of the event service: NOTIFYs follow registrations and
// publications, blocked watchers see Offline, watchers expire. (The RFC 6665 machinery itself is
// tested in events-*.test.ts.)
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pino from 'pino';
import { EventService, ManualTimers, Subscription } from '../../src/events/index.ts';
import { PresenceService } from '../../src/presence/service.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage } from '../../src/sip/index.ts';

const logger = pino({ level: 'silent' });
const FLOW_REF = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };
const tick = () => new Promise((r) => setImmediate(r));

function subscription(expiresAt: number): Subscription {
  return new Subscription({
    watcher: 'alice@parley.test',
    package: 'presence',
    resource: 'bob@parley.test',
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

describe('presence service', () => {
  it('notifies on registration changes and terminates at expiry', async () => {
    const clock = new ManualTimers();
    const sent: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
    const tx = { sendRequest: (request: SipRequest, _flow: Flow, user: ClientTransactionUser) => void sent.push({ request, user }) };
    const answer = (i: number) => sent[i]!.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    let bindings: Binding[] = [];
    const registrations = new EventEmitter<{ changed: [aor: string] }>();
    const ctx = {
      domain: 'parley.test', product: 'Parley/test', logger, registrations, transactions: tx, now: clock.now,
      resolveFlow: () => ({ ...FLOW_REF, reliable: true, closed: false, send: () => true }),
      location: { lookup: async () => bindings },
    } as unknown as SipContext;
    const presence = new PresenceService({ timers: clock, isBlocked: (w) => w === 'mallory@parley.test' });
    const events = new EventService({ packages: [presence], timers: clock });
    assert.deepEqual(presence.handlers.map((h) => h.method), ['PUBLISH']);
    assert.equal(presence.name, 'presence');
    assert.equal(presence.accepts(['application/xpidf+xml']), false);
    events.start(ctx);
    const sub = subscription(clock.now() + 120_000);
    events.subscriptions.add(sub);
    assert.equal((await presence.stateOf('bob@parley.test')).state, 'Offline');

    bindings = [{ aor: 'bob@parley.test' } as Binding];
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.match(sent[0]!.request.body.toString(), /<basic>open<\/basic>/);
    assert.equal(sent[0]!.request.headers.get('content-type'), 'application/pidf+xml');
    answer(0);
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.equal(sent.length, 1, 'a change that changes nothing the watcher sees sends nothing');
    assert.deepEqual(await presence.snapshot('bob@parley.test'), {
      aor: 'bob@parley.test', state: 'Available', note: '', registrations: 1, publications: 0, watchers: ['alice@parley.test'],
    });
    assert.equal((await presence.visibleTo('mallory@parley.test', 'bob@parley.test')).state, 'Offline', 'blocked watchers see Offline');

    clock.advance(120_000);
    await tick();
    assert.equal(sent[1]!.request.headers.get('subscription-state'), 'terminated;reason=timeout');
    answer(1);
    assert.equal(events.subscriptions.size, 0);
    registrations.emit('changed', 'bob@parley.test');
    await tick();
    assert.equal(sent.length, 2);
    events.close();
    assert.equal(registrations.listenerCount('changed'), 0);
  });
});
