// The web client when the connection goes: the server is killed under two signed-in browsers;
// alice's page says it is reconnecting, and a message she writes meanwhile waits ("Waiting for the
// connection…") instead of being lost. The server comes back on the same HTTP port (same data
// directory): both pages reconnect with back-off, register again, and alice's waiting message goes
// out by itself — delivered to bob, whose page shows it. Nothing is dropped silently.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { addContact, contactEntry, launchBrowser, openChat, openClient, screenshot, signIn, type OpenClient } from '../harness/browser.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let first: RunningServer;
let second: RunningServer | undefined;
let browser: Browser;
let alice: OpenClient;
let bob: OpenClient;

before(async () => {
  first = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Brown' },
    ],
  });
  await addContact(first, { user: 'alice', password: 'alice-pw' }, 'bob');
  await addContact(first, { user: 'bob', password: 'bob-pw' }, 'alice');
  browser = await launchBrowser();
  alice = await openClient(browser, first);
  bob = await openClient(browser, first);
});

after(async () => {
  await browser?.close();
  await second?.stop();
  await first?.stop(); // removes the data directory both used
});

describe('web client resilience', () => {
  it('keeps a message written while the server is gone and sends it once both pages reconnected', async () => {
    await signIn(alice.page, 'alice', 'alice-pw');
    await signIn(bob.page, 'bob', 'bob-pw');
    await openChat(bob.page, `alice@${DOMAIN}`);
    await openChat(alice.page, `bob@${DOMAIN}`);

    await first.kill();
    await alice.page.getByText(/Connection lost — reconnecting/).waitFor();
    await alice.page.locator('#composer-input').fill('written while the server was away');
    await alice.page.keyboard.press('Enter');
    const mine = alice.page.locator('.message.out', { hasText: 'written while the server was away' });
    await mine.locator('.status', { hasText: 'Waiting for the connection…' }).waitFor();
    await screenshot(alice.page, 'web-resilience-1-waiting');

    second = await startServer({ domain: DOMAIN, dataDir: first.dataDir, extraArgs: ['--http-port', String(first.http.port)] });
    assert.equal(second.http.port, first.http.port);
    // back-off is 1 s doubling (with jitter) to 30 s: the next attempt is within ~16 s of the kill
    await contactEntry(alice.page, `bob@${DOMAIN}`).getByText('Available').waitFor({ timeout: 45_000 });
    await mine.locator('.status', { hasText: /Delivered|Seen|will be delivered to their mailbox/ }).waitFor({ timeout: 45_000 });
    const status = (await mine.locator('.status').textContent()) ?? '';
    if (/Delivered|Seen/.test(status)) await bob.page.locator('.message.in', { hasText: 'written while the server was away' }).waitFor();
    await alice.page.getByText(/Connection lost/).waitFor({ state: 'detached' });
    await screenshot(alice.page, 'web-resilience-2-sent');
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  });
});
