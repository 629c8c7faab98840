// The web client end to end, in Debian's Chromium against a real `parley serve`: alice and bob in
// two browser contexts sign in, see each other Available, chat both ways with the typing indicator
// and read receipts; bob sets Busy with a note and alice sees it; bob signs out and alice sees him
// Offline; her next messages are kept for his mailbox ("will be delivered to their mailbox");
// after the (shortened) pickup delay bob signs in on two tabs, both show one new missed
// conversation, and opening it in one tab (alice's text, in order) clears the badge in both.
// Screenshots go to test-artifacts/.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { addContact, contactEntry, launchBrowser, newTab, openChat, openClient, screenshot, signIn, type OpenClient } from '../harness/browser.ts';
import type { DisplayedEvent } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
let server: RunningServer;
let browser: Browser;
let alice: OpenClient;
let bob: OpenClient;
const sdk = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: ALICE, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: BOB, password: 'bob-pw', displayName: 'Bob Brown' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: 'Carol Chen' },
    ],
  });
  // the offline messages become a missed conversation 2 s after the last one (default 2 min)
  const pickup = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:02']);
  assert.equal(pickup.code, 0, pickup.stderr);
  await addContact(server, { user: 'bob', password: 'bob-pw' }, 'alice');
  browser = await launchBrowser();
  alice = await openClient(browser, server);
  bob = await openClient(browser, server);
});

after(async () => {
  await sdk.closeAll();
  await browser?.close();
  await server?.stop();
});

describe('web client: two people in two browsers', () => {
  it('signs both in; alice finds bob in the directory (Ctrl+K), adds him, and each sees the other Available', async () => {
    await signIn(alice.page, 'alice', 'alice-pw'); // user name
    await signIn(bob.page, BOB, 'bob-pw'); // SIP address
    await alice.page.keyboard.press('Control+k');
    const dialog = alice.page.getByRole('dialog', { name: 'Search the directory' });
    await dialog.getByLabel('Name or address').fill('bro');
    const result = dialog.locator(`li.result[data-address="${BOB}"]`);
    await result.getByText('Bob Brown').waitFor();
    await result.getByRole('button', { name: 'Add to contacts' }).click();
    await result.getByText('In contacts').waitFor();
    await alice.page.keyboard.press('Escape');
    await contactEntry(alice.page, BOB).getByText('Available').waitFor();
    await contactEntry(bob.page, ALICE).getByText('Available').waitFor();
    await screenshot(alice.page, 'web-client-1-alice-signed-in');
  });

  it('chats both ways with the typing indicator, per-message status and Seen', async () => {
    await openChat(bob.page, ALICE);
    await openChat(alice.page, BOB);
    await alice.page.locator('#composer-input').pressSequentially('Hello Bob');
    await bob.page.getByTestId('typing').getByText('Alice Adams is typing…').waitFor();
    await alice.page.keyboard.press('Enter');
    await bob.page.locator('.message.in .bubble', { hasText: 'Hello Bob' }).waitFor();
    assert.equal(await bob.page.getByTestId('typing').textContent(), '', 'a message ends the typing indicator');
    // bob's window shows it (focused): alice's message goes from Delivered to Seen
    await alice.page.locator('.message.out', { hasText: 'Hello Bob' }).locator('.status', { hasText: 'Seen' }).waitFor();

    await bob.page.locator('#composer-input').pressSequentially('Hi Alice');
    await alice.page.getByTestId('typing').getByText('Bob Brown is typing…').waitFor();
    await bob.page.locator('#composer-input').press('Shift+Enter');
    await bob.page.locator('#composer-input').pressSequentially('two lines');
    await bob.page.keyboard.press('Enter');
    const reply = alice.page.locator('.message.in .bubble', { hasText: 'Hi Alice' });
    await reply.waitFor();
    assert.equal(await reply.textContent(), 'Hi Alice\ntwo lines');
    await bob.page.locator('.message.out', { hasText: 'Hi Alice' }).locator('.status', { hasText: /Delivered|Seen/ }).waitFor();
    await alice.page.locator('.message.in time').first().waitFor();
    await screenshot(alice.page, 'web-client-2-alice-chat');
    await screenshot(bob.page, 'web-client-2-bob-chat');
  });

  it('counts unread messages per conversation and in the tab title; Alt+Shift+Down opens the next unread', async () => {
    const carol = await sdk.connect('carol', { register: true });
    const readByAlice = arrivals<DisplayedEvent>((push) => carol.on('displayed', push), { what: "alice's displayed report" });
    const ids: string[] = [];
    for (const text of ['Carol here', 'are you free later?']) {
      const sent = await carol.sendMessage(`sip:${ALICE}`, text, { requestDisplayNotification: true });
      assert.equal(sent.status, 200);
      ids.push(sent.imdnMessageId ?? '');
    }
    const item = alice.page.locator(`.chat-item[data-address="carol@${DOMAIN}"]`);
    await item.getByLabel('2 unread messages').waitFor();
    assert.equal(await alice.page.title(), '(2) Parley');
    // alice is looking at bob's conversation: carol's messages are not on screen, so not reported displayed
    assert.equal(readByAlice.queued, 0);
    await alice.page.keyboard.press('Alt+Shift+ArrowDown');
    await alice.page.getByRole('heading', { name: 'Carol Chen' }).waitFor();
    // on screen now: both reported
    assert.deepEqual([(await readByAlice.next(10_000)).imdnMessageId, (await readByAlice.next(10_000)).imdnMessageId].sort(), [...ids].sort());
    await item.locator('.badge').waitFor({ state: 'detached' });
    assert.equal(await alice.page.title(), 'Parley');
    await openChat(alice.page, BOB);
  });

  it('offers Save conversation (a text file of the exchange) until Set-CsClientPolicy -DisableSavingIM $True hides it, without a reload', async () => {
    await openChat(alice.page, BOB);
    const save = alice.page.locator('.chat-header').getByRole('button', { name: 'Save conversation' });
    await save.waitFor();
    const [download] = await Promise.all([alice.page.waitForEvent('download'), save.click()]);
    assert.match(download.suggestedFilename(), /^conversation-bob-at-parley\.test-\d{4}-\d\d-\d\d\.txt$/);
    const path = await download.path();
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^Conversation with Bob Brown\n\n\[[^\]]+\] You: Hello Bob\n\[[^\]]+\] Bob Brown: Hi Alice\n {4}two lines\n/);

    // an administrator forbids saving: the open page learns it from its provisioning subscription
    const off = await runCli(['admin', ...server.storageArgs, 'Set-CsClientPolicy', '-DisableSavingIM', '$True']);
    assert.equal(off.code, 0, off.stderr);
    await save.waitFor({ state: 'detached' });
    await screenshot(alice.page, 'web-client-2b-no-save');
    const on = await runCli(['admin', ...server.storageArgs, 'Set-CsClientPolicy', '-DisableSavingIM', '$False']);
    assert.equal(on.code, 0, on.stderr);
    await save.waitFor();
  });

  it('shows bob Busy with his note to alice', async () => {
    await bob.page.getByLabel('My status').selectOption('Busy');
    await bob.page.getByLabel('Note').fill('in a meeting');
    await bob.page.getByRole('button', { name: 'Save note' }).click();
    const entry = contactEntry(alice.page, BOB);
    await entry.getByText('Busy').waitFor();
    await entry.getByText('in a meeting').waitFor();
    await alice.page.locator('.chat-header').getByText('in a meeting').waitFor();
  });

  it('shows bob Offline once he signs out; alice\'s next messages go to his mailbox', async () => {
    await bob.page.getByRole('button', { name: 'Sign out' }).click();
    await bob.page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    await contactEntry(alice.page, BOB).getByText('Offline').waitFor();
    for (const text of ['first while you were out', 'second <b>while</b> you were out']) {
      await alice.page.locator('#composer-input').fill(text);
      await alice.page.keyboard.press('Enter');
      await alice.page.locator('.message.out', { hasText: text }).locator('.status', { hasText: 'Offline — will be delivered to their mailbox' }).waitFor();
    }
    // the server's Warning text is kept with the status
    const title = await alice.page.locator('.message.out .status span[title]').last().getAttribute('title');
    assert.match(title ?? '', /offline; stored for delivery to their mailbox/);
    await screenshot(alice.page, 'web-client-3-alice-mailbox-status');
  });

  it('after the pickup delay bob signs in on two tabs: one new missed conversation; opening it clears both badges', async () => {
    // a reload with the session gone asks for everything again; sign in afresh
    await bob.page.reload();
    await signIn(bob.page, 'bob', 'bob-pw');
    const badge = bob.page.getByTestId('missed-badge');
    await badge.getByText('1', { exact: true }).waitFor({ timeout: 30_000 });
    // a second tab of the same person: the live session asks only for the password again
    const second = await newTab(bob.context, server, bob.problems);
    await second.getByText('Your session is still open').waitFor();
    assert.equal(await second.getByLabel('SIP address or user name').inputValue(), BOB);
    await second.getByLabel('Password', { exact: true }).fill('bob-pw');
    await second.getByRole('button', { name: 'Sign in', exact: true }).click();
    await second.getByTestId('missed-badge').getByText('1', { exact: true }).waitFor();
    await screenshot(bob.page, 'web-client-4-bob-missed-badge');

    await bob.page.getByRole('button', { name: /Missed conversations/ }).click();
    const item = bob.page.locator('.items .item.unread', { hasText: 'Alice Adams' });
    await item.click();
    const transcript = bob.page.locator('.transcript-body');
    await transcript.getByText('first while you were out').waitFor();
    const text = (await transcript.textContent()) ?? '';
    const first = text.indexOf('first while you were out');
    const secondAt = text.indexOf('second <b>while</b> you were out');
    assert.ok(first >= 0 && secondAt > first, `both texts in order, the second as text: ${text}`);
    await badge.waitFor({ state: 'detached' });
    await second.getByTestId('missed-badge').waitFor({ state: 'detached' });
    await screenshot(bob.page, 'web-client-5-bob-transcript');

    // Reply opens the chat with alice
    await bob.page.getByRole('button', { name: 'Reply' }).click();
    await bob.page.getByRole('heading', { name: 'Alice Adams' }).waitFor();
  });

  it('saw no dialog, page error or CSP violation on any page', () => {
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });
});
