// Interop with JsSIP (the browser SIP library, run in Node over WebSocket) against a real
// `parley serve` with its default digest offer: SHA-256 first, then MD5 (RFC 8760). JsSIP
// answers MD5 only and reads the last WWW-Authenticate / Proxy-Authenticate field, so this
// suite also checks that the server sends the two challenges as two header fields, MD5 last.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subscriber } from 'jssip/lib/Subscriber.js';
import { startJsSipUser, type JsSipUser } from '../harness/jssip.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
const users: JsSipUser[] = [];

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
  // offline messages are delivered at once in this suite
  const pickup = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:00']);
  assert.equal(pickup.code, 0, pickup.stderr);
});

after(async () => {
  await Promise.all(users.map((u) => u.stop().catch(() => {})));
  await server?.stop();
});

async function user(name: string, password: string, displayName?: string): Promise<JsSipUser> {
  try {
    const u = await startJsSipUser({
      wsUrl: server.wsUrl,
      uri: `sip:${name}@${DOMAIN}`,
      password,
      ...(displayName !== undefined ? { displayName } : {}),
    });
    users.push(u);
    return u;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${message}\n--- server log (tail) ---\n${server.logs().slice(-6_000)}`);
  }
}

describe('JsSIP over WebSocket', () => {
  let alice: JsSipUser;
  let bob: JsSipUser;

  it('registers two users (digest MD5 chosen among SHA-256 and MD5)', { timeout: 30_000 }, async () => {
    alice = await user('alice', 'alice-pw', 'Alice');
    bob = await user('bob', 'bob-pw', 'Bob');
    assert.ok(alice.ua.isRegistered());
    assert.ok(bob.ua.isRegistered());
  });

  it('relays a MESSAGE from alice to bob and the 200 back', { timeout: 30_000 }, async () => {
    const text = 'Hello Bob from JsSIP — ünïcode ✓';
    const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, text);
    assert.equal(sent.status, 200, JSON.stringify(sent));
    const got = await bob.nextMessage();
    assert.equal(got.body, text);
    assert.equal(got.from, `sip:alice@${DOMAIN}`);
    assert.match(got.contentType ?? '', /^text\/plain/);
  });

  it('relays a MESSAGE from bob to alice', { timeout: 30_000 }, async () => {
    const sent = await bob.sendMessage(`sip:alice@${DOMAIN}`, '<b>hi Alice</b>', 'text/html');
    assert.equal(sent.status, 200, JSON.stringify(sent));
    const got = await alice.nextMessage();
    assert.equal(got.body, '<b>hi Alice</b>');
    assert.equal(got.from, `sip:bob@${DOMAIN}`);
    assert.match(got.contentType ?? '', /^text\/html/);
  });

  it('keeps several messages in order', { timeout: 30_000 }, async () => {
    for (let i = 1; i <= 3; i++) {
      const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, `message ${i}`);
      assert.equal(sent.status, 200);
    }
    for (let i = 1; i <= 3; i++) assert.equal((await bob.nextMessage()).body, `message ${i}`);
  });

  it('answers 202 for a user with no registration (kept for their mailbox) and 404 for an unknown one', { timeout: 30_000 }, async () => {
    const offline = await alice.sendMessage(`sip:carol@${DOMAIN}`, 'are you there?');
    assert.equal(offline.status, 202, JSON.stringify(offline));
    const unknown = await alice.sendMessage(`sip:nobody@${DOMAIN}`, 'hello?');
    assert.equal(unknown.status, 404, JSON.stringify(unknown));
  });

  it('refuses a registration with a wrong password', { timeout: 30_000 }, async () => {
    await assert.rejects(
      startJsSipUser({ wsUrl: server.wsUrl, uri: `sip:carol@${DOMAIN}`, password: 'wrong' }),
      /registration failed/,
    );
  });

  it('keeps messages for the mailbox after the receiver stopped (unregistered)', { timeout: 30_000 }, async () => {
    await bob.stop();
    const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'gone?');
    assert.equal(sent.status, 202, JSON.stringify(sent));
  });
});

describe('JsSIP learns of a missed conversation (RFC 3842 message-summary)', () => {
  it('a message sent while dave was offline shows as waiting when his JsSIP client subscribes', { timeout: 30_000 }, async () => {
    const alice = await user('alice', 'alice-pw', 'Alice');
    const sent = await alice.sendMessage(`sip:dave@${DOMAIN}`, 'call me back');
    assert.equal(sent.status, 202, JSON.stringify(sent));
    await eventually('the missed conversation delivered', async () => {
      const r = await runCli(['spooler', 'list', '--user', `dave@${DOMAIN}`, '--state', 'delivered', '--json', ...server.storageArgs]);
      return (JSON.parse(r.stdout) as unknown[]).length > 0 ? true : undefined;
    });
    const dave = await user('dave', 'dave-pw');
    const type = 'application/simple-message-summary';
    const subscriber: Subscriber = dave.ua.subscribe(`sip:dave@${DOMAIN}`, 'message-summary', type, { expires: 600, contentType: type });
    const body = new Promise<string>((resolve) => subscriber.on('notify', (_isFinal, _request, b) => resolve(b ?? '')));
    subscriber.subscribe();
    const summary = await body;
    assert.match(summary, /^Messages-Waiting: yes\r\n/);
    assert.match(summary, /\r\nMessage-Account: sip:dave@parley\.test\r\n/);
    assert.match(summary, /\r\nText-Message: 1\/0\r\n/);
    // end the dialog cleanly (final NOTIFY) before the UA stops, so nothing keeps JsSIP busy
    const terminated = new Promise<number>((resolve) => subscriber.on('terminated', (code) => resolve(code)));
    subscriber.terminate();
    assert.equal(await terminated, subscriber.C.FINAL_NOTIFY_RECEIVED);
    await dave.stop();
  });
});
