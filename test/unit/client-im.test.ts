// Instant-messaging features of the client SDK: CPIM with RFC 5438 display-notification requests,
// display notifications, RFC 3994 typing indications (pure bodies, then through the user agent over
// an in-memory transport), the Warning text of answers, and reconnection with back-off.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import type { ConnectionEvent, DisplayedEvent, IncomingMessage, TypingEvent } from '../../src/client/index.ts';
import { ClientError } from '../../src/client/errors.ts';
import { cpimWithDisplayRequest, displayNotification, readCpim } from '../../src/client/imdn.ts';
import { ComposingTracker, isComposingBody, parseIsComposing } from '../../src/client/is-composing.ts';
import { backoffDelayMs, DEFAULT_RECONNECT } from '../../src/client/reconnect.ts';
import { parseCpim, parseNameAddr, parseWarning } from '../../src/sip/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { AOR, FakeSipServer, fakeServerClients, incoming } from './fake-sip-server.ts';

const { start, closeAll } = fakeServerClients();
afterEach(closeAll);

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const parties = { from: 'sip:alice@parley.local', to: 'sip:bob@parley.local' };

describe('CPIM with RFC 5438 headers (imdn.ts)', () => {
  it('a display-notification request is CPIM that src/sip reads, with NS, Message-ID, DateTime, Disposition-Notification', () => {
    const body = cpimWithDisplayRequest(parties, 'héllo\r\nsecond line', 'text/plain;charset=utf-8', 'abc123', new Date('2026-12-06T10:00:00Z'));
    const cpim = parseCpim(bytes(body));
    assert.ok(cpim !== undefined);
    assert.deepEqual(cpim.headers.map((h) => `${h.name}: ${h.value}`), [
      'From: <sip:alice@parley.local>',
      'To: <sip:bob@parley.local>',
      'NS: imdn <urn:ietf:params:imdn>',
      'imdn.Message-ID: abc123',
      'DateTime: 2026-12-06T10:00:00.000Z',
      'imdn.Disposition-Notification: display',
    ]);
    assert.equal(cpim.contentType, 'text/plain;charset=utf-8');
    assert.equal(new TextDecoder().decode(cpim.body), 'héllo\r\nsecond line');
    const read = readCpim(bytes(body));
    assert.ok(read?.kind === 'content');
    assert.deepEqual({ ...read, body: new TextDecoder().decode(read.body) }, {
      kind: 'content', contentType: 'text/plain;charset=utf-8', body: 'héllo\r\nsecond line', imdnMessageId: 'abc123', displayNotificationRequested: true,
    });
  });

  it('a display notification names the original message and <displayed/>, with its own Message-ID', () => {
    const body = displayNotification(parties, 'abc<123>', 'n1', new Date('2026-12-06T10:00:05Z'));
    const cpim = parseCpim(bytes(body));
    assert.equal(cpim?.contentType, 'message/imdn+xml');
    assert.match(body, /imdn\.Message-ID: n1\r\n/);
    assert.match(body, /Content-Disposition: notification\r\n/);
    assert.doesNotMatch(body, /Disposition-Notification/, 'a notification never asks for one (§7.2.1.1)');
    assert.match(body, /<message-id>abc&lt;123&gt;<\/message-id>/);
    assert.deepEqual(readCpim(bytes(body)), { kind: 'notification', originalId: 'abc<123>', displayed: true });
  });

  it('finds IMDN headers under the prefix the NS header declares, and reads other statuses as not displayed', () => {
    const other = 'From: <sip:bob@parley.local>\r\nNS: x <urn:ietf:params:imdn>\r\nx.Message-ID: m9\r\nx.Disposition-Notification: positive-delivery, Display\r\n\r\nContent-Type: text/plain\r\n\r\nhi';
    const read = readCpim(bytes(other));
    assert.equal(read?.kind === 'content' && read.imdnMessageId, 'm9');
    assert.equal(read?.kind === 'content' && read.displayNotificationRequested, true);
    const forbidden = 'From: <sip:bob@parley.local>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: n2\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m1</message-id><display-notification><status><forbidden/></status></display-notification></imdn>';
    assert.deepEqual(readCpim(bytes(forbidden)), { kind: 'notification', originalId: 'm1', displayed: false });
    assert.equal(readCpim(bytes('not cpim at all')), undefined);
    assert.equal(readCpim(bytes('From: <sip:b@x>\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n<imdn')), undefined, 'an IMDN that does not parse');
  });
});

describe('RFC 3994 isComposing (is-composing.ts)', () => {
  it('writes active with refresh 60 and idle without, and reads them back', () => {
    assert.deepEqual(parseIsComposing(isComposingBody(true)), { active: true, refreshSeconds: 60 });
    assert.doesNotMatch(isComposingBody(false), /refresh/);
    assert.deepEqual(parseIsComposing(isComposingBody(false)), { active: false, refreshSeconds: 120 });
    assert.match(isComposingBody(true), /<contenttype>text\/plain<\/contenttype>/);
  });

  it('refuses documents that are not isComposing', () => {
    assert.equal(parseIsComposing('<isComposing xmlns="urn:other"><state>active</state></isComposing>'), undefined);
    assert.equal(parseIsComposing('<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>typing</state></isComposing>'), undefined);
    assert.equal(parseIsComposing('<isComposing'), undefined);
  });

  it('tracks who is typing: lapse after the refresh interval, a message ends it', async () => {
    const changes: string[] = [];
    const tracker = new ComposingTracker((from, active) => changes.push(`${from}:${active}`));
    tracker.update('bob@x', { active: true, refreshSeconds: 0.02 });
    tracker.update('bob@x', { active: true, refreshSeconds: 0.02 }); // a refresh is not a change
    tracker.update('carol@x', { active: true, refreshSeconds: 60 });
    tracker.messageFrom('carol@x');
    tracker.messageFrom('dave@x'); // not typing: nothing to tell
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(changes, ['bob@x:true', 'carol@x:true', 'carol@x:false', 'bob@x:false']);
    tracker.clear();
  });
});

describe('Warning header text (RFC 3261 §20.43)', () => {
  it('parses code, agent and the unquoted text', () => {
    assert.deepEqual(parseWarning('399 parley.local "bob@parley.local is offline; stored for delivery to their mailbox"'), { code: 399, agent: 'parley.local', text: 'bob@parley.local is offline; stored for delivery to their mailbox' });
    assert.deepEqual(parseWarning('399 [::1]:5060 "say \\"hi\\", then"'), { code: 399, agent: '[::1]:5060', text: 'say "hi", then' });
    assert.equal(parseWarning('just text'), undefined);
    assert.equal(parseWarning('399 agent "unclosed'), undefined);
  });
});

describe('SipClient instant messaging', () => {
  it('sendMessage with requestDisplayNotification sends CPIM and returns the 202 Warning text and imdnMessageId', async () => {
    const { ua, peer } = await start();
    const pending = ua.sendMessage('sip:bob@parley.local', 'hello', { requestDisplayNotification: true });
    const request = await peer.nextRequest('MESSAGE');
    assert.equal(request.headers.get('content-type'), 'message/cpim');
    const read = readCpim(request.body);
    assert.ok(read?.kind === 'content');
    assert.equal(new TextDecoder().decode(read.body), 'hello');
    assert.equal(read.displayNotificationRequested, true);
    assert.equal(parseCpim(request.body)?.headers.find((h) => h.name === 'From')?.value, `<${AOR}>`, 'CPIM From is our AOR (the server checks it)');
    peer.reply(request, 202, { warning: '399 parley.local "bob@parley.local is offline; stored for delivery to their mailbox"' });
    const info = await pending;
    assert.equal(info.status, 202);
    assert.equal(info.warning, 'bob@parley.local is offline; stored for delivery to their mailbox');
    assert.equal(info.imdnMessageId, read.imdnMessageId);
    assert.match(info.imdnMessageId ?? '', /^[A-Za-z0-9]{20}$/);
  });

  it('a plain sendMessage has no imdnMessageId, and no warning without a Warning header', async () => {
    const { ua, peer } = await start();
    const pending = ua.sendMessage('sip:bob@parley.local', 'plain');
    const request = await peer.nextRequest('MESSAGE');
    assert.equal(request.headers.get('content-type'), 'text/plain;charset=utf-8');
    peer.reply(request, 200);
    const info = await pending;
    assert.equal(info.warning, undefined);
    assert.equal(info.imdnMessageId, undefined);
  });

  it('sendTyping and sendDisplayed send RFC 3994 and RFC 5438 bodies', async () => {
    const { ua, peer } = await start();
    const typing = ua.sendTyping('sip:bob@parley.local', true);
    const t = await peer.nextRequest('MESSAGE');
    assert.equal(t.headers.get('content-type'), 'application/im-iscomposing+xml');
    assert.deepEqual(parseIsComposing(t.body), { active: true, refreshSeconds: 60 });
    peer.reply(t, 200);
    assert.equal((await typing).status, 200);
    const displayed = ua.sendDisplayed('sip:bob@parley.local', 'm42');
    const d = await peer.nextRequest('MESSAGE');
    assert.equal(d.headers.get('content-type'), 'message/cpim');
    assert.deepEqual(readCpim(d.body), { kind: 'notification', originalId: 'm42', displayed: true });
    peer.reply(d, 200);
    assert.equal((await displayed).status, 200);
    await assert.rejects(ua.sendDisplayed('sip:bob@parley.local', ''), (e: unknown) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT');
  });

  it('an incoming CPIM message is a message with its text, imdnMessageId and the display request', async () => {
    const { ua, peer } = await start();
    const messages: IncomingMessage[] = [];
    ua.on('message', (m) => messages.push(m));
    peer.inject(incoming('MESSAGE', cpimWithDisplayRequest({ from: 'sip:bob@parley.local', to: AOR }, 'hi <b>there</b>', 'text/plain;charset=utf-8', 'x1', new Date()), { 'content-type': 'message/cpim' }));
    assert.equal((await peer.nextResponse()).status, 200);
    peer.inject(incoming('MESSAGE', 'plain', { 'content-type': 'text/plain' }));
    assert.equal((await peer.nextResponse()).status, 200);
    assert.equal(messages[0]?.text, 'hi <b>there</b>');
    assert.equal(messages[0]?.textContentType, 'text/plain;charset=utf-8');
    assert.equal(messages[0]?.imdnMessageId, 'x1');
    assert.equal(messages[0]?.displayNotificationRequested, true);
    assert.equal(messages[0]?.contentType, 'message/cpim');
    assert.equal(messages[1]?.text, 'plain');
    assert.equal(messages[1]?.displayNotificationRequested, false);
    assert.equal(messages[1]?.imdnMessageId, undefined);
  });

  it("IMDNs and isComposing are answered 200 and become 'displayed' and 'typing', never 'message'", async () => {
    const { ua, peer } = await start();
    const events: string[] = [];
    ua.on('message', (m) => events.push(`message ${m.text}`));
    ua.on('typing', (e: TypingEvent) => events.push(`typing ${e.from} ${e.active}`));
    ua.on('displayed', (e: DisplayedEvent) => events.push(`displayed ${e.from} ${e.imdnMessageId}`));
    const pai = { 'p-asserted-identity': '"Bob" <sip:Bob@Parley.local>' };
    peer.inject(incoming('MESSAGE', isComposingBody(true), { 'content-type': 'application/im-iscomposing+xml', ...pai }));
    assert.equal((await peer.nextResponse()).status, 200);
    peer.inject(incoming('MESSAGE', 'done typing', { 'content-type': 'text/plain', ...pai }));
    assert.equal((await peer.nextResponse()).status, 200);
    peer.inject(incoming('MESSAGE', displayNotification({ from: 'sip:bob@parley.local', to: AOR }, 'abc', 'n1', new Date()), { 'content-type': 'message/cpim', ...pai }));
    assert.equal((await peer.nextResponse()).status, 200);
    peer.inject(incoming('MESSAGE', isComposingBody(false), { 'content-type': 'application/im-iscomposing+xml' }));
    assert.equal((await peer.nextResponse()).status, 200);
    assert.deepEqual(events, ['typing Bob@parley.local true', 'typing Bob@parley.local false', 'message done typing', 'displayed Bob@parley.local abc', 'typing bob@parley.local false']);
  });
});

describe('reconnection with back-off (reconnect.ts)', () => {
  it('doubles from 1 s to 30 s, with ±20 % jitter never past the cap', () => {
    const mid = () => 0.5;
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffDelayMs(n, DEFAULT_RECONNECT, mid)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.equal(backoffDelayMs(1, DEFAULT_RECONNECT, () => 0), 800);
    assert.equal(backoffDelayMs(1, DEFAULT_RECONNECT, () => 1), 1200);
    assert.equal(backoffDelayMs(6, DEFAULT_RECONNECT, () => 1), 30000);
  });

  /** A SipClient whose every connection is a new FakeSipServer, in order. */
  async function reconnecting(options: { failFirst?: number } = {}) {
    const peers: FakeSipServer[] = [];
    const waiting: Array<(peer: FakeSipServer) => void> = [];
    let failures = options.failFirst ?? 0;
    let connects = 0;
    const ua = new SipClient({
      server: 'tcp://127.0.0.1:5060', aor: AOR, password: 'pw', keepAliveIntervalMs: 0,
      autoReconnect: { initialDelayMs: 10, maxDelayMs: 40 },
      connector: async () => {
        connects++;
        if (connects > 1 && failures-- > 0) throw new ClientError('CONNECT_FAILED', 'refused');
        const peer = new FakeSipServer();
        peers.push(peer);
        waiting.shift()?.(peer);
        return peer.transport;
      },
    });
    const events: ConnectionEvent[] = [];
    ua.on('connection', (e) => events.push(e));
    ua.on('error', () => undefined);
    await ua.connect();
    const nextPeer = (): Promise<FakeSipServer> => new Promise((resolve) => waiting.push(resolve));
    return { ua, first: peers[0] as FakeSipServer, nextPeer, events };
  }

  async function serve(peer: FakeSipServer, method: string, headers: (r: SipRequest) => Record<string, string>) {
    const request = await peer.nextAuthenticated(method);
    peer.reply(request, 200, headers(request));
    return request;
  }

  it('after a lost connection: reconnects, registers again, re-subscribes, and tells each step', async () => {
    const { ua, first, nextPeer, events } = await reconnecting({ failFirst: 1 });
    try {
      const registered = ua.register({ expires: 300 });
      await serve(first, 'REGISTER', (r) => ({ contact: `${r.headers.get('contact')};expires=300` }));
      await registered;
      const subscription = ua.subscribe('message-summary');
      const terminations: Array<{ reason?: string; retrying: boolean }> = [];
      subscription.on('terminated', (t) => terminations.push(t));
      const firstSubscribe = await serve(first, 'SUBSCRIBE', () => ({ expires: '600' }));
      await subscription.ready;

      const second = nextPeer();
      first.drop();
      // while it is down, a message fails at once rather than vanishing
      await assert.rejects(ua.sendMessage('sip:bob@parley.local', 'lost?'), (e: unknown) => e instanceof ClientError && e.code === 'DISCONNECTED');
      const peer = await second;
      const register = await serve(peer, 'REGISTER', (r) => ({ contact: `${r.headers.get('contact')};expires=300` }));
      assert.equal(register.headers.get('expires'), '300');
      const resubscribe = await serve(peer, 'SUBSCRIBE', () => ({ expires: '600' }));
      assert.equal(resubscribe.headers.get('event'), 'message-summary');
      assert.notEqual(resubscribe.headers.get('call-id'), firstSubscribe.headers.get('call-id'), 'a new dialog');
      assert.equal(parseNameAddr(resubscribe.headers.get('to') ?? '').params.has('tag'), false, 'out of dialog');
      while (events.at(-1)?.state !== 'connected' || events.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepEqual(events.map((e) => [e.state, e.attempt]), [['connected', undefined], ['reconnecting', 1], ['reconnecting', 2], ['connected', undefined]]);
      assert.ok(events.slice(1, 3).every((e) => typeof e.delayMs === 'number' && e.delayMs <= 40 && e.error instanceof Error));
      assert.equal(subscription.state, 'active');
      assert.deepEqual(terminations.map((t) => [t.reason, t.retrying]), [['disconnected', true]]);
      assert.equal(ua.registered, true);
      // and the new connection carries messages
      const sent = ua.sendMessage('sip:bob@parley.local', 'back');
      peer.reply(await peer.nextAuthenticated('MESSAGE'), 200);
      assert.equal((await sent).status, 200);
    } finally {
      await ua.close();
    }
    assert.equal(events.at(-1)?.state, 'disconnected');
  });

  it('close() while reconnecting stops it: no new connection, disconnected told once', async () => {
    const { ua, first, events } = await reconnecting({ failFirst: 1000 });
    first.drop();
    while (events.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    await ua.close();
    const told = events.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(events.length, told, 'no attempt after close()');
    assert.deepEqual(events.at(-1), { state: 'disconnected' });
    assert.ok(events.slice(1, -1).every((e) => e.state === 'reconnecting'));
    await assert.rejects(ua.sendMessage('sip:bob@parley.local', 'x'), (e: unknown) => e instanceof ClientError && e.code === 'NOT_CONNECTED');
  });

  it('without autoReconnect, a lost connection is disconnected and stays so', async () => {
    const { ua, peer } = await start();
    const events: ConnectionEvent[] = [];
    ua.on('connection', (e) => events.push(e));
    peer.drop();
    assert.deepEqual(events.map((e) => e.state), ['disconnected']);
    assert.ok(events[0]?.error instanceof Error);
  });
});
