// The event service in-process: SUBSCRIBE through the handler with a fake context (no sockets),
// a test package, and a fake transaction layer that records the NOTIFYs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { EventService } from '../../src/events/index.ts';
import type { Authorization, EventPackage, Subscription } from '../../src/events/index.ts';
import { ManualTimers } from '../../src/events/timers.ts';
import type { Incoming, SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage, parseMessage } from '../../src/sip/index.ts';

const logger = pino({ level: 'silent' });
const DOMAIN = 'parley.test';
const tick = () => new Promise((r) => setImmediate(r));

/** A package whose documents are whatever the test puts in `state`. */
function testPackage(name = 'x-test', state = new Map<string, string>()): EventPackage & { state: Map<string, string> } {
  return {
    name,
    contentType: 'text/plain',
    expiry: { min: 60, max: 600, default: 300 },
    state,
    authorize(_ctx: SipContext, watcher: string, resource: string): Authorization {
      return watcher.startsWith('mallory') ? { status: 403, warning: `${watcher} may not watch ${resource}` } : 'ok';
    },
    body(sub: Subscription): string {
      return state.get(sub.resource) ?? 'nothing';
    },
  };
}

function setup(packages: EventPackage[] = [testPackage()]) {
  const clock = new ManualTimers();
  const notifies: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
  const transactions = {
    sendRequest(request: SipRequest, _flow: Flow, user: ClientTransactionUser) {
      notifies.push({ request, user });
      return undefined as never;
    },
  };
  const responses: SipResponse[] = [];
  const flow: Flow = {
    id: 'tcp#1', protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 }, reliable: true, closed: false,
    send(data: Buffer) {
      responses.push(parseMessage(data) as SipResponse);
      return true;
    },
  };
  const events = new EventService({ packages, timers: clock });
  const ctx = {
    domain: DOMAIN, product: 'Parley/test', logger, transactions, now: clock.now,
    resolveFlow: () => flow,
    userExists: (a: string) => ['alice', 'bob', 'mallory'].some((u) => a === `${u}@${DOMAIN}`),
    // the watcher is whoever the From header names: authentication is tested elsewhere
    auth: { authenticate: (r: SipRequest) => ({ ok: true, address: /<sip:([^>]+)>/.exec(r.headers.get('from') ?? '')?.[1] }) },
    events,
  } as unknown as SipContext;
  events.start(ctx);
  const [handler] = events.handlers;
  let cseq = 1;
  async function subscribe(opts: { from?: string; to?: string; event?: string | null; expires?: number; accept?: string; callId?: string; fromTag?: string; toTag?: string }) {
    const from = opts.from ?? 'alice';
    const to = opts.to ?? `bob@${DOMAIN}`;
    const lines = [
      `SUBSCRIBE sip:${to} SIP/2.0`,
      `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK${Math.random().toString(36).slice(2)}`,
      'Max-Forwards: 70',
      `From: <sip:${from}@${DOMAIN}>;tag=${opts.fromTag ?? 'ft'}`,
      `To: <sip:${to}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
      `Call-ID: ${opts.callId ?? `call-${cseq}`}`,
      `CSeq: ${cseq++} SUBSCRIBE`,
      `Contact: <sip:${from}@127.0.0.1:40000;transport=tcp>`,
      ...(opts.event === null ? [] : [`Event: ${opts.event ?? 'x-test'}`]),
      ...(opts.expires === undefined ? [] : [`Expires: ${opts.expires}`]),
      ...(opts.accept === undefined ? [] : [`Accept: ${opts.accept}`]),
      'Content-Length: 0', '', '',
    ];
    const request = parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
    const incoming: Incoming = { request, flow, tx: null, log: logger };
    await handler!.handle(ctx, incoming);
    await tick();
    return responses.at(-1)!;
  }
  const answer = (i: number, status = 200) => notifies[i]!.user.onFinal(createResponseMessage(status, 'x') as SipResponse);
  const tagOf = (header: string | undefined) => /tag=([^;>]+)/.exec(header ?? '')?.[1];
  return { clock, events, notifies, responses, subscribe, answer, tagOf };
}

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
