// The fair hashing queue (src/auth/hash-queue.ts) with jobs the test finishes by hand, and the
// HTTP Basic sign-in (src/auth/http-basic.ts) on an in-memory database: lockouts before hashing,
// the cache of verified passwords and what invalidates it.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { BasicSignIn, FairQueue, SignInGuard } from '../../src/auth/index.ts';
import { DIRECTORY_MIGRATIONS, addUser, removeUser, setPassword } from '../../src/directory/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

/** A job that runs until the test settles it, recording when it started. */
function controlled(log: string[], name: string) {
  let settle: { resolve(v: string): void; reject(e: Error): void } | undefined;
  const job = () =>
    new Promise<string>((resolve, reject) => {
      log.push(name);
      settle = { resolve, reject };
    });
  return { job, finish: () => settle?.resolve(name), fail: (e: Error) => settle?.reject(e) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('fair hashing queue', () => {
  it('runs at most `concurrency` jobs, and takes waiting ones round-robin by source', async () => {
    const started: string[] = [];
    const queue = new FairQueue({ concurrency: 1, maxQueued: 10, maxPerSource: 4 });
    const a = ['a1', 'a2', 'a3', 'a4'].map((n) => controlled(started, n));
    const b = controlled(started, 'b1');
    const c = ['c1', 'c2'].map((n) => controlled(started, n));
    const results = [...a.map((j) => queue.run('A', j.job)), queue.run('B', b.job), ...c.map((j) => queue.run('C', j.job))];
    assert.deepEqual(started, ['a1']);
    assert.deepEqual([queue.running, queue.queued], [1, 6]);
    // each job is finished once it runs, in the order they start
    for (const j of [a[0], a[1], b, c[0], a[2], c[1], a[3]]) {
      j?.finish();
      await tick();
    }
    // B's only job waited for one more of A's (A was first in the rotation), not for all of them
    assert.deepEqual(started, ['a1', 'a2', 'b1', 'c1', 'a3', 'c2', 'a4']);
    const settled = await Promise.all(results);
    assert.ok(settled.every((s) => s.admitted));
    assert.deepEqual([queue.running, queue.queued], [0, 0]);
  });

  it('refuses at once past a source share (reason source) and when full (reason full), with a Retry-After', async () => {
    const started: string[] = [];
    const queue = new FairQueue({ concurrency: 2, maxQueued: 3, maxPerSource: 2 });
    const jobs = Array.from({ length: 6 }, (_, i) => controlled(started, `j${i}`));
    const a = [queue.run('A', (jobs[0] as ReturnType<typeof controlled>).job), queue.run('A', (jobs[1] as ReturnType<typeof controlled>).job)];
    const refused = await queue.run('A', async () => 'never');
    assert.equal(refused.admitted, false);
    assert.ok(!refused.admitted && refused.reason === 'source' && refused.retryAfterSeconds >= 1);
    const others = ['B', 'C', 'D'].map((s, i) => queue.run(s, (jobs[i + 2] as ReturnType<typeof controlled>).job));
    const full = await queue.run('E', async () => 'never');
    assert.ok(!full.admitted && full.reason === 'full', JSON.stringify(full));
    assert.deepEqual(started, ['j0', 'j1'], 'refused jobs never ran');
    for (const j of jobs) {
      j.finish();
      await tick();
    }
    assert.equal((await Promise.all([...a, ...others])).filter((r) => r.admitted).length, 5);
  });

  it('passes a failing job on and frees its place', async () => {
    const queue = new FairQueue({ concurrency: 1, maxQueued: 0, maxPerSource: 1 });
    await assert.rejects(queue.run('A', () => Promise.reject(new Error('scrypt failed'))), /scrypt failed/);
    await assert.rejects(queue.run('A', () => {
      throw new Error('thrown at once');
    }), /thrown at once/);
    assert.deepEqual(await queue.run('A', async () => 7), { admitted: true, value: 7 });
  });
});

function request(peer: string, user?: string, password?: string, headers: Record<string, string> = {}): http.IncomingMessage {
  const authorization = user === undefined ? undefined : `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;
  return { socket: { remoteAddress: peer }, headers: { ...headers, ...(authorization === undefined ? {} : { authorization }) } } as unknown as http.IncomingMessage;
}

/** A FairQueue that counts the jobs it ran: each is one scrypt run. */
class CountingQueue extends FairQueue {
  hashes = 0;
  override run<T>(source: string, job: () => Promise<T>) {
    return super.run(source, () => {
      this.hashes++;
      return job();
    });
  }
}

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`HTTP Basic sign-in on ${engine.name}`, () => {
  let db: SqlDatabase;
  beforeEach(async () => {
    db = await engine.open();
    await migrate(db, [DIRECTORY_MIGRATIONS]);
    await addUser(db, { address: 'alice@parley.test', password: 'alice-pw' });
  });
  afterEach(() => db.close());

  function signInSetup(opts: { cacheMs?: number; trustedProxies?: string[] } = {}) {
    const guard = new SignInGuard({ sourceThreshold: 3, accountThreshold: 100, windowMs: 600_000, durationMs: 60_000, maxDurationMs: 600_000 });
    const queue = new CountingQueue({ concurrency: 2, maxQueued: 16, maxPerSource: 4 });
    const signIn = new BasicSignIn({ sql: db, domain: 'parley.test', guard, queue, ...opts });
    return { guard, queue, signIn };
  }

  it('counts wrong passwords and unknown users alike, then refuses the source before hashing, the right password too', async () => {
    const { signIn, queue } = signInSetup();
    assert.deepEqual(await signIn.authenticate(request('192.0.2.7', 'alice', 'wrong')), { ok: false, status: 401 });
    assert.deepEqual(await signIn.authenticate(request('192.0.2.7', 'nobody', 'x')), { ok: false, status: 401 });
    assert.deepEqual(await signIn.authenticate(request('192.0.2.7')), { ok: false, status: 401 }, 'no credentials: not a failure');
    assert.deepEqual(await signIn.authenticate(request('192.0.2.7', 'PARLEY\\alice', 'wrong')), { ok: false, status: 401 });
    assert.equal(queue.hashes, 3);
    const locked = await signIn.authenticate(request('192.0.2.7', 'alice', 'alice-pw'));
    assert.deepEqual(locked, { ok: false, status: 429, code: 'SIGN_IN_LOCKED', detail: 'too many failed sign-ins from 192.0.2.7; try again in 60 s', retryAfterSeconds: 60 });
    assert.equal((await signIn.authenticate(request('192.0.2.7'))).ok, false);
    assert.equal(queue.hashes, 3, 'a locked source costs no hash');
    assert.deepEqual(await signIn.authenticate(request('192.0.2.8', 'alice@PARLEY.test', 'alice-pw')), { ok: true, address: 'alice@parley.test' });
  });

  it('remembers a verified password until it changes, the user goes, or the time is up', async () => {
    let now = 1_800_000_000_000;
    const { queue } = signInSetup();
    const clocked = new BasicSignIn({ sql: db, domain: 'parley.test', queue, cacheMs: 60_000, now: () => now });
    const alice = () => clocked.authenticate(request('192.0.2.8', 'alice', 'alice-pw'));
    assert.equal((await alice()).ok, true);
    assert.equal((await alice()).ok, true);
    assert.equal((await clocked.authenticate(request('192.0.2.9', 'ALICE', 'alice-pw'))).ok, true, 'the same account, written otherwise');
    assert.equal(queue.hashes, 1, 'verified once');
    assert.equal((await clocked.authenticate(request('192.0.2.8', 'alice', 'alice-pw '))).ok, false, 'another password is checked');
    assert.equal(queue.hashes, 2);

    await setPassword(db, 'alice@parley.test', 'new-pw');
    assert.equal((await alice()).ok, false, 'the old password no longer works');
    assert.equal((await clocked.authenticate(request('192.0.2.8', 'alice', 'new-pw'))).ok, true);
    const before = queue.hashes;
    now += 60_001;
    assert.equal((await clocked.authenticate(request('192.0.2.8', 'alice', 'new-pw'))).ok, true);
    assert.equal(queue.hashes, before + 1, 'checked again once the time was up');
    await removeUser(db, 'alice@parley.test');
    assert.equal((await clocked.authenticate(request('192.0.2.8', 'alice', 'new-pw'))).ok, false, 'a removed user');
  });

  it('counts the client a trusted proxy names, and the peer otherwise', async () => {
    const { signIn, guard } = signInSetup({ trustedProxies: ['127.0.0.1'] });
    for (let i = 0; i < 3; i++) await signIn.authenticate(request('127.0.0.1', 'alice', 'wrong', { 'x-forwarded-for': '203.0.113.9' }));
    assert.equal(guard.check('203.0.113.9')?.kind, 'source');
    assert.equal(guard.check('127.0.0.1'), undefined, 'the proxy itself is not locked out');
    assert.equal((await signIn.authenticate(request('127.0.0.1', 'alice', 'alice-pw', { 'x-forwarded-for': '198.51.100.1' }))).ok, true);
    // a peer that is not trusted cannot pass as someone else
    assert.equal((await signIn.authenticate(request('203.0.113.9', 'alice', 'alice-pw', { 'x-forwarded-for': '198.51.100.1' }))).ok, false);
  });
});
