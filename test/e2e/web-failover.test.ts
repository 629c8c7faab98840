// The web client finding another node: its session answer lists two SIP WebSocket URLs (the
// `webSocketUrls` a cluster's session route is to give; injected here, since the server side is not
// built yet), the page's server is killed with SIGKILL, and the page moves to the second server,
// registers there and shows a message a user of the second server sends. Two stand-ins for what the
// cluster's server side must do: the second server lets pages of the first open WebSockets
// (web.allowedOrigins), and the page's Content-Security-Policy, which today allows only its own
// WebSocket URL in connect-src, is bypassed.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addContact, baseUrl, LAPTOP, launchBrowser, openChat, screenshot, signIn, UI_TIMEOUT_MS, watchProblems } from '../harness/browser.ts';
import { sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const USERS = [
  { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
  { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Brown' },
];
let first: RunningServer;
let second: RunningServer;
let browser: Browser;
let context: BrowserContext;

before(async () => {
  first = await startServer({ domain: DOMAIN, users: USERS });
  second = await startServer({ domain: DOMAIN, users: USERS, config: { web: { allowedOrigins: [baseUrl(first)] } } });
  await addContact(first, { user: 'alice', password: 'alice-pw' }, 'bob');
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: LAPTOP, locale: 'en-GB', bypassCSP: true });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
});

after(async () => {
  await browser?.close();
  await second?.stop();
  await first?.stop();
});

/** The page, its session answers given `webSocketUrls` (both servers', the page's own first). */
async function pageWithTwoServers(problems: string[]): Promise<{ page: Page; sessions: unknown[] }> {
  const page = await context.newPage();
  watchProblems(page, problems);
  const sessions: unknown[] = [];
  await page.route('**/api/session', async (route) => {
    const response = await route.fetch();
    if (!response.ok() || response.status() === 204) {
      await route.fulfill({ response });
      return;
    }
    const json = { ...((await response.json()) as Record<string, unknown>), webSocketUrls: [first.wsUrl, second.wsUrl] };
    sessions.push(json);
    await route.fulfill({ response, json });
  });
  await page.goto(`${baseUrl(first)}/`);
  return { page, sessions };
}

describe('web client failover', () => {
  it('with several WebSocket URLs, moves to the next when its server is killed, registers there and receives', async () => {
    const problems: string[] = [];
    const { page, sessions } = await pageWithTwoServers(problems);
    await signIn(page, 'alice', 'alice-pw');
    assert.ok(sessions.length >= 1, 'the session answer went through the page route');
    assert.equal((sessions[0] as { webSocketUrl?: string }).webSocketUrl, first.wsUrl, 'the page connected to its own server first');
    await openChat(page, `bob@${DOMAIN}`);

    await first.kill('SIGKILL');
    await page.getByText(/Connection lost — reconnecting/).waitFor();
    await page.getByText(/Connection lost/).waitFor({ state: 'detached', timeout: 45_000 });
    await screenshot(page, 'web-failover-1-moved');

    const people = sdkClients(() => second, DOMAIN, { register: true });
    try {
      const bob = await people.connect('bob');
      const answer = await bob.sendMessage(`sip:alice@${DOMAIN}`, 'hello from the second node');
      assert.equal(answer.status, 200, `${answer.status} ${answer.warning ?? ''}: alice's page is registered on the second server`);
      await page.locator('.message.in .bubble', { hasText: 'hello from the second node' }).waitFor();
    } finally {
      await people.closeAll();
    }
    await screenshot(page, 'web-failover-2-received');
    assert.deepEqual(problems.filter((p) => !/CSP/.test(p)), []);
  });
});
