// End to end against a real `parley serve`: the SDK over TCP and WebSocket, and raw requests for
// what a well-behaved client never sends.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { IncomingMessage, SipClient } from '../../src/client/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';
import { rawRequest, tcpExchange, udpExchange } from './raw-sip.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
    ],
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

function nextMessage(c: SipClient): Promise<IncomingMessage> {
  return new Promise((resolve) => c.once('message', resolve));
}

describe('instant messages between online users', () => {
  it('registers alice over TCP and bob over WebSocket, and relays messages both ways', async () => {
    const alice = await people.connect('alice', { over: 'tcp' });
    const bob = await people.connect('bob', { over: 'ws' });
    await alice.register({ expires: 300 });
    await bob.register({ expires: 300 });

    const toBob = nextMessage(bob);
    const res1 = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'Hello Bob — ünïcode ✓');
    assert.equal(res1.status, 200);
    const got1 = await toBob;
    assert.equal(got1.body, 'Hello Bob — ünïcode ✓');
    assert.match(got1.from, /^sip:alice@parley\.test/);

    const toAlice = nextMessage(alice);
    const res2 = await bob.sendMessage(`sip:alice@${DOMAIN}`, '<b>hi</b>', { contentType: 'text/html' });
    assert.equal(res2.status, 200);
    const got2 = await toAlice;
    assert.equal(got2.body, '<b>hi</b>');
    assert.equal(got2.contentType, 'text/html');
  });

  it('passes CPIM and is-composing bodies through unchanged', async () => {
    const alice = await people.connect('alice', { over: 'tcp' });
    const bob = await people.connect('bob', { over: 'ws' });
    await bob.register({ expires: 300 });
    const cpim = 'From: <sip:alice@parley.test>\r\nTo: <sip:bob@parley.test>\r\nDateTime: 2026-11-25T10:00:00Z\r\n\r\nContent-Type: text/plain\r\n\r\nwrapped hello';
    const got = nextMessage(bob);
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, cpim, { contentType: 'message/cpim' })).status, 200);
    const m = await got;
    assert.equal(m.contentType, 'message/cpim');
    assert.equal(m.body, cpim);
    assert.equal(m.text, 'wrapped hello', 'the SDK unwraps CPIM');
    // the SDK reads an isComposing as a typing indication (RFC 3994), not as a message
    const composing = '<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>';
    const typing = new Promise((resolve) => bob.once('typing', resolve));
    assert.equal((await alice.sendMessage(`sip:bob@${DOMAIN}`, composing, { contentType: 'application/im-iscomposing+xml' })).status, 200);
    assert.deepEqual(await typing, { from: `alice@${DOMAIN}`, active: true });
  });

  it('forks to every registration of the recipient', async () => {
    const phone = await people.connect('carol', { over: 'tcp' });
    const laptop = await people.connect('carol', { over: 'ws' });
    const alice = await people.connect('alice', { over: 'ws' });
    await phone.register({ expires: 300 });
    await laptop.register({ expires: 300 });
    await alice.register({ expires: 300 });
    const both = Promise.all([nextMessage(phone), nextMessage(laptop)]);
    const res = await alice.sendMessage(`sip:carol@${DOMAIN}`, 'to all your devices');
    assert.equal(res.status, 200);
    const [a, b] = await both;
    assert.equal(a.body, 'to all your devices');
    assert.equal(b.body, 'to all your devices');
  });

  it('answers 202 with a Warning for a user who is not signed in: the message is kept for their mailbox', async () => {
    const carol = await people.connect('carol', { over: 'tcp' });
    const res = await carol.sendMessage(`sip:dave@${DOMAIN}`, 'are you there?');
    assert.equal(res.status, 202);
    assert.match(res.headers.get('warning') ?? '', /dave@parley\.test is offline; stored for delivery to their mailbox/);
  });

  it('drops a binding when its TCP connection closes', async () => {
    const dave = await people.connect('dave', { over: 'tcp' });
    await dave.register({ expires: 300 });
    const carol = await people.connect('carol', { over: 'ws' });
    assert.equal((await carol.sendMessage(`sip:dave@${DOMAIN}`, 'one')).status, 200);
    await dave.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await carol.sendMessage(`sip:dave@${DOMAIN}`, 'two')).status, 202, 'offline now: kept for the mailbox');
  });

  it('stops relaying after the recipient unregisters', async () => {
    const bob = await people.connect('bob', { over: 'tcp' });
    const carol = await people.connect('carol', { over: 'tcp' });
    // Start from a clean slate: earlier tests left bob registered over other connections.
    await bob.request('REGISTER', `sip:${DOMAIN}`, { to: `sip:bob@${DOMAIN}`, headers: { Contact: '*', Expires: '0' }, contact: false });
    await bob.register({ expires: 300 });
    assert.equal((await carol.sendMessage(`sip:bob@${DOMAIN}`, 'before')).status, 200);
    await bob.unregister();
    const after = await carol.sendMessage(`sip:bob@${DOMAIN}`, 'after');
    assert.equal(after.status, 202, 'offline now: kept for the mailbox');
  });

  it('answers a CRLFCRLF keep-alive ping with a CRLF pong (RFC 5626 §3.5.1)', async () => {
    const socket = net.connect(server.tcp.port, server.tcp.host);
    const pong = await new Promise<string>((resolve, reject) => {
      socket.on('connect', () => socket.write('\r\n\r\n'));
      socket.once('data', (d: Buffer) => resolve(d.toString()));
      socket.on('error', reject);
    });
    socket.destroy();
    assert.equal(pong, '\r\n');
  });

  it('refuses a wrong password', async () => {
    const mallory = await people.connect('alice', { over: 'tcp', password: 'not-her-password' });
    await assert.rejects(mallory.register(), (err: Error & { status?: number }) => err.status === 403 || err.status === 401);
  });

  it('sees a user added while the server runs', async () => {
    await server.addUser({ address: `erin@${DOMAIN}`, password: 'erin-pw' });
    const erin = await people.connect('erin', { over: 'tcp' });
    const reg = await erin.register({ expires: 300 });
    assert.ok(reg.expires > 0);
  });
});

describe('requests Parley refuses, each with a precise answer', () => {
  const from = `sip:alice@${DOMAIN}`;

  it('challenges an unauthenticated MESSAGE with 407, offering SHA-256 and MD5', async () => {
    const res = await tcpExchange(server.tcp, rawRequest('MESSAGE', `sip:bob@${DOMAIN}`, { from, to: `sip:bob@${DOMAIN}`, headers: ['Content-Type: text/plain'], body: 'hi' }));
    assert.equal(res.status, 407);
    const challenges = res.headers.getAll('proxy-authenticate');
    assert.equal(challenges.length, 2);
    assert.match(challenges[0] ?? '', /algorithm=SHA-256/);
    assert.match(challenges[1] ?? '', /algorithm=MD5/);
  });

  it('challenges an unauthenticated REGISTER with 401', async () => {
    const res = await tcpExchange(server.tcp, rawRequest('REGISTER', `sip:${DOMAIN}`, { from, to: from, headers: [`Contact: <sip:alice@127.0.0.1:9;transport=tcp>`] }));
    assert.equal(res.status, 401);
    assert.equal(res.headers.getAll('www-authenticate').length, 2);
  });

  it('answers 404 for an unknown user, 403 for a foreign domain, 415 for an odd body, 413 for a big one', async () => {
    const alice = await people.connect('alice', { over: 'tcp' });
    const unknown = await alice.sendMessage(`sip:nobody@${DOMAIN}`, 'hello?');
    assert.equal(unknown.status, 404);
    const foreign = await alice.sendMessage('sip:someone@example.com', 'relay me');
    assert.equal(foreign.status, 403);
    assert.match(foreign.headers.get('warning') ?? '', /example\.com/);
    const odd = await alice.sendMessage(`sip:bob@${DOMAIN}`, '{}', { contentType: 'application/json' });
    assert.equal(odd.status, 415);
    assert.match(odd.headers.get('accept') ?? '', /text\/plain/);
    const big = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'x'.repeat(64 * 1024 + 1));
    assert.equal(big.status, 413);
  });

  it('forbids sending as someone else', async () => {
    const alice = await people.connect('alice', { over: 'tcp' });
    const res = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: 'I am carol', contentType: 'text/plain', headers: { From: `<sip:carol@${DOMAIN}>;tag=forged` } });
    assert.equal(res.status, 403);
  });

  it('answers OPTIONS with 200 and Allow, INVITE with 405 and Allow', async () => {
    const options = await tcpExchange(server.tcp, rawRequest('OPTIONS', `sip:${DOMAIN}`, { from, to: `sip:${DOMAIN}` }));
    assert.equal(options.status, 200);
    assert.match(options.headers.getAll('allow').join(', '), /MESSAGE/);
    const invite = await udpExchange(server.udp, rawRequest('INVITE', `sip:bob@${DOMAIN}`, { from, to: `sip:bob@${DOMAIN}`, transport: 'UDP' }));
    assert.equal(invite?.status, 405);
    const allow = invite?.headers.getAll('allow').join(', ') ?? '';
    assert.match(allow, /REGISTER/);
    assert.doesNotMatch(allow, /INVITE/);
  });

  it('answers a malformed request with 400 or 505 and a Warning, and keeps serving', async () => {
    const badVersion = rawRequest('OPTIONS', `sip:${DOMAIN}`, { from, to: `sip:${DOMAIN}` }).replace('SIP/2.0\r\n', 'SIP/3.0\r\n');
    const res = await tcpExchange(server.tcp, badVersion);
    assert.equal(res.status, 505);
    assert.ok(res.headers.get('warning'));
    const badFrom = rawRequest('MESSAGE', `sip:bob@${DOMAIN}`, { from, to: `sip:bob@${DOMAIN}` }).replace(/From: <[^>]*>/, 'From: <sip:@@>');
    const res400 = await tcpExchange(server.tcp, badFrom);
    assert.equal(res400.status, 400);
    assert.match(res400.headers.get('warning') ?? '', /From/);
    // A CSeq that cannot be read makes a response the client could not match: none is sent.
    const badCSeq = rawRequest('MESSAGE', `sip:bob@${DOMAIN}`, { from, to: `sip:bob@${DOMAIN}` }).replace('CSeq: 1 MESSAGE', 'CSeq: banana MESSAGE');
    await assert.rejects(tcpExchange(server.tcp, badCSeq, 500), /no response/);
    const alive = await tcpExchange(server.tcp, rawRequest('OPTIONS', `sip:${DOMAIN}`, { from, to: `sip:${DOMAIN}` }));
    assert.equal(alive.status, 200);
  });

  it('drops garbage without an answer and keeps serving UDP', async () => {
    assert.equal(await udpExchange(server.udp, Buffer.from([0, 1, 2, 3, 255, 13, 10, 13, 10]), 500), null);
    const alive = await udpExchange(server.udp, rawRequest('OPTIONS', `sip:${DOMAIN}`, { from, to: `sip:${DOMAIN}`, transport: 'UDP' }));
    assert.equal(alive?.status, 200);
  });
});
