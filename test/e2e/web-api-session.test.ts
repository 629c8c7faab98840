// The web client's HTTP side against a running `parley serve` (issue 13): sign-in sessions
// (POST/GET/DELETE /api/session), the cookie's flags, CSRF refusals, lockouts shared with HTTP
// Basic, the session accepted by /presence/contacts and /api/directory, a new password or a
// removed user ending sessions, and the Origin check of the SIP WebSocket upgrade.
//
// The server trusts 127.0.0.1 as a proxy, so each test signs in "from" an address of its own
// (X-Forwarded-For): a lockout one test provokes does not lock the others out.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let base = '';
let own = '';

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Liddell' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Builder' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: 'Carol Ann' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
      { address: `erin@${DOMAIN}`, password: 'erin-pw', displayName: 'Erin Alison' },
    ],
    config: {
      auth: { trustedProxies: ['127.0.0.1'], lockout: { sourceThreshold: 3, accountThreshold: 1000, window: 600, duration: 600, maxDuration: 600 } },
      web: { allowedOrigins: ['https://chat.parley.example'] },
    },
  });
  base = `http://${server.http.host}:${server.http.port}`;
  own = base;
});
after(async () => {
  await server?.stop();
});

let nextSource = 1;
/** an address of its own for each sign-in attempt group (X-Forwarded-For through the trusted loopback proxy) */
function newSource(): string {
  return `192.0.2.${nextSource++}`;
}

interface Call {
  method?: string;
  origin?: string | null;
  cookie?: string;
  body?: string | object;
  type?: string;
  source?: string;
  headers?: Record<string, string>;
}

async function call(path: string, c: Call = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> | undefined; text: string }> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.origin !== null) headers.origin = c.origin ?? own;
  if (c.cookie !== undefined) headers.cookie = c.cookie;
  if (c.source !== undefined) headers['x-forwarded-for'] = c.source;
  let body: string | undefined;
  if (c.body !== undefined) {
    body = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    headers['content-type'] = c.type ?? 'application/json';
  }
  const response = await fetch(`${base}${path}`, { method: c.method ?? 'GET', headers, body });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** Signs in; returns the cookie pair to send back (`parley_session=…`) and the answer. */
async function signIn(user: string, password: string, source = newSource()): Promise<{ cookie: string; json: Record<string, unknown>; setCookie: string }> {
  const r = await call('/api/session', { method: 'POST', body: { user, password }, source });
  assert.equal(r.status, 201, r.text);
  const setCookie = r.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  assert.match(cookie, /^parley_session=[A-Za-z0-9_-]{43}$/);
  return { cookie, json: r.json ?? {}, setCookie };
}

/** A sign-in with the Host header given (fetch() would set its own); the answer's JSON. */
function signInWithHost(host: string): Promise<Record<string, unknown>> {
  const body = JSON.stringify({ user: 'bob', password: 'bob-pw' });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: server.http.host, port: server.http.port, path: '/api/session', method: 'POST', headers: { host, origin: own, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-forwarded-for': newSource() } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text) as Record<string, unknown>) : reject(new Error(`${res.statusCode}: ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /api/session', () => {
  it('signs in with the user name: 201, what the client needs, an HttpOnly SameSite=Strict cookie without Secure over plain HTTP', async () => {
    const { json, setCookie } = await signIn('alice', 'alice-pw');
    assert.deepEqual(json, {
      address: `alice@${DOMAIN}`,
      sipUri: `sip:alice@${DOMAIN}`,
      displayName: 'Alice Liddell',
      authUser: 'alice',
      domain: DOMAIN,
      webSocketUrl: `ws://${server.http.host}:${server.http.port}/sip`,
      contactListUri: `sip:alice+contacts@${DOMAIN}`,
      demo: false,
    });
    const attributes = setCookie.split(';').slice(1).map((a) => a.trim());
    assert.deepEqual(attributes.sort(), ['HttpOnly', 'Path=/', 'SameSite=Strict']);
  });

  it('signs in with the full address and a listed allowed origin; answers carry no-store and nosniff', async () => {
    const r = await call('/api/session', { method: 'POST', body: { user: `BOB@${DOMAIN}`, password: 'bob-pw' }, origin: 'https://chat.parley.example', source: newSource() });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json?.address, `bob@${DOMAIN}`);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  it('behind a trusted TLS proxy (X-Forwarded-Proto: https) the cookie is Secure and the WebSocket URL wss:; a foreign Host never reaches the URL', async () => {
    const tls = await call('/api/session', { method: 'POST', body: { user: 'bob', password: 'bob-pw' }, source: newSource(), headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(tls.status, 201, tls.text);
    assert.match(tls.headers.get('set-cookie') ?? '', /; Secure$/);
    assert.equal(tls.json?.webSocketUrl, `wss://${server.http.host}:${server.http.port}/sip`);
    const out = await call('/api/session', { method: 'DELETE', cookie: (tls.headers.get('set-cookie') ?? '').split(';')[0], headers: { 'x-forwarded-proto': 'https' } });
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0.*; Secure$/);

    // fetch() sets Host itself: these two go through node:http
    assert.equal((await signInWithHost(`localhost:${server.http.port}`)).webSocketUrl, `ws://localhost:${server.http.port}/sip`);
    assert.equal((await signInWithHost('evil.example')).webSocketUrl, `ws://${server.http.host}:${server.http.port}/sip`);
  });

  it('refuses a wrong password (403 SIGN_IN_FAILED), then locks the source out like HTTP Basic (429 SIGN_IN_LOCKED, Retry-After), the right password too', async () => {
    const source = newSource();
    for (let i = 0; i < 3; i++) {
      const r = await call('/api/session', { method: 'POST', body: { user: 'carol', password: 'wrong' }, source });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json?.code, 'SIGN_IN_FAILED');
      assert.equal(r.headers.get('set-cookie'), null);
    }
    const locked = await call('/api/session', { method: 'POST', body: { user: 'carol', password: 'carol-pw' }, source });
    assert.equal(locked.status, 429, locked.text);
    assert.equal(locked.json?.code, 'SIGN_IN_LOCKED');
    assert.ok(Number(locked.headers.get('retry-after')) >= 1);
    // the same lockout refuses HTTP Basic from that source: one guard for both
    const basic = await call('/presence/contacts', { origin: null, source, headers: { authorization: `Basic ${Buffer.from('carol:carol-pw').toString('base64')}` } });
    assert.equal(basic.status, 429, basic.text);
    // another source is not locked out
    await signIn('carol', 'carol-pw');
  });

  it('refuses a sign-in without Origin or from another site (403 CSRF_ORIGIN), before any password check', async () => {
    for (const origin of [null, 'http://evil.example', `http://127.0.0.1:${server.http.port + 1}`, 'null']) {
      const r = await call('/api/session', { method: 'POST', body: { user: 'alice', password: 'alice-pw' }, origin, source: newSource() });
      assert.equal(r.status, 403, `${origin}: ${r.text}`);
      assert.equal(r.json?.code, 'CSRF_ORIGIN');
      assert.equal(r.headers.get('set-cookie'), null);
    }
  });

  it('names bad bodies precisely: 415 not JSON, 400 BAD_JSON, 400 MISSING_FIELD, 413 too large', async () => {
    const form = await call('/api/session', { method: 'POST', body: 'user=alice&password=alice-pw', type: 'application/x-www-form-urlencoded', source: newSource() });
    assert.equal(form.status, 415, form.text);
    assert.equal(form.json?.code, 'UNSUPPORTED_MEDIA_TYPE');
    const broken = await call('/api/session', { method: 'POST', body: '{"user": "alice",', source: newSource() });
    assert.equal(broken.status, 400);
    assert.equal(broken.json?.code, 'BAD_JSON');
    for (const body of [{ user: 'alice' }, { password: 'x' }, ['alice', 'alice-pw'], { user: 7, password: 'x' }]) {
      const r = await call('/api/session', { method: 'POST', body, source: newSource() });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json?.code, 'MISSING_FIELD');
    }
    const big = await call('/api/session', { method: 'POST', body: { user: 'alice', password: 'x'.repeat(10_000) }, source: newSource() });
    assert.equal(big.status, 413, big.text);
    assert.equal(big.json?.code, 'BODY_TOO_LARGE');
  });
});

describe('GET and DELETE /api/session', () => {
  it('GET tells who the cookie signs in; DELETE ends the session and clears the cookie; the old cookie is then refused', async () => {
    const { cookie } = await signIn('dave', 'dave-pw');
    const me = await call('/api/session', { cookie, origin: null });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json?.address, `dave@${DOMAIN}`);
    assert.equal(me.json?.displayName, null);
    assert.equal(me.headers.get('cache-control'), 'no-store');

    const none = await call('/api/session', { origin: null });
    assert.equal(none.status, 401);
    assert.equal(none.json?.code, 'NO_SESSION');
    assert.equal(none.headers.get('www-authenticate'), null, 'no Basic challenge: a browser would show its password dialog');

    const refused = await call('/api/session', { method: 'DELETE', cookie, origin: null });
    assert.equal(refused.status, 403, 'a sign-out needs the Origin too');
    assert.equal(refused.json?.code, 'CSRF_ORIGIN');

    const out = await call('/api/session', { method: 'DELETE', cookie });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^parley_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
    const after = await call('/api/session', { cookie, origin: null });
    assert.equal(after.status, 401);
    assert.equal(after.json?.code, 'NO_SESSION');
  });

  it('a new password ends the sessions made with the old one; removing the user ends theirs', async () => {
    const { cookie } = await signIn('erin', 'erin-pw');
    assert.equal((await call('/api/session', { cookie, origin: null })).status, 200);
    const passwd = await runCli(['user', 'passwd', `erin@${DOMAIN}`, '--password', 'erin-new', ...server.storageArgs]);
    assert.equal(passwd.code, 0, passwd.stderr);
    const ended = await call('/api/directory', { cookie, origin: null });
    assert.equal(ended.status, 401);
    assert.equal(ended.json?.code, 'NO_SESSION');
    assert.match(String(ended.json?.detail), /password was changed/);

    const again = await signIn('erin', 'erin-new');
    assert.equal((await call('/api/session', { cookie: again.cookie, origin: null })).status, 200);
    const removed = await runCli(['user', 'remove', `erin@${DOMAIN}`, ...server.storageArgs]);
    assert.equal(removed.code, 0, removed.stderr);
    const gone = await call('/api/session', { cookie: again.cookie, origin: null });
    assert.equal(gone.status, 401);
    await server.addUser({ address: `erin@${DOMAIN}`, password: 'erin-pw', displayName: 'Erin Alison' });
  });
});

describe('the session on other routes', () => {
  it('/presence/contacts takes the cookie: GET as is, PUT and DELETE only with an own Origin', async () => {
    const { cookie } = await signIn('alice', 'alice-pw');
    const list = await call('/presence/contacts', { cookie, origin: null });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json?.uri, `sip:alice+contacts@${DOMAIN}`);

    for (const origin of [null, 'http://evil.example']) {
      const r = await call(`/presence/contacts/bob`, { method: 'PUT', cookie, origin });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json?.code, 'CSRF_ORIGIN');
    }
    const added = await call('/presence/contacts/bob', { method: 'PUT', cookie });
    assert.equal(added.status, 201, added.text);
    const after = await call('/presence/contacts', { cookie, origin: null });
    assert.deepEqual((after.json?.contacts as Array<{ contact: string }>).map((c) => c.contact), [`bob@${DOMAIN}`]);
    assert.equal((await call('/presence/contacts/bob', { method: 'DELETE', cookie })).status, 204);

    // without any credentials /presence still challenges for Basic (scripts); with a dead cookie it does not
    const anonymous = await call('/presence/contacts', { origin: null });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);
    const dead = await call('/presence/contacts', { origin: null, cookie: `parley_session=${'A'.repeat(43)}` });
    assert.equal(dead.status, 401);
    assert.equal(dead.json?.code, 'NO_SESSION');
    assert.equal(dead.headers.get('www-authenticate'), null);
  });

  it('/api/directory searches by name or address, case-insensitively, paged, with the session or HTTP Basic', async () => {
    const { cookie } = await signIn('bob', 'bob-pw');
    const ali = await call('/api/directory?q=ALI&pageSize=1', { cookie, origin: null });
    assert.equal(ali.status, 200, ali.text);
    // alice (address and name) and Erin Alison (name): ordered by display name
    assert.deepEqual(ali.json, { users: [{ address: `alice@${DOMAIN}`, sipUri: `sip:alice@${DOMAIN}`, displayName: 'Alice Liddell' }], page: 1, pageSize: 1, total: 2 });
    const second = await call('/api/directory?q=ali&page=2&pageSize=1', { cookie, origin: null });
    assert.deepEqual((second.json?.users as Array<{ address: string }>).map((u) => u.address), [`erin@${DOMAIN}`]);
    const past = await call('/api/directory?q=ali&page=3&pageSize=1', { cookie, origin: null });
    assert.deepEqual(past.json?.users, []);
    assert.equal(past.json?.total, 2);

    const everyone = await call('/api/directory', { origin: null, headers: { authorization: `Basic ${Buffer.from('bob:bob-pw').toString('base64')}` } });
    assert.equal(everyone.status, 200, everyone.text);
    assert.deepEqual((everyone.json?.users as Array<{ displayName: string | null; address: string }>).map((u) => u.displayName ?? u.address), ['Alice Liddell', 'Bob Builder', 'Carol Ann', `dave@${DOMAIN}`, 'Erin Alison']);
    assert.equal(everyone.json?.pageSize, 20);
    assert.ok(!everyone.text.includes('scrypt') && !everyone.text.includes('ha1'), 'no password data');

    for (const q of ['pageSize=51', 'pageSize=0', 'page=0', 'page=x']) {
      const bad = await call(`/api/directory?${q}`, { cookie, origin: null });
      assert.equal(bad.status, 400, q);
      assert.equal(bad.json?.code, 'BAD_QUERY');
    }
    const anonymous = await call('/api/directory', { origin: null });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json?.code, 'NO_SESSION');
    assert.equal(anonymous.headers.get('x-content-type-options'), 'nosniff');
  });
});

describe('SIP over WebSocket: the Origin of the page', () => {
  /** The HTTP status of the upgrade's answer (101 when it succeeded). */
  function upgrade(origin: string | undefined): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(server.wsUrl, 'sip', origin === undefined ? {} : { origin });
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.once('error', (err) => reject(err));
    });
  }

  it('refuses a page of another site with 403 before the upgrade, and accepts its own pages and non-browser clients', async () => {
    assert.equal(await upgrade('http://evil.example'), 403);
    assert.equal(await upgrade(`http://localhost:${server.http.port + 1}`), 403);
    assert.equal(await upgrade('null'), 403);
    await server.waitForLog(/WebSocket upgrade from a page of http:\/\/evil\.example refused/);
    assert.equal(await upgrade(own), 101);
    assert.equal(await upgrade(`http://localhost:${server.http.port}`), 101);
    assert.equal(await upgrade('https://chat.parley.example'), 101);
    assert.equal(await upgrade(undefined), 101);
  });
});
