// The user agent end to end over an in-memory transport (no sockets): the test plays the server,
// reading what the UA writes and scripting the answers, as a raw-wire transcript.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import { ClientError } from '../../src/client/errors.ts';
import { buildResponse } from '../../src/client/requests.ts';
import { parseCSeq, parseNameAddr, parseVia } from '../../src/sip/index.ts';
import type { SipMessage, SipRequest } from '../../src/sip/message.ts';
import { fakeServerClients, incoming, verify, type FakeSipServer } from './fake-sip-server.ts';

const cseq = (m: SipMessage) => parseCSeq(m.headers.get('cseq') ?? '');
const { start, closeAll } = fakeServerClients({ displayName: 'Alice', userAgent: 'ParleyTest/1' });

/** Answers one REGISTER exchange: a challenge, then 200 with the contact and `expires`. */
async function serveRegister(peer: FakeSipServer, expires = 300): Promise<SipRequest> {
  const request = await peer.nextAuthenticated('REGISTER');
  const contact = parseNameAddr(request.headers.get('contact') ?? '').uri;
  peer.reply(request, 200, { contact: `<${contact}>;expires=${expires}` });
  return request;
}

afterEach(closeAll);

describe('SipClient registration', () => {
  it('registers through a 401 challenge with one Call-ID and increasing CSeq (RFC 3261 §10.2)', async () => {
    const { ua, peer } = await start();
    const events: number[] = [];
    ua.on('registered', (r) => events.push(r.expires));
    const pending = ua.register();
    const first = await peer.nextRequest('REGISTER');
    assert.equal(first.uri, 'sip:parley.local');
    assert.equal(first.headers.get('to'), '<sip:alice@parley.local>');
    assert.match(first.headers.get('from') ?? '', /^"Alice" <sip:alice@parley\.local>;tag=\w+$/);
    assert.equal(first.headers.get('contact'), '<sip:alice@192.0.2.7:50123;transport=tcp>');
    assert.equal(first.headers.get('expires'), '600');
    assert.equal(first.headers.get('max-forwards'), '70');
    assert.equal(first.headers.get('user-agent'), 'ParleyTest/1');
    const via = parseVia(first.headers.get('via') ?? '');
    assert.equal(via.transport, 'TCP');
    assert.equal(via.params.has('rport'), true);
    peer.challenge(first);
    const second = await peer.nextRequest('REGISTER');
    assert.equal(second.headers.get('call-id'), first.headers.get('call-id'));
    assert.equal(second.headers.get('from'), first.headers.get('from'));
    assert.equal(cseq(second).seq, cseq(first).seq + 1);
    assert.notEqual(parseVia(second.headers.get('via') ?? '').params.get('branch'), via.params.get('branch'));
    const verified = verify(second);
    assert.equal(verified.ok && verified.algorithm, 'SHA-256');
    peer.reply(second, 200, { contact: '<sip:alice@192.0.2.7:50123;transport=tcp>;expires=300' });
    const result = await pending;
    assert.equal(result.status, 200);
    assert.equal(result.expires, 300);
    assert.equal(result.contacts.length, 1);
    assert.deepEqual(events, [300]);
    assert.equal(ua.registered, true);
  });

  it('retries with Min-Expires after 423 Interval Too Brief (§10.2.8)', async () => {
    const { ua, peer } = await start();
    const pending = ua.register({ expires: 60 });
    const first = await peer.nextRequest('REGISTER');
    peer.reply(first, 423, { 'min-expires': '1800' });
    const second = await peer.nextRequest('REGISTER');
    assert.equal(second.headers.get('expires'), '1800');
    peer.reply(second, 200, { expires: '1800' });
    assert.equal((await pending).expires, 1800);
  });

  it('refreshes before expiry on the same Call-ID, with credentials up front', async () => {
    const { ua, peer } = await start();
    const first = await Promise.all([ua.register({ expires: 1 }), serveRegister(peer, 1)]).then(([, request]) => request);
    const refresh = await peer.nextRequest('REGISTER'); // due after 0.5 s
    assert.equal(refresh.headers.get('call-id'), first.headers.get('call-id'));
    assert.ok(cseq(refresh).seq > cseq(first).seq);
    assert.equal(verify(refresh).ok, true, 'pre-emptive credentials with the next nonce count');
    const registered = new Promise((resolve) => ua.once('registered', resolve));
    peer.reply(refresh, 200, { expires: '600' });
    await registered;
    assert.equal(ua.registered, true);
  });

  it('reports a failed refresh through error and unregistered events', async () => {
    const { ua, peer } = await start();
    await Promise.all([ua.register({ expires: 1 }), serveRegister(peer, 1)]);
    const errors: ClientError[] = [];
    ua.on('error', (e) => errors.push(e as ClientError));
    const unregistered = new Promise<{ error?: ClientError }>((resolve) => ua.once('unregistered', resolve));
    peer.reply(await peer.nextRequest('REGISTER'), 403);
    const event = await unregistered;
    assert.equal(event.error?.code, 'REGISTER_FAILED');
    assert.equal(event.error?.status, 403);
    assert.equal(errors.length, 1);
    assert.equal(ua.registered, false);
  });

  it('rejects with REGISTER_FAILED on a non-2xx final response', async () => {
    const { ua, peer } = await start();
    const pending = ua.register();
    peer.reply(await peer.nextRequest('REGISTER'), 403);
    await assert.rejects(pending, (e: unknown) => e instanceof ClientError && e.code === 'REGISTER_FAILED' && e.status === 403 && e.reason === 'Forbidden');
  });

  it('rejects with AUTH_FAILED when the answered challenge is refused', async () => {
    const { ua, peer } = await start({ password: 'wrong' });
    const pending = ua.register();
    peer.challenge(await peer.nextRequest('REGISTER'));
    const answered = await peer.nextRequest('REGISTER');
    assert.equal(verify(answered).ok, false);
    peer.challenge(answered);
    await assert.rejects(pending, (e: unknown) => e instanceof ClientError && e.code === 'AUTH_FAILED' && e.status === 401);
    assert.equal(peer.received.length, 0, 'one challenge answered, not more');
  });

  it('unregisters with Expires 0 for its contact (§10.2.2)', async () => {
    const { ua, peer } = await start();
    await Promise.all([ua.register(), serveRegister(peer)]);
    const unregistered = new Promise((resolve) => ua.once('unregistered', resolve));
    const pending = ua.unregister();
    const request = await peer.nextRequest('REGISTER');
    assert.equal(request.headers.get('expires'), '0');
    assert.equal(request.headers.get('contact'), '<sip:alice@192.0.2.7:50123;transport=tcp>;expires=0');
    assert.equal(verify(request).ok, true);
    peer.reply(request, 200);
    assert.equal((await pending).expires, 0);
    await unregistered;
    assert.equal(ua.registered, false);
  });
});

describe('SipClient requests', () => {
  it('sends MESSAGE, answers a 407 once, and reuses the credentials next time', async () => {
    const { ua, peer } = await start();
    const pending = ua.sendMessage('sip:bob@parley.local', 'hello, Bob');
    const first = await peer.nextRequest('MESSAGE');
    assert.equal(first.uri, 'sip:bob@parley.local');
    assert.equal(first.headers.get('to'), '<sip:bob@parley.local>');
    assert.equal(first.headers.get('content-type'), 'text/plain;charset=utf-8');
    assert.equal(first.body.toString(), 'hello, Bob');
    assert.equal(first.headers.has('contact'), false);
    peer.challenge(first, 407);
    const second = await peer.nextRequest('MESSAGE');
    assert.equal(verify(second, 'proxy-authorization').ok, true);
    assert.equal(second.headers.get('call-id'), first.headers.get('call-id'));
    assert.equal(cseq(second).seq, cseq(first).seq + 1);
    peer.reply(second, 202);
    const result = await pending;
    assert.equal(result.status, 202);
    assert.equal(result.reason, 'Accepted');

    const again = ua.sendMessage('sip:bob@parley.local', 'second', { contentType: 'text/html', headers: { Subject: 'x' } });
    const third = await peer.nextRequest('MESSAGE');
    assert.notEqual(third.headers.get('call-id'), first.headers.get('call-id'));
    assert.equal(verify(third, 'proxy-authorization').ok, true);
    assert.equal(third.headers.get('content-type'), 'text/html');
    assert.equal(third.headers.get('subject'), 'x');
    peer.reply(third, 200);
    assert.equal((await again).status, 200);
  });

  it('resolves with error statuses and ignores provisional responses', async () => {
    const { ua, peer } = await start();
    const pending = ua.sendMessage('sip:nobody@parley.local', 'hi');
    const request = await peer.nextRequest('MESSAGE');
    peer.reply(request, 100);
    peer.reply(request, 404);
    const result = await pending;
    assert.equal(result.status, 404);
    assert.equal(result.headers.get('call-id'), request.headers.get('call-id'));
  });

  it('ignores a response with two Vias and one for another method (§8.1.3.3, §17.1.3)', async () => {
    const { ua, peer } = await start();
    const pending = ua.request('OPTIONS', 'sip:parley.local');
    const request = await peer.nextRequest('OPTIONS');
    const twoVias = buildResponse(request, 500);
    twoVias.headers.append('via', 'SIP/2.0/TCP 10.9.9.9;branch=z9hG4bKother');
    peer.inject(twoVias);
    const otherMethod = buildResponse(request, 500);
    otherMethod.headers.set('cseq', `${cseq(request).seq} MESSAGE`);
    peer.inject(otherMethod);
    peer.reply(request, 200, { allow: 'MESSAGE' });
    const result = await pending;
    assert.equal(result.status, 200);
    assert.equal(result.headers.get('allow'), 'MESSAGE');
  });

  it('times out with TIMEOUT after requestTimeoutMs', async () => {
    const { ua, peer } = await start({ requestTimeoutMs: 50 });
    const pending = ua.sendMessage('sip:bob@parley.local', 'anyone?');
    await peer.nextRequest('MESSAGE');
    await assert.rejects(pending, (e: unknown) => e instanceof ClientError && e.code === 'TIMEOUT');
  });

  it('rejects pending requests with DISCONNECTED when the connection drops', async () => {
    const { ua, peer } = await start();
    const disconnected = new Promise<{ error?: Error }>((resolve) => ua.once('disconnected', resolve));
    const pending = ua.sendMessage('sip:bob@parley.local', 'bye');
    await peer.nextRequest('MESSAGE');
    peer.drop();
    await assert.rejects(pending, (e: unknown) => e instanceof ClientError && e.code === 'DISCONNECTED');
    assert.ok((await disconnected).error instanceof Error);
    assert.equal(ua.connected, false);
    // lost, not never connected: a message sent now fails DISCONNECTED (never dropped silently)
    await assert.rejects(ua.sendMessage('sip:bob@parley.local', 'x'), (e: unknown) => e instanceof ClientError && e.code === 'DISCONNECTED');
  });

  it('close() rejects pending requests and reports disconnected without error', async () => {
    const { ua, peer } = await start();
    const events: Array<{ error?: Error }> = [];
    ua.on('disconnected', (e) => events.push(e));
    const pending = ua.request('OPTIONS', 'sip:parley.local');
    await peer.nextRequest('OPTIONS');
    await ua.close();
    await assert.rejects(pending, (e: unknown) => e instanceof ClientError && e.code === 'DISCONNECTED');
    assert.deepEqual(events, [{}]);
  });

  it('adds a Contact and dialog fields when asked (for SUBSCRIBE and friends)', async () => {
    const { ua, peer } = await start();
    const pending = ua.request('SUBSCRIBE', 'sip:bob@parley.local', { contact: true, callId: 'sub-1', cseq: 5, fromTag: 'ft', to: '<sip:bob@parley.local>;tag=tt', headers: { event: 'presence', expires: '600' } });
    const request = await peer.nextRequest('SUBSCRIBE');
    assert.equal(request.headers.get('contact'), '<sip:alice@192.0.2.7:50123;transport=tcp>');
    assert.equal(request.headers.get('call-id'), 'sub-1');
    assert.equal(request.headers.get('cseq'), '5 SUBSCRIBE');
    assert.match(request.headers.get('from') ?? '', /;tag=ft$/);
    assert.equal(request.headers.get('to'), '<sip:bob@parley.local>;tag=tt');
    assert.equal(request.headers.get('event'), 'presence');
    peer.reply(request, 200);
    assert.equal((await pending).status, 200);
  });
});

describe('SipClient as UAS', () => {
  it('answers an incoming MESSAGE with 200 and a To tag, then emits message', async () => {
    const { ua, peer } = await start();
    const messages: Array<Parameters<Parameters<typeof ua.on<'message'>>[1]>[0]> = [];
    ua.on('message', (m) => messages.push(m));
    peer.inject(incoming('MESSAGE', 'héllo', { 'content-type': 'text/plain;charset=utf-8' }));
    const response = await peer.nextResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('to') ?? '', /^<sip:alice@parley\.local>;tag=\w+$/);
    assert.equal(response.headers.get('via'), 'SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKsrv1');
    assert.equal(messages.length, 1);
    const m = messages[0];
    assert.equal(m?.from, 'sip:bob@parley.local');
    assert.equal(m?.fromDisplayName, 'Bob');
    assert.equal(m?.to, 'sip:alice@parley.local');
    assert.equal(m?.contentType, 'text/plain;charset=utf-8');
    assert.equal(m?.body, 'héllo');
    assert.deepEqual(m?.raw, Buffer.from('héllo'));
    assert.equal(m?.request.method, 'MESSAGE');
    assert.equal(m?.assertedIdentity, null, 'no P-Asserted-Identity, nothing asserted');
  });

  it("exposes the server's P-Asserted-Identity apart from the From the sender chose (RFC 3325)", async () => {
    const { ua, peer } = await start();
    const messages: Array<Parameters<Parameters<typeof ua.on<'message'>>[1]>[0]> = [];
    ua.on('message', (m) => messages.push(m));
    peer.inject(incoming('MESSAGE', 'hi', { from: '"The CEO" <sip:bob@parley.local>;tag=b1', 'p-asserted-identity': '<tel:+15551234>, "Bob Builder" <sip:bob@parley.local>' }));
    assert.equal((await peer.nextResponse()).status, 200);
    peer.inject(incoming('MESSAGE', 'hi', { 'p-asserted-identity': 'not an address' }));
    assert.equal((await peer.nextResponse()).status, 200);
    assert.equal(messages[0]?.fromDisplayName, 'The CEO');
    assert.deepEqual(messages[0]?.assertedIdentity, { uri: 'sip:bob@parley.local', displayName: 'Bob Builder' }, 'the sip identity, not the tel one');
    assert.equal(messages[1]?.assertedIdentity, null, 'an unreadable assertion asserts nothing');
  });

  it('lets onMessage choose the status; no message event for a rejection', async () => {
    const { ua, peer } = await start({ onMessage: async (m) => (m.contentType.startsWith('text/') ? 200 : 415) });
    let count = 0;
    ua.on('message', () => count++);
    peer.inject(incoming('MESSAGE', '{}', { 'content-type': 'application/json' }));
    assert.equal((await peer.nextResponse()).status, 415);
    assert.equal(count, 0);
  });

  it('answers OPTIONS with 200 and Allow, other methods with 405, and never ACK', async () => {
    const { peer } = await start();
    peer.inject(incoming('ACK'));
    peer.inject(incoming('OPTIONS'));
    const options = await peer.nextResponse();
    assert.equal(options.status, 200);
    assert.equal(cseq(options).method, 'OPTIONS', 'the ACK got no answer');
    assert.deepEqual(options.headers.getAll('allow'), ['MESSAGE', 'OPTIONS']);
    peer.inject(incoming('INFO'));
    const info = await peer.nextResponse();
    assert.equal(info.status, 405);
    assert.deepEqual(info.headers.getAll('allow'), ['MESSAGE', 'OPTIONS']);
  });

  it('hands other requests to request listeners, who answer with respond()', async () => {
    const { ua, peer } = await start();
    ua.on('request', (request) => ua.respond(request, 200, 'Fine', { event: request.headers.get('event') ?? '' }));
    peer.inject(incoming('NOTIFY', '', { event: 'presence' }));
    const response = await peer.nextResponse();
    assert.equal(response.status, 200);
    assert.equal(response.reason, 'Fine');
    assert.equal(response.headers.get('event'), 'presence');
  });

  it('answers 400 to a request without the mandatory header fields', async () => {
    const { ua, peer } = await start();
    const errors: Error[] = [];
    ua.on('error', (e) => errors.push(e));
    const bad = incoming('MESSAGE', 'x');
    bad.headers.delete('call-id');
    peer.inject(bad);
    // the answer lacks a Call-ID too (there was none to copy), so only its first line is checked
    assert.match(peer.wire.at(-1) ?? '', /^SIP\/2\.0 400 /);
    assert.match(peer.wire.at(-1) ?? '', /\r\nVia: SIP\/2\.0\/TCP 10\.0\.0\.1:5060;branch=z9hG4bKsrv1\r\n/);
    assert.equal(errors.length, 1);
  });
});

describe('SipClient keep-alive and WebSocket framing', () => {
  it('sends CRLFCRLF pings on stream transports when enabled (to a server that pongs)', async () => {
    const { peer } = await start({ keepAliveIntervalMs: 20 });
    peer.pongs = true;
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.ok(peer.pings >= 2, `pings: ${peer.pings}`);
  });

  it('answers a ping from the server with a CRLF pong', async () => {
    const { peer } = await start();
    const sent: string[] = [];
    const send = peer.transport.send.bind(peer.transport);
    peer.transport.send = (data) => {
      sent.push(data.toString());
      send(data);
    };
    peer.inject('\r\n\r\n');
    assert.deepEqual(sent, ['\r\n']);
  });

  it('over a message transport uses Via WS, a .invalid host, transport=ws, and OPTIONS as its keep-alive', async () => {
    const { ua, peer } = await start({ server: 'ws://127.0.0.1:8080/sip', keepAliveIntervalMs: 20 }, 'message');
    const pending = ua.register();
    const request = await peer.nextRequest('REGISTER');
    const via = parseVia(request.headers.get('via') ?? '');
    assert.equal(via.transport, 'WS');
    assert.equal(via.host, 'abcdefgh.invalid');
    assert.equal(request.headers.get('contact'), '<sip:alice@abcdefgh.invalid;transport=ws>');
    peer.reply(request, 200, { expires: '600' });
    assert.equal((await pending).status, 200);
    const ping = await peer.nextRequest('OPTIONS');
    assert.equal(parseVia(ping.headers.get('via') ?? '').transport, 'WS');
    // the first keep-alive is a CRLFCRLF too, in case the server pongs over WebSocket; this one does not
    assert.equal(peer.pings, 1);
  });
});

describe('SipClient options', () => {
  it('rejects a malformed AOR or server URL with INVALID_ARGUMENT', () => {
    const isInvalid = (e: unknown) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT';
    assert.throws(() => new SipClient({ server: 'tcp://127.0.0.1:5060', aor: 'alice', password: 'pw' }), isInvalid);
    assert.throws(() => new SipClient({ server: 'tcp://127.0.0.1:5060', aor: 'sip:parley.local', password: 'pw' }), isInvalid);
    assert.throws(() => new SipClient({ server: 'udp://127.0.0.1:5060', aor: 'sip:alice@parley.local', password: 'pw' }), isInvalid);
  });

  it('requires connect() before requests', async () => {
    const ua = new SipClient({ server: 'tcp://127.0.0.1:5060', aor: 'sip:alice@parley.local', password: 'pw' });
    await assert.rejects(ua.register(), (e: unknown) => e instanceof ClientError && e.code === 'NOT_CONNECTED');
    await assert.rejects(ua.request('OPTIONS', 'sip:parley.local'), (e: unknown) => e instanceof ClientError && e.code === 'NOT_CONNECTED');
  });
});
