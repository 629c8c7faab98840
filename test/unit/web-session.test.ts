// The pure parts of the web client's HTTP side: the session cookie (src/session/cookie.ts), web
// origins (src/server/origins.ts), paging parameters (src/http-json.ts), and the session store's
// rules (src/session/sessions.ts) on an in-memory database with a clock the test moves.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, addUser, removeUser, setPassword } from '../../src/directory/index.ts';
import { HttpProblem, pageParams } from '../../src/http-json.ts';
import { OwnOrigins, formatOrigin, parseOrigin } from '../../src/server/origins.ts';
import { IDLE_WRITE_MS, MAX_SESSIONS_PER_USER, SESSION_MIGRATIONS, WebSessions, clearedCookie, purgeExpiredSessionBatch, readCookie, sessionCookie, tokenHash } from '../../src/session/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const TOKEN = 'A'.repeat(21) + '_-' + 'z'.repeat(20);

describe('session cookie', () => {
  it('reads the token among other cookies, quoted or not, and ignores malformed ones', () => {
    assert.equal(readCookie(`theme=dark; parley_session=${TOKEN}; x=1`), TOKEN);
    assert.equal(readCookie(`parley_session="${TOKEN}"`), TOKEN);
    assert.equal(readCookie(`parley_session=short; parley_session=${TOKEN}`), TOKEN, 'the first well-formed one');
    assert.equal(readCookie('parley_session=../../etc'), undefined);
    assert.equal(readCookie(`xparley_session=${TOKEN}`), undefined);
    assert.equal(readCookie(undefined), undefined);
    assert.equal(readCookie(''), undefined);
  });

  it('writes HttpOnly, SameSite=Strict, Path=/ and Secure over TLS only; clearing expires it', () => {
    assert.equal(sessionCookie(TOKEN, false), `parley_session=${TOKEN}; Path=/; HttpOnly; SameSite=Strict`);
    assert.equal(sessionCookie(TOKEN, true), `parley_session=${TOKEN}; Path=/; HttpOnly; SameSite=Strict; Secure`);
    assert.throws(() => sessionCookie('x; Domain=evil.example', false));
    assert.match(clearedCookie(true), /^parley_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0; .*; Secure$/);
  });
});

describe('web origins', () => {
  it('parses scheme, host and port, filling in the default port; refuses what is not an origin', () => {
    assert.deepEqual(parseOrigin('HTTP://Example.COM'), { scheme: 'http', host: 'example.com', port: 80 });
    assert.deepEqual(parseOrigin('https://[::1]:8443'), { scheme: 'https', host: '::1', port: 8443 });
    for (const bad of ['null', 'ftp://example.com', 'http://example.com/', 'http://user@example.com', 'http://example.com:0', 'http://exa mple.com', '']) {
      assert.equal(parseOrigin(bad), undefined, bad);
    }
    assert.equal(formatOrigin({ scheme: 'https', host: 'chat.example.com', port: 443 }), 'https://chat.example.com');
    assert.equal(formatOrigin({ scheme: 'http', host: '::1', port: 8080 }), 'http://[::1]:8080');
  });

  it('own: an own name on the HTTP port, http or https; or a listed origin', () => {
    const names = { isOwn: (h: string) => h === 'parley.local' || h === '127.0.0.1' || h === 'localhost' };
    const origins = new OwnOrigins({ names, httpPort: () => 8080, allowed: ['https://Chat.Example.com:443'] });
    assert.ok(origins.isOwn('http://parley.local:8080'));
    assert.ok(origins.isOwn('https://127.0.0.1:8080'));
    assert.ok(origins.isOwn('http://localhost:8080'));
    assert.ok(origins.isOwn('https://chat.example.com'));
    assert.ok(!origins.isOwn('http://parley.local'), 'port 80 is not the HTTP port');
    assert.ok(!origins.isOwn('http://parley.local:8081'));
    assert.ok(!origins.isOwn('http://evil.example:8080'));
    assert.ok(!origins.isOwn('http://chat.example.com'), 'the listed origin is https');
    assert.ok(!origins.isOwn('null'));
    assert.throws(() => new OwnOrigins({ names, httpPort: () => 1, allowed: ['chat.example.com'] }));
  });

  it('own with httpsPort: an own name on the HTTPS port over https only', () => {
    const names = { isOwn: (h: string) => h === 'parley.local' };
    const origins = new OwnOrigins({ names, httpPort: () => 8080, httpsPort: () => 8443 });
    assert.ok(origins.isOwn('https://parley.local:8443'));
    assert.ok(origins.isOwn('http://parley.local:8080'));
    assert.ok(!origins.isOwn('http://parley.local:8443'), 'the HTTPS port speaks https only');
    assert.ok(!origins.isOwn('https://evil.example:8443'));
  });
});

describe('paging parameters', () => {
  it('defaults, bounds and the offset', () => {
    assert.deepEqual(pageParams(new URLSearchParams(''), 20, 50), { page: 1, pageSize: 20, offset: 0 });
    assert.deepEqual(pageParams(new URLSearchParams('page=3&pageSize=50'), 20, 50), { page: 3, pageSize: 50, offset: 100 });
    for (const q of ['pageSize=51', 'pageSize=0', 'page=0', 'page=-1', 'page=1.5', 'pageSize=1e3', 'page=99999999999']) {
      assert.throws(() => pageParams(new URLSearchParams(q), 20, 50), (e: unknown) => e instanceof HttpProblem && e.httpStatus === 400 && e.code === 'BAD_QUERY', q);
    }
  });
});

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`web sessions on ${engine.name}`, () => {
  let db: SqlDatabase;
  beforeEach(async () => {
    db = await engine.open();
    await migrate(db, [DIRECTORY_MIGRATIONS, SESSION_MIGRATIONS]);
    await addUser(db, { address: 'alice@parley.local', password: 'alice-pw' });
  });
  afterEach(() => db.close());

  function setup() {
    let now = 1_000_000;
    const sessions = new WebSessions({ sql: db, idleMs: 10 * IDLE_WRITE_MS, maxAgeMs: 100 * IDLE_WRITE_MS, now: () => now });
    return { sessions, advance: (ms: number) => (now += ms) };
  }
  const lastSeen = async (token: string) => Number((await db.get<{ last_seen: number }>('SELECT last_seen FROM web_sessions WHERE token_hash = ?', [tokenHash(token)]))?.last_seen);

  it('stores only the token hash; slides the idle expiry, writing at most once a minute', async () => {
    const { sessions, advance } = setup();
    const token = await sessions.open('alice@parley.local');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    const stored = await db.all('SELECT * FROM web_sessions');
    assert.equal(stored.length, 1);
    assert.ok(!JSON.stringify(stored).includes(token));
    assert.ok(!JSON.stringify(stored).includes('scrypt'), 'not the password hash itself');
    const opened = await lastSeen(token);
    advance(IDLE_WRITE_MS - 1);
    assert.deepEqual(await sessions.check(token), { ok: true, address: 'alice@parley.local' });
    assert.equal(await lastSeen(token), opened, 'not written within the minute');
    advance(1);
    await sessions.check(token);
    assert.equal(await lastSeen(token), opened + IDLE_WRITE_MS);
    // used every 9 minutes, it lives past the 10-minute idle limit
    for (let i = 0; i < 5; i++) {
      advance(9 * IDLE_WRITE_MS);
      assert.equal((await sessions.check(token)).ok, true);
    }
    advance(10 * IDLE_WRITE_MS);
    assert.deepEqual(await sessions.check(token), { ok: false, reason: 'idle' });
    assert.deepEqual(await sessions.check(token), { ok: false, reason: 'unknown' }, 'deleted once found ended');
  });

  it('ends at the maximum age however used, on a new password, on removal, and on sign-out', async () => {
    const { sessions, advance } = setup();
    const old = await sessions.open('alice@parley.local');
    for (let i = 0; i < 11; i++) {
      advance(9 * IDLE_WRITE_MS);
      assert.equal((await sessions.check(old)).ok, true);
    }
    advance(2 * IDLE_WRITE_MS);
    assert.deepEqual(await sessions.check(old), { ok: false, reason: 'expired' });

    const before = await sessions.open('alice@parley.local');
    await setPassword(db, 'alice@parley.local', 'new-pw');
    assert.deepEqual(await sessions.check(before), { ok: false, reason: 'password-changed' });
    const after = await sessions.open('alice@parley.local');
    assert.equal((await sessions.check(after)).ok, true);
    await sessions.close(after);
    assert.deepEqual(await sessions.check(after), { ok: false, reason: 'unknown' });
    const last = await sessions.open('alice@parley.local');
    await removeUser(db, 'alice@parley.local');
    assert.equal((await sessions.check(last)).ok, false);
    assert.equal(Number((await db.get<{ n: number }>('SELECT count(*) AS n FROM web_sessions'))?.n), 0, 'removing the user removed its sessions');
  });

  it(`keeps at most ${MAX_SESSIONS_PER_USER} sessions per user, the newest`, async () => {
    const { sessions, advance } = setup();
    const tokens: string[] = [];
    for (let i = 0; i <= MAX_SESSIONS_PER_USER; i++) {
      tokens.push(await sessions.open('alice@parley.local'));
      advance(1);
    }
    assert.equal((await sessions.check(tokens[0] as string)).ok, false);
    assert.equal((await sessions.check(tokens[1] as string)).ok, true);
    assert.equal((await sessions.check(tokens.at(-1) as string)).ok, true);
  });

  it('the retention sweep deletes ended sessions in batches', async () => {
    const { sessions, advance } = setup();
    const tokens = [await sessions.open('alice@parley.local'), await sessions.open('alice@parley.local'), await sessions.open('alice@parley.local')];
    advance(5 * IDLE_WRITE_MS);
    const kept = await sessions.open('alice@parley.local');
    advance(6 * IDLE_WRITE_MS);
    const now = 1_000_000 + 11 * IDLE_WRITE_MS;
    const purge = () => purgeExpiredSessionBatch(db, now - 10 * IDLE_WRITE_MS, now - 100 * IDLE_WRITE_MS, 2);
    assert.deepEqual([await purge(), await purge(), await purge()], [2, 1, 0]);
    assert.equal((await sessions.check(kept)).ok, true);
    for (const t of tokens) assert.deepEqual(await sessions.check(t), { ok: false, reason: 'unknown' });
  });
});
