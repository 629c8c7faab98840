// The SDK's instant messaging against a running `parley serve`, over TCP and over WebSocket:
// read receipts (RFC 5438 display notifications in CPIM) both ways, typing indications (RFC 3994)
// both ways, the 202's Warning text for an offline recipient, the offline gate refusing receipts
// and typing for the mailbox while keeping a CPIM-wrapped message as its text; and the browser
// bundle of the SDK (shims for Buffer and digest hashes) doing the same over a real WebSocket.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { browserBuildOptions } from '../../src/client/browser-build.ts';
import type * as BrowserSdk from '../../src/client/browser.ts';
import type { DisplayedEvent, IncomingMessage, SipClient, TypingEvent } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN, { register: true });

before(async () => {
  server = await startServer({ domain: DOMAIN, users: ['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
  const r = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

/** The `message`, `typing` and `displayed` events of a client, each in order. */
function inbox(c: Pick<SipClient, 'on'>) {
  const opts = (what: string) => ({ what, timeoutMs: 5000, context: () => server.logs().slice(-3000) });
  return {
    messages: arrivals<IncomingMessage>((push) => c.on('message', push), opts('message')),
    typing: arrivals<TypingEvent>((push) => c.on('typing', push), opts('typing')),
    displayed: arrivals<DisplayedEvent>((push) => c.on('displayed', push), opts('displayed')),
  };
}

for (const over of ['tcp', 'ws'] as const) {
  describe(`SDK instant messaging over ${over}`, () => {
    it('read receipts both ways: a message asking for display notification, and the displayed IMDN back', async () => {
      const alice = await people.connect('alice', { over });
      const bob = await people.connect('bob', { over });
      const a = inbox(alice);
      const b = inbox(bob);

      const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'did you see this?', { requestDisplayNotification: true });
      assert.equal(sent.status, 200);
      assert.match(sent.imdnMessageId ?? '', /^\w{20}$/);
      const got = await b.messages.next();
      assert.equal(got.text, 'did you see this?');
      assert.equal(got.contentType, 'message/cpim');
      assert.equal(got.imdnMessageId, sent.imdnMessageId);
      assert.equal(got.displayNotificationRequested, true);
      assert.equal(got.assertedIdentity?.uri, `sip:alice@${DOMAIN}`);

      assert.equal((await bob.sendDisplayed(`sip:alice@${DOMAIN}`, got.imdnMessageId ?? '')).status, 200);
      assert.deepEqual(await a.displayed.next(), { from: `bob@${DOMAIN}`, imdnMessageId: sent.imdnMessageId });

      // and the other way
      const back = await bob.sendMessage(`sip:alice@${DOMAIN}`, 'yes — and this?', { requestDisplayNotification: true });
      const gotBack = await a.messages.next();
      assert.equal(gotBack.text, 'yes — and this?');
      assert.equal(gotBack.displayNotificationRequested, true);
      await alice.sendDisplayed(`sip:bob@${DOMAIN}`, gotBack.imdnMessageId ?? '');
      assert.deepEqual(await b.displayed.next(), { from: `alice@${DOMAIN}`, imdnMessageId: back.imdnMessageId });
      assert.equal(a.messages.queued + b.messages.queued, 0, 'no receipt arrived as a message');
    });

    it('typing both ways (RFC 3994), ended by the message itself; never a message event', async () => {
      const alice = await people.connect('alice', { over });
      const bob = await people.connect('bob', { over });
      const a = inbox(alice);
      const b = inbox(bob);

      assert.equal((await alice.sendTyping(`sip:bob@${DOMAIN}`, true)).status, 200);
      assert.deepEqual(await b.typing.next(), { from: `alice@${DOMAIN}`, active: true });
      await alice.sendMessage(`sip:bob@${DOMAIN}`, 'typed');
      assert.deepEqual(await b.typing.next(), { from: `alice@${DOMAIN}`, active: false }, 'the message ends the typing state');
      assert.equal((await b.messages.next()).text, 'typed');

      await bob.sendTyping(`sip:alice@${DOMAIN}`, true);
      assert.deepEqual(await a.typing.next(), { from: `bob@${DOMAIN}`, active: true });
      await bob.sendTyping(`sip:alice@${DOMAIN}`, false);
      assert.deepEqual(await a.typing.next(), { from: `bob@${DOMAIN}`, active: false });
      assert.equal(a.messages.queued + b.messages.queued, 0);
    });
  });
}

describe('SDK and the offline gate', () => {
  it("202 with the server's Warning text; receipts and typing to an offline user are refused 480 and not kept; the CPIM text lands in the mailbox as text", async () => {
    const alice = await people.connect('alice', { over: 'ws' });
    const offline = `sip:dave@${DOMAIN}`;

    const stored = await alice.sendMessage(offline, 'see you <tomorrow> & after', { requestDisplayNotification: true });
    assert.equal(stored.status, 202);
    assert.match(stored.warning ?? '', /^dave@parley\.test is offline; stored for delivery to their mailbox/);
    assert.doesNotMatch(stored.warning ?? '', /^399|"/, 'the text alone, without code, agent or quotes');

    const receipt = await alice.sendDisplayed(offline, 'some-message-id');
    assert.equal(receipt.status, 480);
    assert.equal(receipt.warning, 'dave@parley.test is not signed in; read receipts (message disposition notifications) are not kept for later');
    const typing = await alice.sendTyping(offline, true);
    assert.equal(typing.status, 480);
    assert.equal(typing.warning, 'dave@parley.test is not signed in; typing notifications are not kept for later');

    // after the pickup delay: one missed conversation whose body is the text, not the CPIM wrapper
    const dave = await people.connect('dave', { over: 'ws', register: false });
    const ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
    const missed = await eventually('the missed conversation', async () => {
      const list = await dave.missedConversations({ ewsUrl });
      return list.length > 0 ? list : undefined;
    });
    assert.equal(missed.length, 1, 'the receipt and the typing were not kept');
    const item = await dave.mailbox(ewsUrl).getItem(missed[0]?.itemId ?? '');
    assert.match(item.bodyText, /see you <tomorrow> & after/);
    assert.doesNotMatch(item.bodyText, /imdn|Disposition-Notification|NS:|DateTime/i);
  });
});

describe('SDK browser bundle over a real WebSocket', () => {
  it('BrowserSipClient (bundled with the shims) signs in with digest, exchanges a read receipt and typing', async () => {
    const entry = fileURLToPath(new URL('../../src/client/browser.ts', import.meta.url));
    const built = await esbuild.build({ ...browserBuildOptions(), entryPoints: [entry], write: false, logLevel: 'silent' });
    const sdk = (await import(`data:text/javascript;base64,${Buffer.from(built.outputFiles[0]?.text ?? '').toString('base64')}`)) as typeof BrowserSdk;
    const erin = new sdk.BrowserSipClient({ server: server.wsUrl, aor: `sip:erin@${DOMAIN}`, password: 'erin-pw', requestTimeoutMs: 5000 });
    try {
      assert.throws(() => new sdk.BrowserSipClient({ server: 'tcp://127.0.0.1:5060', aor: `sip:erin@${DOMAIN}`, password: 'x' }), /WebSocket only/);
      const e = inbox(erin);
      await erin.connect();
      // digest through @noble/hashes: the server accepts it (SHA-256 preferred)
      assert.equal((await erin.register({ expires: 300 })).status, 200);
      const alice = await people.connect('alice', { over: 'tcp' });
      const a = inbox(alice);
      const sent = await erin.sendMessage(`sip:alice@${DOMAIN}`, 'from the browser bundle', { requestDisplayNotification: true });
      assert.equal(sent.status, 200);
      const got = await a.messages.next();
      assert.equal(got.text, 'from the browser bundle');
      await alice.sendDisplayed(`sip:erin@${DOMAIN}`, got.imdnMessageId ?? '');
      assert.deepEqual(await e.displayed.next(), { from: `alice@${DOMAIN}`, imdnMessageId: sent.imdnMessageId });
      await alice.sendTyping(`sip:erin@${DOMAIN}`, true);
      assert.deepEqual(await e.typing.next(), { from: `alice@${DOMAIN}`, active: true });
      await alice.sendMessage(`sip:erin@${DOMAIN}`, 'ünïcode ✓ back');
      assert.equal((await e.messages.next()).text, 'ünïcode ✓ back');
      await erin.unregister();
    } finally {
      await erin.close();
    }
  });
});
