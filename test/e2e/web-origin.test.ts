// A page from another origin cannot drive a signed-in user's SIP WebSocket: alice is signed in to
// the web client (her session cookie is in the browser, and a page on the same host but another
// port is same-site, so the cookie would go along), then opens a page served by a second tiny
// HTTP server on another port that tries to open ws://…/sip. The server refuses the upgrade
// (Origin is not one of its own: 403), so the socket never opens; the same code run in the web
// client's own page opens it (the control: only the origin differs).

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openClient, signIn, type OpenClient } from '../harness/browser.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let browser: Browser;
let alice: OpenClient;
let foreign: http.Server;
let foreignUrl: string;

before(async () => {
  server = await startServer({ domain: DOMAIN, users: [{ address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' }] });
  // the other site: one page, no script of its own needed (the test runs the attempt in it)
  foreign = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>another site</title><p>not Parley</p>');
  });
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`;
  browser = await launchBrowser();
  alice = await openClient(browser, server);
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => foreign?.close(resolve));
  await server?.stop();
});

/** Opens a SIP WebSocket from `page`; 'open', or 'error' / 'closed <code>' when refused. */
function tryWebSocket(page: Page, url: string): Promise<string> {
  return page.evaluate(
    (wsUrl) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(wsUrl, 'sip');
        ws.onopen = () => {
          ws.close();
          resolve('open');
        };
        ws.onerror = () => resolve('error');
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }),
    url,
  );
}

describe('web client: the SIP WebSocket checks Origin', () => {
  it('refuses a page from another origin, in the signed-in user\'s browser, and accepts the web client\'s own', async () => {
    await signIn(alice.page, 'alice', 'alice-pw');
    assert.equal(await tryWebSocket(alice.page, server.wsUrl), 'open', 'the control: the own origin may connect');

    const other = await alice.context.newPage();
    await other.goto(foreignUrl);
    assert.equal(await other.evaluate('location.origin'), foreignUrl.slice(0, -1));
    assert.notEqual(await tryWebSocket(other, server.wsUrl), 'open');
    // refused by the Origin check, not by chance: the server says so
    const origin = foreignUrl.slice(0, -1);
    await server.waitForLog(new RegExp(`WebSocket upgrade from a page of ${origin.replace(/[.]/g, '\\.')} refused`), 5_000);
    // and the web client's HTTP API refuses the foreign page as well (CSRF: cookie + foreign Origin)
    const status = await other.evaluate(async (base) => {
      try {
        const r = await fetch(`${base}/api/session`, { method: 'DELETE', credentials: 'include' });
        return r.status;
      } catch {
        return 'blocked';
      }
    }, `http://${server.http.host}:${server.http.port}`);
    assert.ok(status === 403 || status === 'blocked', `DELETE /api/session from another origin: ${status}`);
    // alice is still signed in
    await alice.page.reload();
    await alice.page.getByText('Your session is still open').waitFor();
  });
});
