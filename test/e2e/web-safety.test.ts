// Hostile text in the web client: a non-browser SDK client (carol, over TCP) sends alice markup
// that would run script if it were ever injected as HTML (<img onerror>, <script>, a javascript:
// link), as text/plain and as text/html. Alice's page shows it as text and runs nothing: no
// dialog, no page error, and the window flag every payload would set stays unset. Only http(s)
// URLs become links, opening with rel="noopener noreferrer". The same markup sent to dave while he
// is offline reaches his Missed Conversations; the transcript shown in his browser went through
// the allow-list sanitiser: no element with an attribute, nothing ran.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { addContact, launchBrowser, openClient, screenshot, signIn, type OpenClient } from '../harness/browser.ts';
import { sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const FLAG = '__parleyPwned';
const PAYLOADS = [
  `<img src=x onerror="window.${FLAG}='img';alert(1)">`,
  `<script>window.${FLAG}='script';alert(2)</script>`,
  `<a href="javascript:window.${FLAG}='link';alert(3)">click me</a>`,
  `javascript:window.${FLAG}='bare';alert(4)`,
  `<svg onload="window.${FLAG}='svg'"></svg><iframe src="javascript:alert(5)"></iframe>`,
];
const SAFE_LINK = 'see https://example.com/docs?x=1 please';

let server: RunningServer;
let browser: Browser;
let alice: OpenClient;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: `Carol <img src=x onerror="window.${FLAG}='name'">` },
      { address: `dave@${DOMAIN}`, password: 'dave-pw', displayName: 'Dave Diaz' },
    ],
  });
  const pickup = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(pickup.code, 0, pickup.stderr);
  await addContact(server, { user: 'alice', password: 'alice-pw' }, 'carol');
  browser = await launchBrowser();
  alice = await openClient(browser, server);
});

after(async () => {
  await people.closeAll();
  await browser?.close();
  await server?.stop();
});

async function nothingRan(page: Page, problems: string[]): Promise<void> {
  assert.equal(await page.evaluate((flag) => (globalThis as Record<string, unknown>)[flag], FLAG), undefined, 'a payload ran');
  assert.deepEqual(problems, [], 'no dialog, page error or CSP report');
}

describe('web client safety: hostile text shows as text and runs nothing', () => {
  it('shows hostile text/plain as its text and text/html only as the allow-list sanitiser leaves it', async () => {
    await signIn(alice.page, 'alice', 'alice-pw');
    const carol = await people.connect('carol', { register: true });
    for (const text of PAYLOADS) {
      const r = await carol.sendMessage(`sip:alice@${DOMAIN}`, text);
      assert.equal(r.status, 200);
    }
    const html = await carol.sendMessage(`sip:alice@${DOMAIN}`, `<b>bold</b><img src=x onerror="window.${FLAG}='html'">`, { contentType: 'text/html' });
    assert.equal(html.status, 200);
    assert.equal((await carol.sendMessage(`sip:alice@${DOMAIN}`, SAFE_LINK)).status, 200);

    await alice.page.locator('.chat-item').first().click();
    const bubbles = alice.page.locator('.message.in .bubble');
    await bubbles.nth(PAYLOADS.length + 1).waitFor();
    const shown = await bubbles.allTextContents();
    assert.deepEqual(shown.slice(0, PAYLOADS.length), PAYLOADS, 'each payload verbatim, as text');
    // the text/html one through the transcripts' allow-list sanitiser: the <b> stays, the <img> is gone
    assert.equal(shown[PAYLOADS.length], 'bold');
    // no element came from a message but the sanitiser's attribute-less <b> and the one http(s) link
    const elements = await alice.page.locator('.message .bubble *').evaluateAll((els) => els.map((e) => ({ tag: e.tagName, attributes: e.getAttributeNames().filter((a: string) => a !== 'class').map((a: string) => `${a}=${e.getAttribute(a)}`) })));
    assert.deepEqual(elements, [
      { tag: 'SPAN', attributes: [] },
      { tag: 'B', attributes: [] },
      { tag: 'A', attributes: ['href=https://example.com/docs?x=1', 'target=_blank', 'rel=noopener noreferrer'] },
    ]);
    // the display name is text too
    await alice.page.locator('.chat-header h2', { hasText: 'Carol <img' }).waitFor();
    await screenshot(alice.page, 'web-safety-hostile-text');
    await nothingRan(alice.page, alice.problems);
  });

  it('shows a hostile missed conversation only through the allow-list sanitiser', async () => {
    const carol = await people.connect('carol', { register: true });
    const r = await carol.sendMessage(`sip:dave@${DOMAIN}`, `<p>hello <b>dave</b></p><img src=x onerror="window.${FLAG}='mail'"><script>window.${FLAG}='mail2'</script><a href="javascript:alert(6)">x</a>`, { contentType: 'text/html' });
    assert.equal(r.status, 202, 'dave is offline: kept for his mailbox');
    const dave = await openClient(browser, server);
    await signIn(dave.page, 'dave', 'dave-pw');
    await dave.page.getByTestId('missed-badge').getByText('1', { exact: true }).waitFor({ timeout: 30_000 });
    await dave.page.getByRole('button', { name: /Missed conversations/ }).click();
    await dave.page.locator('.items .item').first().click();
    const body = dave.page.locator('.transcript-body');
    await body.getByText('dave').first().waitFor();
    const tags = await body.locator('*').evaluateAll((els) => els.map((e) => ({ tag: e.tagName.toLowerCase(), attributes: e.getAttributeNames() })));
    assert.ok(tags.length > 0, 'the transcript kept its allowed markup');
    for (const t of tags) {
      assert.ok(['b', 'i', 'u', 'em', 'strong', 'br', 'p', 'div', 'span', 'ul', 'ol', 'li', 'code', 'pre', 'blockquote'].includes(t.tag), `element ${t.tag} is not on the allow-list`);
      assert.deepEqual(t.attributes, [], `${t.tag} has no attribute`);
    }
    await screenshot(dave.page, 'web-safety-hostile-transcript');
    await nothingRan(dave.page, dave.problems);
    await nothingRan(alice.page, alice.problems);
  });
});
