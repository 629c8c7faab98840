// Accessibility of the web client: axe-core (run in the page as users get it, CSP included) finds
// no serious or critical violation on the sign-in page, the main view, a conversation, the
// directory search and the missed conversations, at laptop (1280 px) and phone (390 px) widths.
// The signed-in laptop screenshot is the README's (docs/screenshot.png is made from it).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { addContact, contactEntry, LAPTOP, launchBrowser, openChat, openClient, PHONE, screenshot, seriousViolations, signIn, type AxeViolation } from '../harness/browser.ts';
import { sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let browser: Browser;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Brown' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: 'Carol Chen' },
    ],
  });
  for (const contact of ['bob', 'carol']) await addContact(server, { user: 'alice', password: 'alice-pw' }, contact);
  browser = await launchBrowser();
});

after(async () => {
  await people.closeAll();
  await browser?.close();
  await server?.stop();
});

function explain(violations: AxeViolation[]): string {
  return violations.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`).join('\n  ')}`).join('\n');
}

async function check(page: Page, what: string): Promise<void> {
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `${what}:\n${explain(violations)}`);
}

for (const [width, viewport] of [['1280', LAPTOP], ['390', PHONE]] as const) {
  describe(`web client accessibility at ${width} px`, () => {
    it('has no serious or critical axe violation on sign-in, main view, conversation, search and missed conversations', async () => {
      const { page, problems, context } = await openClient(browser, server, { viewport });
      await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
      await check(page, 'sign-in');
      await screenshot(page, `web-a11y-${width}-signin`);

      await signIn(page, 'alice', 'alice-pw');
      const bob = await people.connect('bob', { register: true });
      await bob.publishPresence({ state: 'Busy', note: 'writing the quarterly report' });
      await contactEntry(page, `bob@${DOMAIN}`).getByText('Busy').waitFor();
      await check(page, 'main view');
      await screenshot(page, `web-a11y-${width}-main`);

      await openChat(page, `bob@${DOMAIN}`);
      await page.locator('#composer-input').fill('Shall we meet at 3? Agenda: https://example.com/agenda');
      await page.keyboard.press('Enter');
      await page.locator('.message.out .status', { hasText: 'Delivered' }).waitFor();
      assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, 'Yes, 3 works. I will book the room.')).status, 200);
      await page.locator('.message.in').waitFor();
      await check(page, 'conversation');
      await screenshot(page, `web-a11y-${width}-conversation`);

      await page.keyboard.press('Control+k');
      const dialog = page.getByRole('dialog', { name: 'Search the directory' });
      await dialog.getByLabel('Name or address').fill('c');
      await dialog.locator('li.result').first().waitFor();
      await check(page, 'directory search');
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });

      if (width === '390') await page.getByRole('button', { name: 'Back' }).click();
      await page.getByRole('button', { name: /Missed conversations/ }).click();
      await page.getByRole('tab', { name: 'Conversation history' }).waitFor();
      await check(page, 'missed conversations');
      assert.deepEqual(problems, []);
      await bob.close();
      await context.close();
    });
  });
}

describe('web client language', () => {
  it('speaks Spanish to a browser that prefers it (every string from the es catalogue), accessibly', async () => {
    const { page, problems, context } = await openClient(browser, server, { locale: 'es-MX' });
    await page.getByRole('heading', { name: 'Iniciar sesión en Parley' }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'es');
    await page.getByLabel('Dirección SIP o nombre de usuario').fill('alice');
    await page.getByLabel('Contraseña').fill('alice-pw');
    await page.getByRole('button', { name: 'Iniciar sesión' }).click();
    await page.getByRole('button', { name: 'Cerrar sesión' }).waitFor();
    await page.getByRole('heading', { name: 'Contactos' }).waitFor();
    await check(page, 'main view in Spanish');
    await screenshot(page, 'web-a11y-es-main');
    assert.deepEqual(problems, []);
    await context.close();
  });
});
