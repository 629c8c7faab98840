// Browser harness for the web client's end-to-end tests: Debian's Chromium driven by
// playwright-core (1.64.1, whose own Chromium is 156 like Debian's), headless, without sandbox
// (tests run as root in a network namespace), with background networking and component updates
// off, on a fresh profile (playwright makes a new temporary one per launch and removes it).
//
//   const browser = await launchBrowser();
//   const alice = await openClient(browser, server);          // a new context: its own cookies
//   await signIn(alice.page, 'alice@parley.test', 'alice-pw');
//   ...
//   await browser.close();
//
// Screenshots go to test-artifacts/ (git-ignored); axe-core runs in the page for accessibility.

import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT, type RunningServer } from './server.ts';

/** Debian's chromium package (scripts/install-test-deps.sh installs it); PARLEY_CHROMIUM overrides */
export const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
/** how long the tests wait for the page to show something (a SIP round trip through the server) */
export const UI_TIMEOUT_MS = 15_000;

export const LAPTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage', '--no-first-run', '--disable-sync'],
  });
}

export function baseUrl(server: RunningServer): string {
  return `http://${server.http.host}:${server.http.port}`;
}

export interface OpenClient {
  context: BrowserContext;
  page: Page;
  /** what the page did that a test must never see: dialogs, page errors, CSP violations */
  problems: string[];
}

/**
 * A new browser context (its own cookie jar: one person) with one page on the web client. English
 * UI unless `locale` is given; the problems list collects dialogs, uncaught errors and CSP reports.
 */
export async function openClient(browser: Browser, server: RunningServer, options: { viewport?: { width: number; height: number }; locale?: string } = {}): Promise<OpenClient> {
  const context = await browser.newContext({ viewport: options.viewport ?? LAPTOP, locale: options.locale ?? 'en-GB' });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const problems: string[] = [];
  const page = await newTab(context, server, problems);
  return { context, page, problems };
}

/** Another tab in the same context (the same person, the same session cookie). */
export async function newTab(context: BrowserContext, server: RunningServer, problems: string[]): Promise<Page> {
  const page = await context.newPage();
  watchProblems(page, problems);
  await page.goto(`${baseUrl(server)}/`);
  return page;
}

export function watchProblems(page: Page, problems: string[]): void {
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
}

/** Fills the sign-in form (or the password-again form) and waits for the signed-in screen. */
export async function signIn(page: Page, user: string, password: string): Promise<void> {
  const userField = page.getByLabel('SIP address or user name');
  await userField.fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** The contact list entry of `address` (its button names the person and their state). */
export function contactEntry(page: Page, address: string) {
  return page.locator(`li.contact[data-address="${address}"]`);
}

/** Opens the conversation with `address` from the contact list. */
export async function openChat(page: Page, address: string): Promise<void> {
  await contactEntry(page, address).locator('.contact-open').click();
  await page.locator('#composer-input').waitFor();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[]; failureSummary?: string }>;
}

const require = createRequire(import.meta.url);
let axeSource: Promise<string> | undefined;

/**
 * Runs axe-core in the page and returns the serious and critical violations. The script is
 * evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does not
 * govern: no bypassCSP context, the page is checked as users get it.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  const source = await axeSource;
  await page.evaluate(source);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    // (this runs in the page: its document)
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** The users' contact lists, made over HTTP Basic (the way a script would). */
export async function addContact(server: RunningServer, owner: { user: string; password: string }, contact: string): Promise<void> {
  const res = await fetch(`${baseUrl(server)}/presence/contacts/${encodeURIComponent(contact)}`, {
    method: 'PUT',
    headers: { authorization: `Basic ${Buffer.from(`${owner.user}:${owner.password}`).toString('base64')}` },
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT /presence/contacts/${contact} as ${owner.user}: ${res.status} ${await res.text()}`);
}
